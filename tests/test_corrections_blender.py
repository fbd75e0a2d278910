"""Correct and teach (issue 12), the Blender half, with the real bpy module: Assign writes the
selected faces' part and keeps them as corrections, Refine re-learns from them, a stale Refine
offers the full run, Segment Parts keeps the corrections and learns from Example objects,
Clear keeps or removes the corrections.

The simulated teacher is built from the ``partdistill_ground_truth`` face attribute; where a
test sets that attribute wrong on purpose, the teacher is wrong there in every view, and the
test's own ``real`` labels are the truth."""

import json
import os

import bpy
import numpy as np
import pytest
from checked_layout import draw
from partdistill.backend import kept_runs
from partdistill.partdistill_blender import (
    compute_process,
    demo,
    kept_run_folders,
    known_labels,
    panels,
    results,
    writeback,
)
from ui_fixtures import chair_scene, snapshot, truth

BACK, SEAT, LEG, ARM = range(4)  # demo.DEMO_CHAIR_PARTS
# Small but trained enough that a run follows its teacher (fewer steps underfit, and then
# a run with corrections of one part drifts towards that part).
RUN = dict(mode="forward", num_views=4, resolution=64, num_points=512, epochs=6,
           steps_per_epoch=10)  # fmt: skip


@pytest.fixture(autouse=True)
def kept_runs_in_tmp(tmp_path, monkeypatch):
    """Kept runs in this test's folder (outside an installed extension they go to the
    system's temporary folder)."""
    monkeypatch.setattr(kept_run_folders, "extension_user_dir", lambda sub: str(tmp_path / sub))


def _labels(obj) -> np.ndarray:
    return results.read_segmentation(obj)["face_labels"]


def _teacher_wrong_on(obj, part: int, says: int) -> tuple[np.ndarray, np.ndarray]:
    """Make the simulated teacher call every face of ``part`` ``says``, in every view.
    Returns (real truth, the teacher's truth), each (P,)."""
    real = truth(obj)
    taught = np.where(real == part, says, real).astype(np.int32)
    obj.data.attributes[demo.GROUND_TRUTH_ATTRIBUTE].data.foreach_set("value", taught)
    return real, taught


def _assign(obj, faces: np.ndarray, part: int) -> None:
    """As a user would: select ``faces`` (P,) bool in Edit Mode, press the part's Assign."""
    if obj.mode == "EDIT":
        bpy.ops.object.mode_set(mode="OBJECT")
    results.select_faces(obj.data, faces)
    # In vertex select mode, edit mode would also select faces whose vertices all are.
    bpy.context.scene.tool_settings.mesh_select_mode = (False, False, True)
    bpy.ops.object.mode_set(mode="EDIT")
    assert bpy.ops.partdistill.assign_part(index=part) == {"FINISHED"}
    assert obj.mode == "EDIT"
    bpy.ops.object.mode_set(mode="OBJECT")


def _some(mask: np.ndarray, share: float, seed: int = 0) -> np.ndarray:
    return mask & (np.random.default_rng(seed).random(len(mask)) < share)


def _group_vertices(obj, group_name: str) -> set[int]:
    index = obj.vertex_groups[group_name].index
    return {v.index for v in obj.data.vertices if any(g.group == index for g in v.groups)}


def _face_vertices(obj, faces: np.ndarray) -> set[int]:
    return {v for p in np.flatnonzero(faces) for v in obj.data.polygons[int(p)].vertices}


