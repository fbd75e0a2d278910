"""The whole pipeline on shapes with a known answer: Blender renders, teacher, student, labels."""

import json
import pathlib
import subprocess
import sys

import bpy
import numpy as np
import pytest
from conftest import ROOT
from partdistill.backend.config import PartDistillConfig
from partdistill.backend.contracts import ObjectInfo
from partdistill.backend.metrics import part_iou
from partdistill.backend.pipeline import segment
from partdistill.backend.sampling import polygon_areas
from partdistill.backend.teachers import build_teacher
from partdistill.backend.teachers.simulated import SimulatedTeacher, TeacherNoise
from partdistill.backend.teachers.teacher_errors import absorb_into_neighbours
from partdistill.partdistill_blender import batch, demo
from partdistill.partdistill_blender.ground_truth import read_int_face_attribute
from partdistill.partdistill_blender.render import render_views

CONFIG = PartDistillConfig(teacher="simulated", resolution=128, num_points=1024, epochs=15)


@pytest.fixture(scope="module")
def chair():
    """The demo chair's views, geometry and ground truth, rendered once."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    obj = demo.build_demo_chair()
    geometry, views = render_views(obj, CONFIG)
    truth = read_int_face_attribute(obj, demo.GROUND_TRUTH_ATTRIBUTE)
    return geometry, views, truth


def _scores(result, truth, areas, seen):
    """Per part IoU (R,) and face accuracy on seen and on unseen faces, area-weighted."""
    ious = part_iou(result.face_labels, truth, areas, len(demo.DEMO_CHAIR_PARTS))
    right = result.face_labels == truth
    return {
        "ious": np.round(ious, 3),
        "seen": areas[seen & right].sum() / areas[seen].sum(),
        "unseen": areas[~seen & right].sum() / areas[~seen].sum(),
    }


def _run_modes(chair, teacher, modes=("direct", "distill")):
    geometry, views, truth = chair
    areas = polygon_areas(geometry)
    seen = np.zeros(geometry.num_polygons, bool)
    seen[np.concatenate([v.face_ids[v.face_ids >= 0] for v in views])] = True
    got = {
        mode: _scores(
            segment(geometry, views, teacher, demo.DEMO_CHAIR_PARTS, CONFIG.replace(mode=mode),
                    ObjectInfo(face_labels=truth)),
            truth, areas, seen,
        )
        for mode in modes
    }  # fmt: skip
    # The baseline for faces no view sees: the best single part for all of them.
    unseen_area = np.bincount(truth[~seen], areas[~seen], minlength=len(demo.DEMO_CHAIR_PARTS))
    got["best_constant_unseen"] = unseen_area.max() / unseen_area.sum()
    return got


# Baselines the checks below are set against, measured on this chair: answering the largest
# part (back) everywhere gives part IoUs (0.57, 0, 0, 0) and face accuracy 0.57 (area).
LARGEST_PART_ACCURACY = 0.57
# The faces no view sees here are the insides of touching boxes (leg tops inside the seat,
# the back's foot): their part is ambiguous even to a person, and the best single answer for
# all of them (back) scores 0.43. The student must come within this of it (direct labels none).
UNSEEN_MARGIN = 0.05


def test_part_missed_in_every_partial_view_comes_out_right(chair):
    geometry, views, truth = chair
    parts = demo.DEMO_CHAIR_PARTS
    # The teacher misses the arm wherever it shows less than 60 % of its best view (partly
    # visible, as VLMs do); no other errors, so what goes wrong is that alone.
    teacher = ArmMissedWherePartlySeen(parts)
    shares = _visible_share(views, truth, parts.index("arm"))
    assert (shares < 0.6).sum() >= 3, f"the arm must be only partly seen in several views {shares}"
    got = _run_modes(chair, teacher)
    # Every part, not only the arm: a student that paints the chair "arm" fails here.
    assert (got["distill"]["ious"] > 0.5).all(), got
    assert got["distill"]["ious"][parts.index("arm")] > got["direct"]["ious"][parts.index("arm")]
    assert got["distill"]["seen"] > LARGEST_PART_ACCURACY + 0.25, got
    assert got["distill"]["unseen"] > got["best_constant_unseen"] - UNSEEN_MARGIN, got


def _visible_share(views, truth, part):
    counts = np.array([np.count_nonzero(truth[v.face_ids[v.face_ids >= 0]] == part) for v in views])
    return counts / counts.max()


def test_every_polygon_is_labelled_and_distill_beats_direct_on_seen_faces(chair):
    geometry, views, truth = chair
    teacher = build_teacher("simulated", demo.DEMO_CHAIR_PARTS, config=CONFIG)
    seen = np.unique(np.concatenate([v.face_ids[v.face_ids >= 0] for v in views]))
    assert len(seen) < geometry.num_polygons, "some faces (e.g. under the seat) are never seen"
    direct = segment(geometry, views, teacher, demo.DEMO_CHAIR_PARTS,
                     CONFIG.replace(mode="direct"), ObjectInfo(face_labels=truth))  # fmt: skip
    unseen = np.setdiff1d(np.arange(geometry.num_polygons), seen)
    assert (direct.face_labels[unseen] == -1).all()
    got = _run_modes(chair, teacher)
    # Better on the faces a view sees, not only through the faces no view sees.
    assert got["distill"]["seen"] > got["direct"]["seen"] + 0.02, got
    assert (got["distill"]["ious"] >= got["direct"]["ious"] - 0.05).all(), got
    assert got["distill"]["unseen"] > got["best_constant_unseen"] - UNSEEN_MARGIN, got


def test_interpolated_polygon_descriptors_label_as_the_exact_ones(chair):
    # Above config.exact_descriptors_max_polygons (a million polygons) the polygons' shape
    # descriptors are interpolated from the sampled points' instead of computed from their own
    # neighbourhoods. Forced here on the chair: the labels must stay those of the exact path.
    geometry, views, truth = chair
    parts = demo.DEMO_CHAIR_PARTS
    teacher = build_teacher("simulated", parts, config=CONFIG)
    areas = polygon_areas(geometry)
    exact, interpolated = (
        segment(geometry, views, teacher, parts, CONFIG.replace(exact_descriptors_max_polygons=m),
                ObjectInfo(face_labels=truth)).face_labels
        for m in (geometry.num_polygons, 0)
    )  # fmt: skip
    assert areas[exact == interpolated].sum() / areas.sum() >= 0.99
    assert (part_iou(interpolated, truth, areas, len(parts)) > 0.6).all()


def test_a_part_read_as_another_in_40_percent_of_the_views_comes_out_right(chair):
    # The back is read as the seat in 4 of 10 views (a systematic confusion, the paper's
    # Fig. 3), nothing else goes wrong: the other views and the geometry must win.
    parts = demo.DEMO_CHAIR_PARTS
    teacher = ConfusedTeacher(parts, source=parts.index("back"), target=parts.index("seat"),
                              views=(0, 3, 5, 8))  # fmt: skip
    got = _run_modes(chair, teacher)
    assert (got["distill"]["ious"] > 0.6).all(), got
    assert got["distill"]["ious"][0] > max(0.75, got["direct"]["ious"][0]), got
    assert got["distill"]["seen"] > got["direct"]["seen"], got


def test_thirty_small_wrong_islands_per_view_do_not_move_the_student(chair):
    parts = demo.DEMO_CHAIR_PARTS
    clean = dict(miss_probability=0.0, confusions_per_view=0.0)
    teacher = build_teacher("simulated", parts, config=CONFIG, **clean)
    speckled = build_teacher("simulated", parts, config=CONFIG, speckle_islands=30, **clean)
    calm = _run_modes(chair, teacher, ("distill",))["distill"]
    noisy = _run_modes(chair, speckled, ("distill",))["distill"]
    assert abs(noisy["seen"] - calm["seen"]) < 0.03, (calm, noisy)
    assert (noisy["ious"] > calm["ious"] - 0.05).all(), (calm, noisy)


class ArmMissedWherePartlySeen(SimulatedTeacher):
    """The simulated teacher with no errors but the arm missed in views that show less than
    60 % of what its best view shows (its pixels go to the neighbouring parts)."""

    def __init__(self, parts):
        noise = TeacherNoise(miss_probability=0.0, confusions_per_view=0.0)
        super().__init__(parts, "pixel", seed=0, noise=noise)

    def _miss_and_confuse(self, parts, visible_share, rng):
        arm = self.part_names.index("arm")
        return absorb_into_neighbours(parts, arm) if visible_share[arm] < 0.6 else parts


class ConfusedTeacher(SimulatedTeacher):
    """The simulated teacher with no errors but one part read as another in given views."""

    def __init__(self, parts, source, target, views):
        noise = TeacherNoise(miss_probability=0.0, confusions_per_view=0.0)
        super().__init__(parts, "pixel", seed=0, noise=noise)
        self.swap = (source, target, list(views))

    def _object_errors(self, counts, num_views):
        plan = super()._object_errors(counts, num_views)
        source, target, views = self.swap
        plan["swaps"] = [(source, target, np.isin(np.arange(num_views), views))]
        return plan


OFF_CUBE = """OFF
8 6 0
0 0 0
1 0 0
1 1 0
0 1 0
0 0 1
1 0 1
1 1 1
0 1 1
4 0 3 2 1
4 4 5 6 7
4 0 1 5 4
4 1 2 6 5
4 2 3 7 6
4 3 0 4 7
"""


def test_batch_reports_a_corrupt_file_and_processes_the_others(tmp_path):
    good = tmp_path / "box.off"
    good.write_text(OFF_CUBE)
    # Ground truth beside it, as in the labelled PSB: "top" is the upper face, the rest "side".
    (tmp_path / "box_labels.txt").write_text("side\n1 3 4 5 6\ntop\n2\n")
    corrupt = tmp_path / "broken.off"
    corrupt.write_text("OFF\n8 6 0\n0 0 0\n1 0\n")
    labels_out = tmp_path / "labels.json"
    command = [
        sys.executable, str(ROOT / "partdistill_blender" / "batch.py"),
        "--input", str(corrupt), str(good), "--parts", "top, side", "--teacher", "simulated",
        "--ground-truth", "psb", "--views", "4", "--resolution", "64", "--points", "256",
        "--epochs", "6", "--labels-out", str(labels_out),
    ]  # fmt: skip
    # In tmp_path: the run writes its manifest and log in the folder it runs in.
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr  # one input failed
    assert "error: " + str(corrupt) in run.stdout
    assert "not a valid OFF file" in run.stdout
    assert "done: 1 segmented, 1 failed" in run.stdout
    objects = json.loads(labels_out.read_text())["objects"]
    assert [o["name"] for o in objects] == ["box"]
    assert objects[0]["parts"] == ["top", "side"]
    assert len(objects[0]["face_labels"]) == 6 and min(objects[0]["face_labels"]) >= 0
    assert corrupt.read_text() == "OFF\n8 6 0\n0 0 0\n1 0\n", "inputs are never modified"
    assert pathlib.Path(good).read_text() == OFF_CUBE


def test_batch_flags_turn_refinement_and_vote_fusion_off():
    default = batch.parse_args(["--demo", "chair", "--parts", "back, seat"]).config
    assert default.refine and default.vote_fusion, "both are on by default (measured)"
    off = batch.parse_args(
        ["--demo", "chair", "--parts", "back, seat", "--no-refine", "--no-vote-fusion"]
    ).config
    assert not off.refine and not off.vote_fusion
