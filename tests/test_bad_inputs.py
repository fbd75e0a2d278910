"""Bad inputs (issue 11, part 5): one test per case, in the batch and, where it applies, in the
panel's Segment Parts. Each refused input asserts the message a user reads (it names the object,
file or flag, the problem and what to do) and that the scene, the input files and earlier
outputs are byte-identical afterwards; each odd but usable input asserts that it is labelled.

Cases covered elsewhere (not repeated here):
- a corrupt file inside a batch of good ones: test_batch_scale.py
  ``test_a_batch_with_a_corrupt_file_then_resumed`` (and with --jobs:
  ``test_jobs_share_the_inputs_and_the_manifest_gets_each_once``);
- Ctrl+C: test_batch_scale.py ``test_ctrl_c_leaves_whole_lines_and_says_how_to_go_on`` (the
  batch, with and without --jobs); the panel's Cancel / ESC at every stage: test_ui.py
  ``test_cancel_at_any_stage_leaves_the_object_as_it_was``;
- missing teacher weights in the panel: test_ui.py
  ``test_errors_reach_the_user_and_change_nothing``.

The batch runs in this process (``batch.main``) on objects of the open file or small files.
A full disk is tested twice: faked by monkeypatching (the writer raises ENOSPC, or Blender's
writer its message, once it has written part of a file; runs everywhere), and for real on a
64 KiB tmpfs filled up (root only, else skipped). A read-only folder is a read-only tmpfs
when the tests run as root (permission bits do not stop root), else a folder without write
permission.
"""

import hashlib
import json
import os
import pathlib
import subprocess
import sys

import bpy
import numpy as np
import pytest
from partdistill.partdistill_blender import batch, panels
from partdistill.partdistill_blender.ground_truth import GROUND_TRUTH_ATTRIBUTE
from test_pipeline import OFF_CUBE

SMALL = ["--teacher", "simulated", "--views", "2", "--resolution", "64", "--points", "256",
         "--quiet"]  # fmt: skip
DIRECT = [*SMALL, "--mode", "direct"]
FORWARD = [*SMALL, "--mode", "forward", "--epochs", "2"]
PARTS = ["--parts", "top, side"]
CUBE_VERTICES = [(x, y, z) for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]
CUBE_FACES = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]


# --- helpers ----------------------------------------------------------------------------------


@pytest.fixture
def scene():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    yield  # no bpy object: a test may load another file, which frees it


def mesh_object(name, vertices, faces, edges=(), labels=None):
    """A mesh object, selected and active, with ground truth: "top" (0) for faces whose normal
    points up, "side" (1) for the rest, unless ``labels`` are given."""
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(vertices, list(edges), faces)
    mesh.update()
    if len(mesh.polygons):
        if labels is None:
            normals = np.empty(len(mesh.polygons) * 3, np.float32)
            mesh.polygons.foreach_get("normal", normals)
            labels = np.where(normals.reshape(-1, 3)[:, 2] > 0.5, 0, 1)
        attribute = mesh.attributes.new(GROUND_TRUTH_ATTRIBUTE, "INT", "FACE")
        attribute.data.foreach_set("value", np.asarray(labels, np.int32))
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    obj.select_set(True)
    return obj


def cube(name="Cube"):
    return mesh_object(name, CUBE_VERTICES, CUBE_FACES)


def scene_digest() -> str:
    """Everything a run could change in the scene: every object's transform, its mesh's
    vertices, loops, polygons, attributes, shape keys, groups and materials (foreach_get)."""
    h = hashlib.sha256()
    for obj in sorted(bpy.data.objects, key=lambda o: o.name):
        h.update(f"{obj.name}|{obj.type}|{list(obj.keys())}".encode())
        h.update(np.array(obj.matrix_world, np.float64).tobytes())
        h.update(f"{[g.name for g in obj.vertex_groups]}{[m.name for m in obj.material_slots]}"
                 .encode())  # fmt: skip
        mesh = obj.data if obj.type == "MESH" else None
        if mesh is None:
            continue
        for elements, prop, width, dtype in ((mesh.vertices, "co", 3, np.float32),
                                             (mesh.loops, "vertex_index", 1, np.int32),
                                             (mesh.polygons, "loop_start", 1, np.int32),
                                             (mesh.polygons, "material_index", 1, np.int32),
                                             (mesh.edges, "vertices", 2, np.int32)):  # fmt: skip
            values = np.empty(len(elements) * width, dtype)
            elements.foreach_get(prop, values)
            h.update(values.tobytes())
        for attribute in sorted(mesh.attributes, key=lambda a: a.name):
            h.update(f"{attribute.name}|{attribute.domain}|{attribute.data_type}".encode())
            if attribute.data_type in ("INT", "FLOAT"):
                values = np.empty(len(attribute.data), np.float64)
                attribute.data.foreach_get("value", values)
                h.update(values.tobytes())
        for key in mesh.shape_keys.key_blocks if mesh.shape_keys else ():
            values = np.empty(len(key.data) * 3, np.float32)
            key.data.foreach_get("co", values)
            h.update(key.name.encode() + values.tobytes())
    h.update(str(sorted(m.name for m in bpy.data.materials)).encode())
    h.update(str(sorted(i.name for i in bpy.data.images)).encode())
    return h.hexdigest()


