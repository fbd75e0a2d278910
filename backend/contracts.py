"""The plain data that crosses between the Blender half and the compute half.

Conventions:
- Polygon indices are those of the object's own mesh data, in the order Blender lists them.
- Cameras follow OpenCV: x right, y down, z forward. A world point X projects to pixel
  ``K @ (world_to_camera @ [X, 1])[:3]`` divided by its z; pixel (u, v) = (column, row) with
  row 0 the top row of ``image``, and pixel centres at integer + 0.5.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass
class View:
    """One rendered view, as a teacher sees it."""

    image: np.ndarray  # (H, W, 3) uint8 RGB, top row first
    face_ids: np.ndarray  # (H, W) int32 polygon index, -1 on background
    K: np.ndarray  # (3, 3) float64 intrinsics, pixels
    world_to_camera: np.ndarray  # (4, 4) float64, OpenCV camera axes


@dataclass
class MeshGeometry:
    """The evaluated mesh (modifiers applied) in world space, triangulated.

    ``triangle_polygons`` maps every triangle back to the polygon of the object's own mesh it
    came from, so labels land on the object's polygons even through modifiers.
    """

    vertices: np.ndarray  # (V, 3) float32, world space
    triangles: np.ndarray  # (T, 3) int32 indices into vertices
    triangle_polygons: np.ndarray  # (T,) int32 polygon index in the object's mesh
    num_polygons: int  # polygons of the object's mesh (labels are written for all of them)

    def validate(self) -> None:
        if self.triangles.ndim != 2 or self.triangles.shape[1] != 3:
            raise ValueError("triangles must be (T, 3)")
        if len(self.triangles) == 0:
            raise ValueError("the mesh has no faces")
        if len(self.triangle_polygons) != len(self.triangles):
            raise ValueError("triangle_polygons must have one entry per triangle")


@dataclass
class ObjectInfo:
    """What a teacher may know about the object besides its views (see Teacher.bind)."""

    name: str = ""
    category: str = ""  # e.g. "chair": used in prompts ("the leg of a chair")
    face_labels: np.ndarray | None = None  # (P,) int ground truth, only for the simulated teacher


@runtime_checkable
class Teacher(Protocol):
    """A 2D teacher, built by ``factory(part_names, **options)``.

    kind == "pixel": predict returns per view an (H, W, R) float32 array of probabilities.
    kind == "box": predict returns per view a list of (box, probs): box = (x0, y0, x1, y1) in
    pixels, probs an (R,) float array over the part names.
    Optional: ``bind(info: ObjectInfo)``, called before ``predict`` for each object.
    """

    kind: str

    def predict(self, views: list[View]) -> list: ...


@dataclass
class ObjectInput:
    """One object to segment: its geometry, its views and what the teacher may know of it.

    Here, not in pipeline, so that the Blender half can build it without importing torch.
    """

    geometry: MeshGeometry
    views: list[View]
    info: ObjectInfo
    # (P,) int32 known part per polygon, -1 = unknown: a user's corrections on an object to
    # segment, or every polygon of a few-shot example (an example has no views).
    labels: np.ndarray | None = None


@dataclass
class KnowledgeUnits:
    """D teacher knowledge units on N points (paper Eq. 2): k^d = (Y^d, M^d)."""

    probs: np.ndarray  # (D, N, R) float32, Y^d: teacher part probabilities per covered point
    mask: np.ndarray  # (D, N) bool, M^d: points covered by the unit
    part: np.ndarray  # (D,) int64, the unit's argmax part (Z^d)
    view: np.ndarray  # (D,) int64, the view the unit came from
    # Polygons each unit covers, as pairs, for the direct (no student) vote and for inspection.
    polygon_unit: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (Q,)
    polygon_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (Q,)
    polygon_confidence: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # (Q,)
    # (D, N) float32 in [0, 1]: how squarely the unit's view sees each point, None = all 1.
    incidence: np.ndarray | None = None
    # (D,) float32 in (0, 1]: trust in each unit before any scoring (rescore.prior_trust, the
    # whole-view discount), None = all 1.
    trust: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.mask.shape[0])

    @classmethod
    def empty(cls, num_points: int, num_parts: int) -> KnowledgeUnits:
        """No units over ``num_points`` points."""
        return cls(
            probs=np.zeros((0, num_points, num_parts), np.float32),
            mask=np.zeros((0, num_points), bool),
            part=np.zeros(0, np.int64),
            view=np.zeros(0, np.int64),
        )

    @property
    def confidence(self) -> np.ndarray:
        """(D, N) float32 C^d_n = max_r Y^d_n(r), zero outside the mask."""
        return np.where(self.mask, self.probs.max(axis=2), 0.0).astype(np.float32)


@dataclass
class Segmentation:
    """The result for one object."""

    parts: list[str]
    face_labels: np.ndarray  # (P,) int32 part index per polygon, -1 = unlabelled
    face_confidence: np.ndarray  # (P,) float32 in [0, 1]
    unit_scores_before: np.ndarray | None = None  # (D,) mean teacher confidence per unit
    unit_scores_after: np.ndarray | None = None  # (D,) backward-distillation scores (Eq. 4)
    teacher_predictions: list | None = None  # what the teacher returned, per view (evidence)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    info: dict[str, Any] = field(default_factory=dict)  # epochs run, backward epoch, loss curve


# progress(stage, fraction in [0, 1]); stages: "teacher", "knowledge", "features", "student",
# "labels". May raise SegmentationCancelled to stop at the next step.
ProgressFn = Callable[[str, float], None]


class SegmentationCancelled(Exception):
    """Raised by a progress callback (or a cancel check) to stop a run; nothing is written."""


class StaleRun(ValueError):
    """Refine cannot re-use the object's kept run (none, or the mesh or the part names changed
    since): its message says so and that a full Segment Parts run is due."""


class TeacherUnavailable(RuntimeError):
    """A teacher cannot be built (missing weights, missing package). Its message is for users:
    ``problem`` (what is missing, where it was looked for), then ``remedy`` (how to get it from
    the command line), which a front end with other means (the Blender UI) replaces."""

    def __init__(self, problem: str, remedy: str = ""):
        super().__init__(f"{problem} {remedy}".strip())
        self.problem, self.remedy = problem, remedy

    def __reduce__(self):  # keep both parts through pickling
        return type(self), (self.problem, self.remedy)