def test_assign_writes_exactly_the_selected_faces_and_marks_them(ui):
    obj = chair_scene(ui, **RUN)
    with pytest.raises(RuntimeError, match="'Chair' has no segmentation: run Segment Parts"):
        bpy.ops.object.mode_set(mode="EDIT")
        bpy.ops.partdistill.assign_part(index=ARM)
    bpy.ops.object.mode_set(mode="OBJECT")
    assert bpy.ops.partdistill.segment_parts() == {"FINISHED"}
    before = results.read_segmentation(obj)
    selected = _some(before["face_labels"] != ARM, 0.1)
    assert selected.sum() > 50

    _assign(obj, selected, ARM)
    after = results.read_segmentation(obj)
    assert after["parts"] == before["parts"]
    expected = np.where(selected, ARM, before["face_labels"])
    np.testing.assert_array_equal(after["face_labels"], expected)
    assert (after["face_confidence"][selected] == 1.0).all()
    np.testing.assert_array_equal(after["face_confidence"][~selected],
                                  before["face_confidence"][~selected])  # fmt: skip
    # The material slot of each selected face is the arm's, the others keep theirs.
    slots = np.empty(len(obj.data.polygons), np.int32)
    obj.data.polygons.foreach_get("material_index", slots)
    arm_slot = [s.material.name for s in obj.material_slots].index(after["materials"][ARM])
    assert (slots[selected] == arm_slot).all()
    assert (slots[~selected & (expected != ARM)] != arm_slot).all()
    # Vertex groups: a part's group holds exactly the vertices of its faces.
    for part, group in enumerate(after["groups"]):
        assert _group_vertices(obj, group) == _face_vertices(obj, expected == part), group
    # Exactly the selected faces are corrections, to the arm; the selection is as it was.
    corrections = known_labels.read_corrections(obj, demo.DEMO_CHAIR_PARTS)
    np.testing.assert_array_equal(corrections, np.where(selected, ARM, -1))
    assert known_labels.corrected_face_count(obj) == selected.sum()
    chosen = np.empty(len(obj.data.polygons), bool)
    obj.data.polygons.foreach_get("select", chosen)
    np.testing.assert_array_equal(chosen, selected)

    # Nothing selected: refused, nothing changed.
    results.select_faces(obj.data, np.zeros(len(obj.data.polygons), bool))
    bpy.ops.object.mode_set(mode="EDIT")  # a round trip drops the empty selection layers
    bpy.ops.object.mode_set(mode="OBJECT")
    state = snapshot(obj)
    bpy.ops.object.mode_set(mode="EDIT")
    with pytest.raises(RuntimeError, match="no faces of 'Chair' are selected"):
        bpy.ops.partdistill.assign_part(index=SEAT)
    assert obj.mode == "EDIT"
    bpy.ops.object.mode_set(mode="OBJECT")
    assert snapshot(obj) == state


def test_a_correction_wins_after_refine_and_after_a_new_run(ui):
    obj = chair_scene(ui, **RUN)
    real, taught = _teacher_wrong_on(obj, ARM, says=LEG)  # the teacher never sees an arm
    assert bpy.ops.partdistill.segment_parts() == {"FINISHED"}
    assert (_labels(obj)[real == ARM] == ARM).mean() < 0.05  # the teacher's error, learnt
    rows_before = [(r.name, r.face_count) for r in results.result_rows(obj)]
    corrected = _some(real == ARM, 0.3)
    _assign(obj, corrected, ARM)

    assert bpy.ops.partdistill.refine() == {"FINISHED"}
    labels = _labels(obj)
    assert (labels[corrected] == ARM).all()
    assert (labels[(real == ARM) & ~corrected] == ARM).mean() > 0.8  # the student learnt it
    others = real != ARM
    assert (labels[others] == taught[others]).mean() > 0.7  # the rest follows the teacher
    # The panel's counts changed with it; the run record and the corrections stayed.
    rows_after = [(r.name, r.face_count) for r in results.result_rows(obj)]
    assert rows_after != rows_before
    assert dict(rows_after)["arm"] > dict(rows_before)["arm"] + corrected.sum()
    assert results.read_run(obj)["teacher"] == "simulated"
    assert known_labels.corrected_face_count(obj) == corrected.sum()

    assert bpy.ops.partdistill.segment_parts() == {"FINISHED"}  # a full run keeps them
    labels = _labels(obj)
    assert (labels[corrected] == ARM).all()
    assert (labels[others] == taught[others]).mean() > 0.7


