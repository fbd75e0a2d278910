"""The batch's known labels (issue 12, batch half): few-shot examples (``--examples``) and
corrections (``--corrections attribute:NAME``), with the real bpy module.

The few-shot test segments PSB chair 101 under a simulated teacher with the strong error mix
(``error_profiles.PROFILES["mix-strong"]``, about 31 2D mIoU), zero-shot and with two other
labelled chairs of the PSB as examples, and asserts the gain. Distill mode, 4 views of 64 px,
256 points and ``EPOCHS`` epochs keep it at about a minute on two cores.
"""

import json
import pathlib

import bpy
import numpy as np
import pytest
from conftest import SHARED_DATA
from partdistill.backend import manifest
from partdistill.backend.config import PartDistillConfig
from partdistill.backend.groundtruth import map_part_names, read_psb_labels
from partdistill.backend.teachers.error_profiles import PROFILES
from partdistill.partdistill_blender.batch_examples import load_examples
from partdistill.partdistill_blender.ground_truth import GROUND_TRUTH_ATTRIBUTE
from partdistill.partdistill_blender.importers import import_mesh_file
from partdistill.partdistill_blender.writeback import run_record, write_segmentation
from test_bad_inputs import earlier_outputs, file_digests, run_batch, scene_digest
from test_pipeline import OFF_CUBE

CHAIRS = SHARED_DATA / "psb_dev" / "Chair"
TARGET, EXAMPLES = CHAIRS / "101.off", [CHAIRS / "102.off", CHAIRS / "103.off"]
PARTS = ["back", "seat", "leg", "arm"]
RENAMES = {"backsupport": "back", "support": "seat"}
EPOCHS = 3
SMALL = ["--teacher", "simulated", "--views", "4", "--resolution", "64", "--points", "256",
         "--mode", "distill", "--epochs", str(EPOCHS), "--quiet"]  # fmt: skip
CHAIR = ["--parts", ", ".join(PARTS), "--category", "chair", "--ground-truth",
         "psb:backsupport=back,support=seat"]  # fmt: skip
# The strong error mix as teacher options of the simulated teacher.
STRONG = [flag for key, value in PROFILES["mix-strong"].noise.items()
          for flag in ("--teacher-option", f"{key}={value!r}".replace(" ", ""))]  # fmt: skip
# Measured (seed 0, the flags above): zero-shot mIoU 0.319, with the two examples 0.386
# (they lend their labels as one more view each, backend/example_transfer.py; the paper's
# joint student gave 0.854 here but fell below zero-shot over the 10 dev categories). The test
# asserts that the zero-shot run stays poor and that the examples add at least MARGIN.
ZERO_SHOT_AT_MOST = 0.45
MARGIN = 0.05


@pytest.fixture
def scene():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    yield


def _input_records(path) -> list[dict]:
    return [r for r in manifest.read_records(path) if r["event"] == manifest.INPUT]


def _psb_truth(path: pathlib.Path, count: int) -> np.ndarray:
    names, labels = read_psb_labels(path.with_name(path.stem + "_labels.txt"), count)
    return map_part_names(names, labels, PARTS, RENAMES).astype(np.int32)


def _cube_file(path: pathlib.Path, labels: str | None = "side\n1 3 4 5 6\ntop\n2\n") -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(OFF_CUBE)
    if labels is not None:
        path.with_name(path.stem + "_labels.txt").write_text(labels)
    return str(path)


# --- few-shot examples ------------------------------------------------------------------------


def test_examples_of_the_category_lift_a_poor_zero_shot_result(scene, capsys, tmp_path):
    assert TARGET.is_file(), "needs ../shared/data/psb_dev"
    runs = {}
    for name, extra in (("zero-shot", []), ("few-shot", ["--examples", *EXAMPLES])):
        out = tmp_path / name
        status, text = run_batch(capsys, "--input", TARGET, *CHAIR, *SMALL, *STRONG,
                                 "--labels-dir", out / "labels", "--manifest",
                                 out / "manifest.jsonl", *extra)  # fmt: skip
        assert status == 0, text
        (record,) = _input_records(out / "manifest.jsonl")
        labels = json.loads((out / "labels" / "101.json").read_text())["face_labels"]
        runs[name] = (record, np.array(labels))
        # The examples leave nothing behind: no object or mesh of theirs, and no
        # output of their own.
        assert sorted(p.name for p in (out / "labels").iterdir()) == ["101.json"]
        assert not bpy.data.objects and not bpy.data.meshes
    (zero, zero_labels), (few, few_labels) = runs["zero-shot"], runs["few-shot"]
    print(f"mIoU zero-shot {zero['miou']:.3f}, with {len(EXAMPLES)} examples {few['miou']:.3f}")
    assert "examples" not in zero and few["examples"] == len(EXAMPLES)
    assert (zero_labels != few_labels).mean() > 0.1
    assert zero["miou"] <= ZERO_SHOT_AT_MOST
    assert few["miou"] >= zero["miou"] + MARGIN