def file_digests(*folders) -> dict:
    """sha256 of every file under ``folders`` (inputs and earlier outputs)."""
    found = {}
    for folder in folders:
        for path in sorted(pathlib.Path(folder).rglob("*")):
            if path.is_file():
                found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def earlier_outputs(folder: pathlib.Path) -> pathlib.Path:
    """An output folder holding a previous run's files, which a failed run must not touch."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "labels.json").write_text('{"objects": [{"name": "before"}]}')
    (folder / "Cube.json").write_text('{"name": "Cube", "before": true}')
    return folder


def run_batch(capsys, *flags) -> tuple[int, str]:
    """batch.main in this process: (exit status, what the terminal showed)."""
    try:
        status = batch.main([str(f) for f in flags])
    except SystemExit as stopped:  # the flags' parser
        status = stopped.code
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def labels_of(path: pathlib.Path, name: str) -> np.ndarray:
    objects = json.loads(path.read_text())["objects"]
    return np.array(next(o for o in objects if o["name"] == name)["face_labels"])


def refused_in_batch(capsys, tmp_path, objects: list[str], *extra) -> str:
    """Run the batch on ``objects`` of the open file; assert it changed nothing; its output."""
    out = earlier_outputs(tmp_path / "out")
    before, files = scene_digest(), file_digests(out)
    status, text = run_batch(capsys, "--objects", *objects, *PARTS, *DIRECT, "--labels-out",
                             out / "labels.json", "--labels-dir", out, *extra)  # fmt: skip
    assert status in (1, 2), text
    assert scene_digest() == before
    assert file_digests(out) == files
    return text


def refused_in_panel(ui) -> str:
    """Press Segment Parts on the selection; assert it is refused and changes nothing."""
    before = scene_digest()
    with pytest.raises(RuntimeError) as refused:
        bpy.ops.partdistill.segment_parts()
    assert scene_digest() == before
    return str(refused.value)


def panel_parts(ui, names=("top", "side")) -> None:
    ui.parts.clear()
    for name in names:
        ui.parts.add().name = name
    ui.teacher = "simulated"
    ui.num_views, ui.resolution, ui.num_points, ui.mode = 2, 64, 256, "direct"


# --- objects ----------------------------------------------------------------------------------


def test_batch_names_each_object_that_is_no_mesh(scene, capsys, tmp_path):
    bpy.ops.object.camera_add()
    bpy.ops.curve.primitive_bezier_curve_add()
    curve = bpy.context.active_object.name  # "BézierCurve" in Blender 4.x
    bpy.ops.object.empty_add()
    cube()
    text = refused_in_batch(capsys, tmp_path, ["Camera", curve, "Empty", "Cube"])
    assert "'Camera' is a camera object, not a mesh: leave it out of the selection" in text
    assert f"{curve!r} is a curve object, not a mesh" in text
    assert "convert it (Object > Convert > Mesh)" in text
    assert "'Empty' is an empty object, not a mesh" in text


def test_panel_says_why_a_camera_cannot_be_segmented(ui):
    bpy.ops.object.camera_add()  # active and selected: the button is grey, the panel says why
    assert not bpy.ops.partdistill.segment_parts.poll()
    assert panels.object_summary(bpy.context) == "Camera is a camera: select a mesh object"


@pytest.mark.parametrize("kind", ["loose edges", "loose vertices", "no surface"])
def test_a_mesh_with_no_faces_is_refused_by_name(scene, capsys, tmp_path, kind):
    if kind == "loose edges":
        mesh_object("Wire", CUBE_VERTICES[:4], [], edges=[(0, 1), (1, 3), (3, 2)])
        said = "'Wire' has no faces (only 3 loose edges): PartDistill labels faces"
    elif kind == "loose vertices":
        mesh_object("Wire", CUBE_VERTICES, [])
        said = "'Wire' has no faces (only 8 loose vertices)"
    else:  # faces, every one degenerate (all its corners on one line)
        mesh_object("Wire", [(0, 0, 0), (1, 0, 0), (2, 0, 0), (3, 0, 0)], [(0, 1, 2), (1, 2, 3)])
        said = "'Wire' has 2 faces but no surface area (every face is degenerate)"
    text = refused_in_batch(capsys, tmp_path, ["Wire"])
    assert said in text
    assert "Fill" in text or "fix the mesh" in text


def test_panel_refuses_a_mesh_with_only_loose_edges(ui):
    mesh_object("Wire", CUBE_VERTICES[:4], [], edges=[(0, 1), (1, 3)])
    panel_parts(ui)
    message = refused_in_panel(ui)
    assert "'Wire' has no faces (only 2 loose edges)" in message
    assert "(Edit Mode > Face > Fill) or leave it out" in message


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nan_or_infinite_coordinates_are_refused(scene, capsys, tmp_path, value):
    obj = cube("Broken")
    obj.data.vertices[5].co.x = value
    text = refused_in_batch(capsys, tmp_path, ["Broken"])
    assert ("'Broken' has 1 vertices with NaN or infinite coordinates (the first is vertex 5): "
            "delete or move them in Edit Mode") in text  # fmt: skip


def test_panel_refuses_nan_coordinates(ui):
    cube("Broken").data.vertices[0].co.z = float("nan")
    panel_parts(ui)
    assert "'Broken' has 1 vertices with NaN or infinite" in refused_in_panel(ui)


def test_odd_faces_are_labelled_not_refused(scene, capsys, tmp_path):
    # A cube's top as an octagon (an n-gon), an L-shaped concave face beside it, a duplicate of
    # a side face and a zero-area triangle (three corners on one line).
    vertices = [*CUBE_VERTICES]
    faces = [f for f in CUBE_FACES if f != (1, 5, 7, 3)]  # the top (z = +1) is replaced
    ring = [(np.cos(a), np.sin(a), 1.0) for a in np.linspace(0, 2 * np.pi, 9)[:-1]]
    faces.append(tuple(range(len(vertices), len(vertices) + 8)))
    vertices += ring
    ell = [(1.5, 0, 1), (3, 0, 1), (3, 0.5, 1), (2, 0.5, 1), (2, 2, 1), (1.5, 2, 1)]
    faces.append(tuple(range(len(vertices), len(vertices) + 6)))
    vertices += ell
    faces.append(CUBE_FACES[2])  # a duplicate face
    faces.append((0, 1, len(vertices)))  # zero area: vertex 0, 1 and their midpoint
    vertices.append((-1, -1, 0))
    obj = mesh_object("Odd", vertices, faces)
    count = len(obj.data.polygons)
    labels_out = tmp_path / "labels.json"
    status, text = run_batch(capsys, "--objects", "Odd", *PARTS, *FORWARD,
                             "--labels-out", labels_out)  # fmt: skip
    assert status == 0, text
    labels = labels_of(labels_out, "Odd")
    assert len(labels) == count and (labels >= 0).all()  # every face, the odd ones too
    assert labels[count - 4] == 0 and labels[count - 3] == 0  # the octagon and the L are "top"
    assert obj.data.attributes["partdistill_part"] is not None


def test_negative_scale_transforms_and_modifiers_segment_what_is_seen(scene, capsys, tmp_path):
    obj = cube("Mirrored")
    obj.scale = (-1.0, 2.0, 0.5)
    obj.rotation_euler = (0.0, 0.0, 0.7)  # unapplied, about the vertical axis: top stays up
    obj.location = (3.0, -2.0, 1.0)
    obj.modifiers.new("Subdivision", "SUBSURF").levels = 1
    labels_out = tmp_path / "labels.json"
    status, text = run_batch(capsys, "--objects", "Mirrored", *PARTS, *FORWARD,
                             "--labels-out", labels_out)  # fmt: skip
    assert status == 0, text
    labels = labels_of(labels_out, "Mirrored")
    assert len(labels) == 6  # the object's own polygons, not the modifier's 24
    top = CUBE_FACES.index((1, 5, 7, 3))
    assert labels[top] == 0 and (np.delete(labels, top) >= 0).all()
    assert len(obj.modifiers) == 1 and tuple(obj.scale) == (-1.0, 2.0, 0.5)  # left as they were


def test_a_modifier_that_drops_the_polygon_trace_is_refused_with_what_to_do(scene, capsys,
                                                                            tmp_path):  # fmt: skip
    obj = cube("Remeshed")
    obj.modifiers.new("Remesh", "REMESH")
    text = refused_in_batch(capsys, tmp_path, ["Remeshed"])
    assert "'Remeshed': its modifiers drop face attributes" in text
    assert "apply them (Object > Apply > Visual Geometry to Mesh)" in text


def test_shape_keys_segment_the_shape_as_seen_and_label_the_base_polygons(scene, capsys,
                                                                           tmp_path):  # fmt: skip
    # Decision: the evaluated mesh (shape keys mixed in) is rendered and segmented; shape keys
    # move vertices only, so its polygons are the base mesh's and the labels land on them.
    obj = cube("Keyed")
    obj.shape_key_add(name="Basis")
    tall = obj.shape_key_add(name="Tall")
    for index in (1, 3, 5, 7):  # the top corners, 3 units up
        tall.data[index].co.z = 4.0
    tall.value = 1.0
    base = np.empty(24, np.float32)
    obj.data.vertices.foreach_get("co", base)
    labels_out = tmp_path / "labels.json"
    status, text = run_batch(capsys, "--objects", "Keyed", *PARTS, *FORWARD, "--views", "6",
                             "--labels-out", labels_out)  # fmt: skip
    assert status == 0, text
    labels = labels_of(labels_out, "Keyed")
    assert len(labels) == 6 and labels[CUBE_FACES.index((1, 5, 7, 3))] == 0
    after = np.empty(24, np.float32)
    obj.data.vertices.foreach_get("co", after)
    assert np.array_equal(after, base)
    assert [k.name for k in obj.data.shape_keys.key_blocks] == ["Basis", "Tall"]
    assert tall.data[1].co.z == 4.0


def _linked_cube(tmp_path) -> pathlib.Path:
    """A library .blend with a cube; the cube linked (read-only) into a fresh scene."""
    library = tmp_path / "library.blend"
    tmp_path.mkdir(parents=True, exist_ok=True)
    cube("Shared")
    bpy.data.libraries.write(str(library), {bpy.data.objects["Shared"]})
    bpy.ops.wm.read_factory_settings(use_empty=True)
    with bpy.data.libraries.load(str(library), link=True) as (source, target):
        target.objects = ["Shared"]
    obj = target.objects[0]
    bpy.context.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    obj.select_set(True)
    return library


def test_a_mesh_linked_from_a_library_is_refused(scene, capsys, tmp_path):
    # Decision: a clear message, no local copy (a copy made behind the user's back forks their
    # asset; Make Local is one click when that is what they want).
    library = _linked_cube(tmp_path / "lib")
    library_before = file_digests(library.parent)
    text = refused_in_batch(capsys, tmp_path, ["Shared"])
    assert f"'Shared' is linked from the library {str(library)!r}" in text
    assert "cannot be changed here: make it local (Object > Relations > Make Local" in text
    assert file_digests(library.parent) == library_before


def test_panel_refuses_a_linked_mesh(ui, tmp_path):
    _linked_cube(tmp_path)  # a new file: the add-on's settings are the new scene's
    panel_parts(bpy.context.scene.partdistill)
    assert "'Shared' is linked from the library" in refused_in_panel(None)


# --- part names ---------------------------------------------------------------------------------


@pytest.mark.parametrize("parts, said", [
    ("", "no part names given: type them separated by commas"),
    ("top, side, Top", "part name 'Top' is given twice"),
    ("top, " + "a very long part name " * 4, "bytes long; Blender names hold 51 here: shorten it"),
])  # fmt: skip
def test_part_names_the_batch_refuses(scene, capsys, tmp_path, parts, said):
    cube()
    out = earlier_outputs(tmp_path / "out")
    before, files = scene_digest(), file_digests(out)
    status, text = run_batch(capsys, "--objects", "Cube", "--parts", parts, *DIRECT,
                             "--labels-out", out / "labels.json")  # fmt: skip
    assert status == 2 and said in text, text
    assert scene_digest() == before and file_digests(out) == files


@pytest.mark.parametrize("names", [["top"], ["top", "side", *(f"part {i}" for i in range(62))],
                                   ["верх", "側面"]])  # fmt: skip
def test_part_names_that_work(scene, capsys, tmp_path, names):
    obj = cube()
    labels_out = tmp_path / "labels.json"
    status, text = run_batch(capsys, "--objects", "Cube", "--parts", ", ".join(names), *DIRECT,
                             "--labels-out", labels_out)  # fmt: skip
    assert status == 0, text
    assert json.loads(labels_out.read_text(encoding="utf-8"))["objects"][0]["parts"] == names
    assert [g.name for g in obj.vertex_groups] == names
    assert [s.material.name for s in obj.material_slots] == [f"PartDistill {n}" for n in names]
    labels = labels_of(labels_out, "Cube")
    assert labels[CUBE_FACES.index((1, 5, 7, 3))] == 0  # "top" (or "верх") is the top


def test_panel_refuses_a_part_name_blender_would_cut(ui):
    cube()
    panel_parts(ui, ["top", "é" * 30])  # 60 bytes: fits a name, not its material's name
    message = refused_in_panel(ui)
    assert "is 60 bytes long; Blender names hold 51 here: shorten it" in message


# --- teacher weights --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    from fixtures_teachers import save_tiny_clip, save_tiny_owlv2

    root = tmp_path_factory.mktemp("models")
    return save_tiny_clip(root / "clip"), save_tiny_owlv2(root / "owlv2")


def _broken_clip(tiny_models, tmp_path, how: str) -> pathlib.Path:
    import shutil

    clip, owlv2 = tiny_models
    if how == "wrong kind":
        return owlv2
    folder = pathlib.Path(shutil.copytree(clip, tmp_path / "clip"))
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2] if how == "truncated" else b"\x00garbage" * 64)
    return folder


@pytest.mark.parametrize("how, said", [
    ("missing", "was not found: no directory"),
    ("truncated", "model.safetensors is corrupt or incomplete: it is cut short"),
    ("corrupt", "model.safetensors is corrupt or incomplete: its header"),
    ("wrong kind", "is a 'owlv2' model; the clip teacher loads 'clip' or 'siglip' models"),
])  # fmt: skip
def test_unusable_teacher_weights_stop_before_rendering(scene, capsys, tmp_path, tiny_models,
                                                        how, said):  # fmt: skip
    folder = tmp_path / "nowhere" if how == "missing" else _broken_clip(tiny_models, tmp_path, how)
    cube()
    out = earlier_outputs(tmp_path / "out")
    before, files = scene_digest(), file_digests(out, folder)
    status, text = run_batch(capsys, "--objects", "Cube", *PARTS, "--teacher", "clip",
                             "--model", folder, "--views", "2", "--resolution", "64",
                             "--labels-out", out / "labels.json")  # fmt: skip
    assert status == 2 and said in text, text
    assert "--model DIR" in text  # what to do
    assert scene_digest() == before and file_digests(out, folder) == files  # nothing rendered


def test_panel_says_the_weights_are_truncated_before_rendering(ui, tmp_path, tiny_models):
    from partdistill.partdistill_blender import addon

    folder = _broken_clip(tiny_models, tmp_path, "truncated")
    cube()
    panel_parts(ui)
    ui.teacher = "clip"
    prefs = bpy.context.preferences.addons.new()
    prefs.module = "partdistill"
    try:
        addon.get_preferences().model = str(folder)
        message = refused_in_panel(ui)
    finally:
        bpy.context.preferences.addons.remove(prefs)
    assert "model.safetensors is corrupt or incomplete: it is cut short" in message
    assert "Set Model in the add-on's preferences" in message


# --- out of GPU memory --------------------------------------------------------------------------


class _OutOfMemoryOnMany:
    """A teacher that runs out of GPU memory on more than one view at once."""

    kind = "pixel"

    def __init__(self, parts):
        self.parts = parts

    def predict(self, views):
        import torch

        if len(views) > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        probs = np.zeros((*views[0].face_ids.shape, len(self.parts)), np.float32)
        probs[..., 0] = 1.0
        return [probs]


def oom_teacher(parts, **options):
    """Factory for ``--teacher test_bad_inputs:oom_teacher``."""
    return _OutOfMemoryOnMany(parts)


def test_teacher_out_of_gpu_memory_predicts_one_view_at_a_time(scene, capsys, tmp_path):
    cube()
    labels_out = tmp_path / "labels.json"
    status, text = run_batch(capsys, "--objects", "Cube", *PARTS, *DIRECT, "--teacher",
                             "test_bad_inputs:oom_teacher", "--labels-out", labels_out)  # fmt: skip
    assert status == 0, text
    assert ("the teacher ran out of GPU memory on 2 views at once: predicting them one view at "
            "a time") in text  # fmt: skip
    assert (labels_of(labels_out, "Cube")[labels_of(labels_out, "Cube") >= 0] == 0).all()


def test_student_out_of_gpu_memory_runs_again_on_the_cpu(scene, capsys, tmp_path, monkeypatch):
    import torch
    from partdistill.backend import pipeline

    train, calls = pipeline.train_student, []

    def out_of_memory_once(data, parts, config, device, progress):
        calls.append(config.device)
        if len(calls) == 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 8.00 GiB")
        return train(data, parts, config, device, progress)

    monkeypatch.setattr(pipeline, "train_student", out_of_memory_once)
    cube()
    labels_out = tmp_path / "labels.json"
    status, text = run_batch(capsys, "--objects", "Cube", *PARTS, *FORWARD, "--device", "auto",
                             "--labels-out", labels_out)  # fmt: skip
    assert status == 0, text
    assert calls == ["auto", "cpu"]
    assert "out of GPU memory (CUDA out of memory. Tried to allocate 8.00 GiB)" in text
    assert "running the teacher and the student again on the CPU" in text
    assert (labels_of(labels_out, "Cube") >= 0).all()


# --- outputs ------------------------------------------------------------------------------------


def _off_inputs(folder: pathlib.Path, names=("a", "b")) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / f"{name}.off").write_text(OFF_CUBE)
    return [str(folder / f"{name}.off") for name in names]


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder no file can be created in, also for root (a read-only tmpfs)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    (folder / "earlier.json").write_text("{}")
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)],
                             capture_output=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip("root, and no read-only tmpfs can be mounted here")
    yield folder
    subprocess.run(["umount", str(folder)], check=False)


def test_an_unwritable_output_folder_stops_the_run_before_anything(scene, capsys, tmp_path,
                                                                   read_only_folder):  # fmt: skip
    data = tmp_path / "data"
    _off_inputs(data)
    files = file_digests(data, read_only_folder)
    status, text = run_batch(capsys, "--input", data, *PARTS, *DIRECT, "--ground-truth", "",
                             "--labels-dir", read_only_folder / "labels",
                             "--manifest", tmp_path / "m.jsonl")  # fmt: skip
    assert status == 2, text
    assert f"--labels-dir {read_only_folder / 'labels'}: cannot write in {read_only_folder}" in text
    assert "choose a folder you can write to" in text
    assert file_digests(data, read_only_folder) == files
    assert not (tmp_path / "m.jsonl").exists() and not list(bpy.data.images)  # nothing began


def test_missing_output_folders_are_made(scene, capsys, tmp_path):
    cube()
    out = tmp_path / "not" / "there" / "yet"
    status, text = run_batch(capsys, "--objects", "Cube", *PARTS, *DIRECT, "--labels-dir", out,
                             "--output", out / "scene.blend")  # fmt: skip
    assert status == 0, text
    assert (out / "Cube.json").is_file() and (out / "scene.blend").is_file()


@pytest.mark.parametrize("flag", ["--labels-out", "--preview", "--manifest", "--log"])
def test_an_output_path_equal_to_an_input_is_refused(scene, capsys, tmp_path, flag):
    a, _ = _off_inputs(tmp_path / "data")
    files = file_digests(tmp_path / "data")
    status, text = run_batch(capsys, "--input", tmp_path / "data", *PARTS, *DIRECT, flag, a)
    assert status == 2, text
    assert f"{flag} {a} is also an input: inputs are never overwritten" in text
    assert file_digests(tmp_path / "data") == files


def test_a_full_disk_leaves_earlier_outputs_whole_and_says_so(scene, capsys, tmp_path,
                                                             monkeypatch):  # fmt: skip
    # Fake ENOSPC (monkeypatched): the writer of every labels file writes part of it, then the
    # disk is "full"; the atomic write must leave the earlier file and no partial one.
    import errno

    from partdistill.partdistill_blender import batch_local

    real = batch_local.write_atomically

    def full_disk(path, write):
        def partly(temporary):
            pathlib.Path(temporary).write_text('{"half": ')
            raise OSError(errno.ENOSPC, "No space left on device", str(temporary))

        real(path, partly)

    monkeypatch.setattr(batch_local, "write_atomically", full_disk)
    cube()
    out = earlier_outputs(tmp_path / "out")
    files = file_digests(out)
    status, text = run_batch(capsys, "--objects", "Cube", *PARTS, *DIRECT, "--labels-dir", out,
                             "--labels-out", out / "labels.json")  # fmt: skip
    assert status == 1, text
    assert f"open file: the disk is full writing {out / 'Cube.json'}" in text
    assert "free some space, then go on with --resume MANIFEST" in text
    assert "could not write the gathered outputs: the disk is full" in text
    assert file_digests(out) == files and not list(out.glob(".*partial*"))


@pytest.fixture
def full_disk(tmp_path):
    """A real full file system: a 64 KiB tmpfs filled up (root only), holding an earlier
    output written before it filled."""
    folder = tmp_path / "full"
    folder.mkdir()
    if os.geteuid() != 0:
        pytest.skip("a tmpfs needs root; the monkeypatched full disk runs everywhere")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
                             capture_output=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip("no tmpfs can be mounted here")
    try:
        (folder / "Cube.json").write_text('{"name": "Cube", "before": true}')
        filler = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            with pytest.raises(OSError, match="No space left"):
                while True:
                    os.write(filler, b"\0" * 4096)
        finally:
            os.close(filler)
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def test_a_really_full_disk_fails_the_input_in_words(scene, capsys, full_disk):
    cube()
    files = file_digests(full_disk)
    status, text = run_batch(capsys, "--objects", "Cube", *PARTS, *DIRECT,
                             "--labels-dir", full_disk)  # fmt: skip
    assert status == 1, text
    assert f"open file: the disk is full writing {full_disk / 'Cube.json'}" in text
    assert file_digests(full_disk) == files and not list(full_disk.glob(".*partial*"))


def _blend_per_object_on(capsys, tmp_path, folder) -> tuple[int, str, dict]:
    """Two files with a .blend per object in ``folder``: (status, text, manifest records)."""
    a, b = _off_inputs(tmp_path / "data")
    for name in "ab":  # PSB ground truth for the simulated teacher
        (tmp_path / "data" / f"{name}_labels.txt").write_text("side\n1 3 4 5 6\ntop\n2\n")
    run_list = tmp_path / "run" / "manifest.jsonl"
    status, text = run_batch(capsys, "--input", a, b, *PARTS, *DIRECT, "--ground-truth", "psb",
                             "--output", folder, "--manifest", run_list)  # fmt: skip
    return status, text, _records(run_list)


def _stopped_at_the_first_file(status, text, records, folder, tmp_path) -> None:
    a, b = (str(tmp_path / "data" / f"{n}.off") for n in "ab")
    assert status == 1, text
    assert records[a]["status"] == "failed" and b not in records  # b runs on --resume
    assert f"the disk is full writing {folder / 'a.blend'}" in records[a]["error"]
    assert "stopped after 1 of 2 inputs: the disk is full" in text
    assert "to go on: " in text and "--resume" in text
    assert not list(folder.glob(".*partial*"))


def test_blender_saying_the_disk_is_full_stops_the_batch_in_words(scene, capsys, tmp_path,
                                                                 monkeypatch):  # fmt: skip
    # Blender's writers say a full disk only in their message (measured on a full tmpfs:
    # libraries.write raises OSError("Error: No space left on device\n") without an errno,
    # save_as_mainfile a RuntimeError with that text). Each later file would fail alike.
    from partdistill.partdistill_blender import batch_local, batch_outputs

    def blender_on_a_full_disk(path, objects=None):
        def write(temporary):
            pathlib.Path(temporary).write_bytes(b"BLENDER")  # a part, then the disk is full
            raise RuntimeError("Error: No space left on device\n")

        batch_outputs._write_blend(path, write)

    monkeypatch.setattr(batch_local, "save_blend", blender_on_a_full_disk)
    folder = tmp_path / "out"
    status, text, records = _blend_per_object_on(capsys, tmp_path, folder)
    _stopped_at_the_first_file(status, text, records, folder, tmp_path)
    assert not (folder / "a.blend").exists()


def test_a_really_full_disk_stops_a_batch_of_blend_files(scene, capsys, tmp_path, full_disk):
    files = file_digests(full_disk)
    status, text, records = _blend_per_object_on(capsys, tmp_path, full_disk)
    _stopped_at_the_first_file(status, text, records, full_disk, tmp_path)
    assert file_digests(full_disk) == files


def test_a_manifest_on_a_full_disk_stops_the_run_before_anything(scene, capsys, tmp_path,
                                                                 full_disk):  # fmt: skip
    a, b = _off_inputs(tmp_path / "data")
    files = file_digests(full_disk)
    status, text = run_batch(capsys, "--input", a, b, *PARTS, *DIRECT, "--manifest",
                             full_disk / "run.jsonl", "--log", tmp_path / "run.log")  # fmt: skip
    assert status == 2, text
    assert f"--manifest {full_disk / 'run.jsonl'}: the disk is full" in text
    assert "Traceback" not in text and file_digests(full_disk) == files


def test_a_log_on_a_full_disk_loses_lines_not_the_run(scene, capsys, tmp_path, full_disk):
    (a,) = _off_inputs(tmp_path / "data", ["a"])
    (tmp_path / "data" / "a_labels.txt").write_text("side\n1 3 4 5 6\ntop\n2\n")
    out = tmp_path / "out"
    status, text = run_batch(capsys, "--input", a, *PARTS, *DIRECT, "--ground-truth", "psb",
                             "--labels-dir", out, "--manifest", out / "run.jsonl",
                             "--log", full_disk / "run.log")  # fmt: skip
    assert status == 0, text
    assert (out / "a.json").is_file() and "done: 1 segmented, 0 failed" in text
    assert "Logging error" not in text and "Traceback" not in text


# --- a batch of files -----------------------------------------------------------------------------


def test_files_that_hold_no_mesh_fail_and_the_good_ones_go_on(scene, capsys, tmp_path):
    data = tmp_path / "data"
    (a,) = _off_inputs(data, ["a"])
    (data / "points.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\n")  # vertices, no faces
    (data / "notes.txt").write_text("a shopping list")
    files = file_digests(data)
    out = tmp_path / "out"
    status, text = run_batch(capsys, "--input", a, data / "points.obj", data / "notes.txt",
                             *PARTS, *DIRECT, "--ground-truth", "", "--labels-dir", out,
                             "--teacher", "test_bad_inputs:oom_teacher",
                             "--manifest", out / "manifest.jsonl")  # fmt: skip
    assert status == 1, text
    records = _records(out / "manifest.jsonl")
    assert records[a]["status"] == "done" and (out / "a.json").is_file()
    points, notes = records[str(data / "points.obj")], records[str(data / "notes.txt")]
    assert points["status"] == "failed"
    assert f"{data / 'points.obj'}: the file holds no mesh with faces" in points["error"]
    assert notes["status"] == "failed"
    assert f"{data / 'notes.txt'}: unsupported file type '.txt'; supported: .off" in notes["error"]
    assert file_digests(data) == files


def _records(path) -> dict:
    from partdistill.backend import manifest

    return {r["file"]: r for r in manifest.read_records(path) if r["event"] == manifest.INPUT}


def test_a_killed_compute_process_fails_its_input_and_the_next_goes_on(scene, capsys, tmp_path,
                                                                      monkeypatch):  # fmt: skip
    # The compute half in another Python (as with "Python with torch"), killed with SIGKILL the
    # first time it starts: what the kernel's out-of-memory killer does.
    marker, fake = tmp_path / "killed-once", tmp_path / "python-killed-once"
    fake.write_text(f"#!/bin/sh\nif [ ! -e {marker} ]; then touch {marker}; kill -9 $$; fi\n"
                    f"exec {sys.executable} \"$@\"\n")  # fmt: skip
    fake.chmod(0o755)
    monkeypatch.setenv("PARTDISTILL_PYTHON", str(fake))
    data = tmp_path / "data"
    a, b = _off_inputs(data)
    (data / "a_labels.txt").write_text("side\n1 3 4 5 6\ntop\n2\n")
    (data / "b_labels.txt").write_text("side\n1 3 4 5 6\ntop\n2\n")
    out = tmp_path / "out"
    status, text = run_batch(capsys, "--input", a, b, *PARTS, *DIRECT, "--ground-truth", "psb",
                             "--labels-dir", out, "--manifest", out / "manifest.jsonl")  # fmt: skip
    assert status == 1, text
    records = _records(out / "manifest.jsonl")
    assert records[a]["status"] == "failed" and records[b]["status"] == "done"
    assert "was killed by signal 9 (SIGKILL) before it finished" in records[a]["error"]
    assert "run the input again (--resume)" in records[a]["error"]
    assert not (out / "a.json").exists() and (out / "b.json").is_file()