def test_refine_in_edit_mode_returns_to_it_and_needs_corrections(ui):
    obj = chair_scene(ui, **RUN)
    assert bpy.ops.partdistill.segment_parts() == {"FINISHED"}
    state = snapshot(obj)
    bpy.ops.object.mode_set(mode="EDIT")
    with pytest.raises(RuntimeError, match="'Chair' has no corrections to learn from: select "
                       "faces in Edit Mode and press a part's Assign button first"):  # fmt: skip
        bpy.ops.partdistill.refine()
    assert obj.mode == "EDIT"
    bpy.ops.object.mode_set(mode="OBJECT")
    assert snapshot(obj) == state

    _assign(obj, _some(truth(obj) == SEAT, 0.2), SEAT)
    bpy.ops.object.mode_set(mode="EDIT")
    assert bpy.ops.partdistill.refine() == {"FINISHED"}
    assert obj.mode == "EDIT"
    ui.mode = "direct"  # teacher votes only: there is no student to re-train
    with pytest.raises(RuntimeError, match="Refine re-trains the student: set Mode to Student"):
        bpy.ops.partdistill.refine()


def test_refine_after_the_mesh_changed_offers_a_full_run(ui):
    obj = chair_scene(ui, **RUN)
    assert bpy.ops.partdistill.segment_parts() == {"FINISHED"}
    _assign(obj, _some(truth(obj) == LEG, 0.5), ARM)
    first_face = np.zeros(len(obj.data.polygons), bool)
    first_face[0] = True
    results.select_faces(obj.data, first_face)
    bpy.ops.object.mode_set(mode="EDIT")
    bpy.ops.mesh.delete(type="FACE")  # the user edits the mesh after the run
    bpy.ops.object.mode_set(mode="OBJECT")
    faces = len(obj.data.polygons)
    state = snapshot(obj)

    with pytest.raises(RuntimeError, match=f"the mesh of 'Chair' changed since Segment Parts "
                       f"ran on it \\({faces + 1} faces then, {faces} now\\)"):  # fmt: skip
        bpy.ops.partdistill.refine()
    assert snapshot(obj) == state
    assert ui.stale_object == "Chair"
    shown = draw(panels.PARTDISTILL_PT_results, bpy.context)
    assert "changed since Segment Parts ran on it" in " ".join(shown.labels())  # wrapped
    assert ("partdistill.segment_parts", {}) in shown.operators()  # "Segment Parts Again"

    assert bpy.ops.partdistill.segment_parts() == {"FINISHED"}  # the button's operator
    assert ui.stale_object == ""
    assert known_labels.corrected_face_count(obj) > 0  # the corrections came through
    assert bpy.ops.partdistill.refine() == {"FINISHED"}


def test_refine_without_a_kept_run_is_stale_and_a_failed_run_keeps_the_last_one(
    ui, tmp_path, monkeypatch
):
    obj = chair_scene(ui, **RUN)
    assert bpy.ops.partdistill.segment_parts() == {"FINISHED"}
    folder = kept_run_folders.kept_run_dir(obj)
    assert folder.startswith(str(tmp_path / "kept_runs"))
    header = json.loads((tmp_path / "kept_runs" / obj["partdistill_run_id"] /
                         kept_runs.KEPT_JSON).read_text())  # fmt: skip
    assert header["num_polygons"] == len(obj.data.polygons)
    assert kept_run_folders.KEPT_HEADER == kept_runs.KEPT_JSON
    obj.name = "Renamed"  # the id, not the name, finds the folder
    assert kept_run_folders.kept_run_dir(obj) == folder

    # A run that fails after its compute stages kept a run leaves the last good one.
    kept_before = os.path.getmtime(os.path.join(folder, kept_runs.KEPT_NPZ))
    real_compute, staged = compute_process.compute, []

    def compute_then_fail(request, progress=None):
        real_compute(request, progress)
        staged.append(os.path.isdir(request.keep_dirs[0]))
        raise RuntimeError("the disk is full, says the test")

    monkeypatch.setattr(compute_process, "compute", compute_then_fail)
    with pytest.raises(RuntimeError, match="the disk is full"):
        bpy.ops.partdistill.segment_parts()
    monkeypatch.undo()
    assert staged == [True]  # the compute had written its kept run, beside the folder
    assert os.path.getmtime(os.path.join(folder, kept_runs.KEPT_NPZ)) == kept_before
    assert not os.path.exists(folder + kept_run_folders.STAGING_SUFFIX)

    _assign(obj, _some(truth(obj) == SEAT, 0.2), SEAT)
    del obj["partdistill_run_id"]
    with pytest.raises(RuntimeError, match="'Renamed' has no kept run"):
        bpy.ops.partdistill.refine()
    assert ui.stale_object == "Renamed"


