"""Corrections (Refine) and few-shot examples in the compute half, on the demo chair whose
answer is known: the simulated teacher is taught a wrong part on purpose, so it is wrong in
every view there, and the labels a user gives must win over it."""

import dataclasses
import sys

import bpy
import numpy as np
import pytest
from partdistill.backend.config import PartDistillConfig
from partdistill.backend.contracts import ObjectInfo, ObjectInput, StaleRun
from partdistill.backend.kept_runs import load_kept_run
from partdistill.backend.metrics import mean_part_iou
from partdistill.backend.run_stages import RunRequest, run_compute
from partdistill.backend.sampling import polygon_areas
from partdistill.partdistill_blender import demo
from partdistill.partdistill_blender.ground_truth import read_int_face_attribute
from partdistill.partdistill_blender.render import render_views

CONFIG = PartDistillConfig(teacher="simulated", resolution=128, num_points=1024, epochs=15)
PARTS = demo.DEMO_CHAIR_PARTS
BACK, SEAT = PARTS.index("back"), PARTS.index("seat")


@pytest.fixture(scope="module")
def chair():
    """The demo chair's geometry, views and true labels, rendered once."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    obj = demo.build_demo_chair()
    geometry, views = render_views(obj, CONFIG)
    truth = read_int_face_attribute(obj, demo.GROUND_TRUTH_ATTRIBUTE).astype(np.int32)
    return geometry, views, truth


def _taught_wrong(truth):
    """The labels the simulated teacher is built from: the whole back called seat, so every
    view that sees the back says seat there (no noise: nothing else goes wrong)."""
    return np.where(truth == BACK, SEAT, truth).astype(np.int32)


def _request(chair, labels=None, keep="", examples=(), refine=False):
    geometry, views, truth = chair
    info = ObjectInfo(name="Chair", face_labels=_taught_wrong(truth))
    obj = ObjectInput(None if refine else geometry, [] if refine else views, info, labels)
    clean = {"miss_probability": 0.0, "confusions_per_view": 0.0}
    return RunRequest([obj], PARTS, CONFIG, clean, examples=list(examples),
                      keep_dirs=[keep] if keep else [], refine=refine)  # fmt: skip


def _share(labels, truth, areas, part, where=None):
    """Area share of the faces of ``part`` (within ``where``) labelled ``part``."""
    mask = (truth == part) if where is None else (truth == part) & where
    return float(areas[mask & (labels == part)].sum() / areas[mask].sum())


def _back_patch(geometry, truth, share):
    """(P,) bool: the back's faces nearest its top edge, ``share`` of its faces."""
    back = np.flatnonzero(truth == BACK)
    top = geometry.vertices[geometry.triangles].mean(axis=1)[:, 2]
    height = np.bincount(geometry.triangle_polygons, top) / np.bincount(geometry.triangle_polygons)
    chosen = back[np.argsort(-height[back])[: max(1, int(share * back.size))]]
    patch = np.zeros(geometry.num_polygons, bool)
    patch[chosen] = True
    return patch


def test_a_correction_where_the_teacher_is_wrong_in_every_view_wins(chair, tmp_path):
    geometry, _, truth = chair
    areas = polygon_areas(geometry)
    keep = str(tmp_path / "kept")
    (before,) = run_compute(_request(chair, keep=keep))
    # Baseline: taught "seat" on the whole back in every view, the student calls it seat.
    assert _share(before.face_labels, truth, areas, BACK) < 0.1

    patch = _back_patch(geometry, truth, 0.1)
    corrections = np.where(patch, BACK, -1).astype(np.int32)
    (after,) = run_compute(_request(chair, corrections, keep, refine=True))
    # Every corrected face keeps what the user said, against every view of the teacher.
    assert (after.face_labels[patch] == BACK).all()
    # The seat, which the teacher gets right, stays the seat (the correction does not leak).
    # A known limit: with the whole back taught wrong in every view, the uncorrected back
    # stays seat (0.03 of its area right): corrections spread where the views disagree.
    assert _share(after.face_labels, truth, areas, SEAT) > 0.8
    # Refine re-used the kept run: no teacher pass, no features.
    assert "teacher" not in after.timings and "features" not in after.timings


def test_refine_in_another_process_reads_the_kept_run_from_its_folder(chair, tmp_path):
    geometry, _, truth = chair
    keep = str(tmp_path / "kept")
    run_compute(_request(chair, keep=keep), python=sys.executable)
    assert load_kept_run(keep).geometry.num_polygons == geometry.num_polygons
    corrections = np.where(_back_patch(geometry, truth, 0.1), BACK, -1).astype(np.int32)
    (here,) = run_compute(_request(chair, corrections, keep, refine=True))
    (there,) = run_compute(_request(chair, corrections, keep, refine=True), python=sys.executable)
    assert np.mean(here.face_labels == there.face_labels) > 0.99


def test_refine_without_corrections_is_refused(chair, tmp_path):
    geometry = chair[0]
    keep = str(tmp_path / "kept")
    run_compute(_request(chair, keep=keep))
    none = np.full(geometry.num_polygons, -1, np.int32)
    with pytest.raises(ValueError, match="'Chair' has no corrections to learn from: select faces"):
        run_compute(_request(chair, none, keep, refine=True))


def test_refine_after_the_mesh_changed_asks_for_a_full_run(chair, tmp_path):
    geometry = chair[0]
    keep = str(tmp_path / "kept")
    run_compute(_request(chair, keep=keep))
    edited = np.full(geometry.num_polygons + 6, -1, np.int32)  # the user added faces
    edited[0] = BACK
    p = geometry.num_polygons
    stale = rf"mesh of 'Chair' changed .*\({p} polygons then, {p + 6} now\).*Segment Parts"
    with pytest.raises(StaleRun, match=stale):
        run_compute(_request(chair, edited, keep, refine=True), python=sys.executable)
    with pytest.raises(StaleRun, match="no kept run of 'Chair'.*Segment Parts for a full run"):
        run_compute(_request(chair, edited, str(tmp_path / "never"), refine=True))


def test_a_labelled_example_lifts_a_shape_its_teacher_gets_badly_wrong(chair):
    geometry, views, truth = chair
    areas = polygon_areas(geometry)
    # A teacher that misses each visible part in half the views and makes 3 confusions a view.
    noisy = {"miss_probability": 0.5, "confusions_per_view": 3.0, "seed": 1}
    obj = ObjectInput(geometry, views, ObjectInfo(name="Chair", face_labels=truth))
    (zero_shot,) = run_compute(RunRequest([obj], PARTS, CONFIG, noisy))
    # The example: the same chair lying on its back, moved and scaled, labelled with the
    # truth (it lends its labels after the turn that best fits the teacher's vote).
    lying = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]], np.float32)
    moved = dataclasses.replace(geometry, vertices=1.5 * geometry.vertices @ lying.T + 4)
    example = ObjectInput(moved, [], ObjectInfo(name="Example"), truth)
    (few_shot,) = run_compute(RunRequest([obj], PARTS, CONFIG, noisy, examples=[example]))
    before = mean_part_iou(zero_shot.face_labels, truth, areas, len(PARTS))
    after = mean_part_iou(few_shot.face_labels, truth, areas, len(PARTS))
    print(f"mIoU zero-shot {before:.3f}, with the example {after:.3f}")
    # Measured 0.353 -> 0.434: the example must add at least 0.05 of mIoU over zero-shot.
    assert after > before + 0.05, (before, after)