def test_examples_from_a_segmented_blend_and_a_psb_file_leave_the_scene(scene, tmp_path):
    # A .blend as Segment Parts writes it: chair 102 with its true parts as the segmentation,
    # and corrections on top (20 seat faces said to be "arm").
    (chair,) = import_mesh_file(EXAMPLES[0])
    truth = _psb_truth(EXAMPLES[0], len(chair.data.polygons))
    names = ["seat", "back", "leg", "arm", "wheel"]  # another order, and one part more
    stored = np.array([names.index(PARTS[t]) for t in truth], np.int32)
    write_segmentation(chair, names, stored, np.ones(len(stored), np.float32),
                       run_record(PartDistillConfig(), [chair.name]))  # fmt: skip
    seat = np.flatnonzero(truth == PARTS.index("seat"))[:20]
    corrections = np.full(len(truth), -1, np.int32)
    corrections[seat] = 0
    chair.data.attributes.new("partdistill_correction", "INT", "FACE")
    chair.data.attributes["partdistill_correction"].data.foreach_set("value", corrections)
    chair["partdistill_correction_parts"] = json.dumps(["arm"])
    blend = tmp_path / "segmented.blend"
    bpy.data.libraries.write(str(blend), {chair}, fake_user=True)
    bpy.ops.wm.read_factory_settings(use_empty=True)

    bpy.ops.mesh.primitive_cube_add()
    bpy.ops.mesh.primitive_uv_sphere_add()  # active and selected, the cube not
    before, selected = scene_digest(), [o.name for o in bpy.context.selected_objects]
    examples = load_examples([blend, EXAMPLES[1]], PARTS, RENAMES)
    assert scene_digest() == before
    assert [o.name for o in bpy.context.selected_objects] == selected == ["Sphere"]
    assert bpy.context.view_layer.objects.active.name == "Sphere"
    assert len(examples) == 2 and not any(e.views for e in examples)
    expected = truth.copy()
    expected[seat] = PARTS.index("arm")
    np.testing.assert_array_equal(examples[0].labels, expected)
    assert examples[0].geometry.num_polygons == len(truth)
    other = examples[1]
    np.testing.assert_array_equal(other.labels, _psb_truth(EXAMPLES[1], len(other.labels)))


# --- corrections ------------------------------------------------------------------------------