def test_clear_with_and_without_keep_corrections(ui):
    obj = chair_scene(ui, **RUN)
    assert bpy.ops.partdistill.segment_parts() == {"FINISHED"}
    corrected = _some(truth(obj) == BACK, 0.3)
    _assign(obj, corrected, ARM)
    ui.keep_corrections = True
    shown = draw(panels.PARTDISTILL_PT_results, bpy.context)
    assert ("partdistill.clear_segmentation", {"keep_corrections": True}) in shown.operators()
    assert "keep_corrections" in shown.props()
    assert f"{corrected.sum():,} faces corrected" in shown.labels()

    assert bpy.ops.partdistill.clear_segmentation(keep_corrections=True) == {"FINISHED"}
    assert writeback.bookkeeping(obj) is None
    np.testing.assert_array_equal(known_labels.read_corrections(obj, demo.DEMO_CHAIR_PARTS),
                                  np.where(corrected, ARM, -1))  # fmt: skip
    assert bpy.ops.partdistill.segment_parts() == {"FINISHED"}  # and a new run keeps them
    assert (_labels(obj)[corrected] == ARM).all()

    assert bpy.ops.partdistill.clear_segmentation() == {"FINISHED"}
    assert writeback.bookkeeping(obj) is None
    assert known_labels.CORRECTION_ATTRIBUTE not in obj.data.attributes
    assert known_labels.CORRECTION_PARTS_PROPERTY not in obj
    assert known_labels.read_corrections(obj, demo.DEMO_CHAIR_PARTS) is None


def test_panel_shows_assign_refine_and_example_controls(ui):
    obj = chair_scene(ui, **RUN)
    assert bpy.ops.partdistill.segment_parts() == {"FINISHED"}
    shown = draw(panels.PARTDISTILL_PT_results, bpy.context)
    assert ("partdistill.refine", {}) in shown.operators()
    assert "partdistill_example" in shown.props()
    assert not any(name == "partdistill.assign_part" for name, _ in shown.operators())
    _assign(obj, _some(truth(obj) == SEAT, 0.2), SEAT)
    bpy.ops.object.mode_set(mode="EDIT")
    in_edit_mode = draw(panels.PARTDISTILL_PT_results, bpy.context)
    for part in range(4):  # an Assign per row, beside the Select/Hide/Isolate icons
        assert ("partdistill.assign_part", {"index": part}) in in_edit_mode.operators()
        assert ("partdistill.select_part", {"index": part}) in in_edit_mode.operators()
    assert ("partdistill.refine", {}) in in_edit_mode.operators()
    corrected = known_labels.corrected_face_count(obj)
    assert f"{corrected:,} faces corrected" in in_edit_mode.labels()


def _two_chairs(ui):
    """The target (selected, active) and a copy beside it: the example."""
    target = chair_scene(ui, **RUN)
    example = target.copy()
    example.data = target.data.copy()
    example.name = "Example"
    example.location.x = 2.0
    bpy.context.scene.collection.objects.link(example)
    example.select_set(False)  # Segment Parts runs on the target only
    return target, example


