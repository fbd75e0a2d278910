"""What Refine needs of a finished run, kept so that no view is rendered and no teacher runs
again: the geometry, the sampled points and their features, the teacher's knowledge units and
the student's weights.

A kept run lives in memory in the process that made it and in a folder (``save_kept_run``),
so that Refine in another process, or after Blender restarted, finds it. Files appear
atomically; a folder from another version of this format is reported, not misread.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np

from .atomic_write import write_atomically
from .contracts import KnowledgeUnits, MeshGeometry, StaleRun
from .distill import StudentData

FORMAT = 2
KEPT_JSON = "kept_run.json"
KEPT_NPZ = "kept_run.npz"
_UNIT_FIELDS = ("probs", "mask", "part", "view", "polygon_unit", "polygon_index",
                "polygon_confidence", "incidence", "trust")  # fmt: skip
_DATA_FIELDS = ("points", "normals", "query_points", "query_normals", "query_present",
                "point_features", "query_features", "point_polygons")  # fmt: skip


@dataclasses.dataclass
class KeptRun:
    name: str  # the object's name when it ran
    parts: list[str]
    geometry: MeshGeometry
    data: StudentData  # the units as the teacher gave them (no labels applied)
    student: dict  # the student's weights after the run (name -> CPU tensor)
    labels: np.ndarray  # (P,) int32 the run's labels: what a correction replaces


_in_memory: dict[str, tuple[float, KeptRun]] = {}


def save_kept_run(folder, kept: KeptRun) -> None:
    """Write ``kept`` into ``folder`` (created), replacing what was there."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "vertices": kept.geometry.vertices,
        "triangles": kept.geometry.triangles,
        "triangle_polygons": kept.geometry.triangle_polygons,
        "labels": kept.labels,
    }
    for name in _DATA_FIELDS:
        arrays[f"data_{name}"] = getattr(kept.data, name)
    for name in _UNIT_FIELDS:
        value = getattr(kept.data.units, name)
        if value is not None:
            arrays[f"unit_{name}"] = value
    for name, tensor in kept.student.items():
        arrays[f"student_{name}"] = tensor.numpy()
    header = {
        "format": FORMAT,
        "name": kept.name,
        "parts": kept.parts,
        "num_polygons": int(kept.geometry.num_polygons),
        "student": list(kept.student),
    }

    def write_npz(temporary):
        with open(temporary, "wb") as handle:
            np.savez(handle, **arrays)

    write_atomically(folder / KEPT_NPZ, write_npz)
    write_atomically(folder / KEPT_JSON, lambda t: t.write_text(json.dumps(header)))
    _in_memory[str(folder.resolve())] = ((folder / KEPT_JSON).stat().st_mtime, kept)


def load_kept_run(folder, name: str = "") -> KeptRun:
    """The run kept in ``folder``; raises StaleRun (a message for users) when there is none."""
    import torch

    folder = pathlib.Path(folder)
    header_path = folder / KEPT_JSON
    who = f"{name!r}" if name else "this object"
    if not header_path.exists() or not (folder / KEPT_NPZ).exists():
        raise StaleRun(
            f"no kept run of {who}: Refine re-uses the views and the teacher's predictions of "
            "the last Segment Parts, and there are none (it has not run on this object, or "
            "its files were removed). Press Segment Parts for a full run"
        )
    key = str(folder.resolve())
    mtime = header_path.stat().st_mtime
    if key in _in_memory and _in_memory[key][0] == mtime:
        return _in_memory[key][1]
    header = json.loads(header_path.read_text())
    if header.get("format") != FORMAT:
        raise StaleRun(
            f"the kept run of {who} was written by another version of PartDistill: "
            "press Segment Parts for a full run"
        )
    with np.load(folder / KEPT_NPZ) as z:
        geometry = MeshGeometry(z["vertices"], z["triangles"], z["triangle_polygons"],
                                header["num_polygons"])  # fmt: skip
        units = KnowledgeUnits(**{n: z[f"unit_{n}"] for n in _UNIT_FIELDS if f"unit_{n}" in z})
        data = StudentData(units=units, **{n: z[f"data_{n}"] for n in _DATA_FIELDS})
        student = {n: torch.from_numpy(z[f"student_{n}"].copy()) for n in header["student"]}
        labels = z["labels"]
    kept = KeptRun(header["name"], header["parts"], geometry, data, student, labels)
    _in_memory[key] = (mtime, kept)
    return kept


def check_fits(kept: KeptRun, num_polygons: int, parts: list[str], name: str) -> None:
    """Raise StaleRun when the object or its part names changed since the kept run."""
    if num_polygons != kept.geometry.num_polygons:
        raise StaleRun(
            f"the mesh of {name!r} changed since Segment Parts ran on it "
            f"({kept.geometry.num_polygons} polygons then, {num_polygons} now): the kept views "
            "and teacher predictions no longer apply. Press Segment Parts for a full run (your "
            "corrections are kept and used as labels)"
        )
    if list(parts) != list(kept.parts):
        raise StaleRun(
            f"the part names changed since Segment Parts ran on {name!r} "
            f"({', '.join(kept.parts)} then, {', '.join(parts)} now): press Segment Parts "
            "for a full run with the new names"
        )