def _chair_with_wrong_truth():
    """Chair 101 in the open file, its ground truth (what the simulated teacher sees) wrong on
    the back (said to be "seat"), and the INT face attribute "fixed" right on the back's first
    half (-1 elsewhere). Returns (object, the back's faces, the corrected faces)."""
    (chair,) = import_mesh_file(TARGET)
    truth = _psb_truth(TARGET, len(chair.data.polygons))
    back = np.flatnonzero(truth == PARTS.index("back"))
    wrong = truth.copy()  # back and seat swapped: the teacher is wrong on both, alike
    wrong[back] = PARTS.index("seat")
    wrong[truth == PARTS.index("seat")] = PARTS.index("back")
    chair.data.attributes.new(GROUND_TRUTH_ATTRIBUTE, "INT", "FACE")
    chair.data.attributes[GROUND_TRUTH_ATTRIBUTE].data.foreach_set("value", wrong)
    corrected = back[: len(back) // 2]
    fixed = np.full(len(truth), -1, np.int32)
    fixed[corrected] = PARTS.index("back")
    chair.data.attributes.new("fixed", "INT", "FACE")
    chair.data.attributes["fixed"].data.foreach_set("value", fixed)
    return chair, back, corrected


def test_corrections_from_a_face_attribute_win_where_the_teacher_is_wrong(scene, capsys,
                                                                         tmp_path):  # fmt: skip
    chair, back, corrected = _chair_with_wrong_truth()
    bpy.ops.mesh.primitive_cube_add()  # no attribute "fixed": not corrected, not an error
    cube = bpy.context.active_object
    cube.data.attributes.new(GROUND_TRUTH_ATTRIBUTE, "INT", "FACE")  # all "back"
    results = {}
    for name, extra in (("teacher", []), ("corrected", ["--corrections", "attribute:fixed"])):
        out = tmp_path / name
        status, text = run_batch(capsys, "--objects", chair.name, cube.name, "--parts",
                                 ", ".join(PARTS), *SMALL, "--labels-out", out / "labels.json",
                                 "--manifest", out / "manifest.jsonl", *extra)  # fmt: skip
        assert status == 0, text
        objects = json.loads((out / "labels.json").read_text())["objects"]
        results[name] = {o["name"]: np.array(o["face_labels"]) for o in objects}
        (record,) = _input_records(out / "manifest.jsonl")
        results[name]["record"] = record
    teacher, fixed = results["teacher"][chair.name], results["corrected"][chair.name]
    shares = [(labels[corrected] == PARTS.index("back")).mean() for labels in (teacher, fixed)]
    print(f"corrected faces labelled back: {shares[0]:.3f} without, {shares[1]:.3f} with")
    assert shares[0] < 0.2  # the teacher's error, kept by the run without corrections
    assert shares[1] == 1.0
    assert results["corrected"]["record"]["corrected_faces"] == len(corrected)
    assert "corrected_faces" not in results["teacher"]["record"]


def test_a_corrections_flag_that_names_no_attribute_is_refused(scene, capsys, tmp_path):
    for spec in ("fixed", "attribute:", "vertex:fixed"):
        status, text = run_batch(capsys, "--demo", "chair", "--parts", "back, seat", *SMALL,
                                 "--corrections", spec)  # fmt: skip
        assert status == 2
        assert f"--corrections {spec!r}: expected attribute:NAME" in text


# --- bad examples -----------------------------------------------------------------------------


def _no_segmentation_blend(path: pathlib.Path) -> str:
    bpy.ops.mesh.primitive_cube_add()
    cube = bpy.context.active_object
    bpy.data.libraries.write(str(path), {cube}, fake_user=True)
    bpy.data.objects.remove(cube)
    bpy.data.meshes.remove(bpy.data.meshes["Cube"])
    return str(path)


@pytest.mark.parametrize(
    "case, said",
    [
        ("missing", "no such file: give a mesh file with its PSB labels beside it"),
        ("unlabelled mesh", "no labels: a mesh file used as an example needs its PSB labels "
                            "beside it, unlabelled_labels.txt"),
        ("unsegmented blend", "no labels: none of its mesh objects holds a PartDistill "
                              "segmentation"),
        ("other parts", "no face is labelled with any of the parts top, side (its labels name "
                        "lid, handle): give --parts names it uses or rename its parts with "
                        "--example-renames old=new"),
    ],
)  # fmt: skip
def test_an_unusable_example_stops_the_run_before_anything(scene, capsys, tmp_path, case,
                                                           said):  # fmt: skip
    data = tmp_path / "data"
    target = _cube_file(data / "cube.off")
    example = {
        "missing": lambda: str(data / "missing.off"),
        "unlabelled mesh": lambda: _cube_file(data / "unlabelled.off", labels=None),
        "unsegmented blend": lambda: _no_segmentation_blend(data / "plain.blend"),
        "other parts": lambda: _cube_file(data / "cup.off", "lid\n2\nhandle\n1 3 4 5 6\n"),
    }[case]()
    out = earlier_outputs(tmp_path / "out")
    before, files, inputs = scene_digest(), file_digests(out), file_digests(data)
    status, text = run_batch(capsys, "--input", target, "--parts", "top, side", "--ground-truth",
                             "psb", *SMALL, "--labels-dir", out, "--output", out, "--manifest",
                             out / "manifest.jsonl", "--examples", example)  # fmt: skip
    assert status == 2, text
    assert f"--examples {example}: {said}" in text
    assert file_digests(out) == files  # no manifest, no log, no labels
    assert file_digests(data) == inputs
    assert scene_digest() == before