def test_an_example_object_teaches_segment_parts(ui):
    target, example = _two_chairs(ui)
    real = truth(example)
    writeback.write_segmentation(example, demo.DEMO_CHAIR_PARTS, real,
                                 np.ones(len(real), np.float32))  # fmt: skip
    _teacher_wrong_on(target, ARM, says=BACK)  # the target's teacher: no arms, more back

    assert bpy.ops.partdistill.segment_parts() == {"FINISHED"}
    baseline = (_labels(target) == real).mean()
    example.partdistill_example = True
    main = draw(panels.PARTDISTILL_PT_main, bpy.context)
    assert "1 example: Example" in main.labels()
    assert bpy.ops.partdistill.segment_parts() == {"FINISHED"}
    taught = (_labels(target) == real).mean()
    # Measured (bpy module, CPU, seed 0): 0.67 of the faces right without the example (no
    # arm at all), 0.97 with it. The bar: baseline + 0.2.
    assert taught > baseline + 0.2, (baseline, taught)
    assert (_labels(target)[real == ARM] == ARM).mean() > 0.5


def test_unusable_examples_are_skipped_with_a_warning(ui, capsys):
    target, example = _two_chairs(ui)
    example.partdistill_example = True
    other = example.copy()
    other.data = example.data.copy()
    other.name = "Table"
    bpy.context.scene.collection.objects.link(other)
    other.select_set(False)
    writeback.write_segmentation(other, ["top", "foot"], np.zeros(len(real := truth(other)),
                                 np.int32), np.ones(len(real), np.float32))  # fmt: skip
    other.partdistill_example = True
    main = draw(panels.PARTDISTILL_PT_main, bpy.context)
    assert "2 examples: Example, Table" in main.labels()
    assert bpy.ops.partdistill.segment_parts() == {"FINISHED"}
    out = capsys.readouterr().out
    assert "'Example' is marked Use as Example but has no segmentation" in out
    assert "'Table' is marked Use as Example but none of its parts (top, foot)" in out
    assert results.read_segmentation(target) is not None


def test_after_an_undo_in_edit_mode_the_panel_counts_the_labels_the_mesh_holds_now():
    """Undo (of a Refine, an Assign) changes the labels under an object in Edit Mode, where
    the panel shows counts read earlier: the undo handler reads them again from the edit mesh."""
    import bmesh
    from partdistill.partdistill_blender import registration

    bpy.ops.wm.read_factory_settings(use_empty=True)
    obj = demo.build_demo_chair()
    count = len(obj.data.polygons)
    labels = np.zeros(count, np.int32)
    writeback.write_segmentation(obj, ["back", "seat"], labels, np.ones(count, np.float32))
    known_labels.write_corrections(obj, np.arange(count) < 3, "seat")
    results.result_rows(obj)  # read in object mode: all back, 3 corrected
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    # What an undo step does: the edit mesh's layers change underneath the panel.
    edit = bmesh.from_edit_mesh(obj.data)
    part = edit.faces.layers.int[writeback.PART_ATTRIBUTE]
    correction = edit.faces.layers.int[known_labels.CORRECTION_ATTRIBUTE]
    for face in list(edit.faces)[:10]:  # a test's 10 faces, not a path that scales
        face[part] = 1
        face[correction] = 0
    bmesh.update_edit_mesh(obj.data)
    assert [r.face_count for r in results.result_rows(obj)] == [count, 0]  # stale until then
    meshes = len(bpy.data.meshes)
    registration._reread_after_undo()
    assert [r.face_count for r in results.result_rows(obj)] == [count - 10, 10]
    assert known_labels.corrected_face_count(obj) == 10
    assert len(bpy.data.meshes) == meshes  # the reading's copy of the mesh is gone
    bpy.ops.object.mode_set(mode="OBJECT")
