"""The Blender UI's operators with the real bpy module in background mode: settings -> config,
Segment Parts on the demo chair with the simulated teacher, errors, cancelling at every stage,
clear, re-run, the result operators (select / hide / isolate / low confidence, also from edit
mode), evidence images, and the run record. Panels, part list, presets and preferences:
tests/test_panels.py.

Not exercised here: the modal operator's event loop (no window, no timer). The modal only
sequences ``StagedRun.step()``, which the cancel tests drive exactly as the modal does, worker
thread included; the real window runs it (.ci/ui_*.sh).
"""

import time

import bpy
import numpy as np
import pytest
from partdistill.backend.config import PartDistillConfig
from partdistill.partdistill_blender import (
    addon,
    demo,
    evidence,
    job_registry,
    properties,
    results,
)
from partdistill.partdistill_blender.staged_run import StagedRun
from ui_fixtures import CancelAt, chair_scene, snapshot, truth


# --- settings -> config -------------------------------------------------------------------
def test_settings_start_from_the_config_defaults(ui):
    assert properties.config_from_settings(ui, None) == PartDistillConfig()
    ui.num_views, ui.mode, ui.one_student, ui.device = 6, "forward", True, "cpu"
    config = properties.config_from_settings(ui, None)
    assert (config.num_views, config.mode, config.collection, config.device) == (
        6, "forward", True, "cpu")  # fmt: skip
    ui.teacher = properties.CUSTOM_TEACHER
    with pytest.raises(ValueError, match="custom teacher needs a factory"):
        properties.config_from_settings(ui, None)


# --- Segment Parts ------------------------------------------------------------------------
def test_segment_parts_writes_parts_matching_ground_truth(ui):
    # The full method (student + backward distillation), small: the simulated teacher errs.
    obj = chair_scene(
        ui, mode="distill", resolution=128, num_points=1024, epochs=12, steps_per_epoch=5
    )
    assert results.result_rows(obj) is None
    assert bpy.ops.partdistill.segment_parts() == {"FINISHED"}

    assert [g.name for g in obj.vertex_groups] == demo.DEMO_CHAIR_PARTS
    assert [s.material.name for s in obj.material_slots] == [
        "PartDistill " + p for p in demo.DEMO_CHAIR_PARTS
    ]
    labels = np.empty(len(obj.data.polygons), np.int32)
    obj.data.attributes["partdistill_part"].data.foreach_get("value", labels)
    agreement = float(np.mean(labels == truth(obj)))
    always_largest_part = np.bincount(truth(obj)).max() / len(labels)
    assert agreement > max(0.75, always_largest_part + 0.1), (agreement, always_largest_part)

    rows = results.result_rows(obj)
    assert [r.name for r in rows] == demo.DEMO_CHAIR_PARTS
    assert [r.face_count for r in rows] == np.bincount(labels[labels >= 0], minlength=4).tolist()
    assert all(r.material_name == "PartDistill " + r.name for r in rows)
    assert all(0.0 < r.mean_confidence <= 1.0 for r in rows if r.face_count)
    assert ui.is_running is False and ui.progress_text == ""


def test_errors_reach_the_user_and_change_nothing(ui):
    obj = chair_scene(ui)
    before = snapshot(obj)
    ui.teacher = properties.CUSTOM_TEACHER
    ui.custom_teacher = "no_such_module_here:factory"
    with pytest.raises(RuntimeError, match="cannot import teacher module 'no_such_module_here'"):
        bpy.ops.partdistill.segment_parts()
    assert snapshot(obj) == before

    # Missing weights grey Segment Parts before any view is rendered, saying what to do.
    ui.teacher = "clip"
    prefs = bpy.context.preferences.addons.new()
    prefs.module = "partdistill"
    try:
        addon.get_preferences().model = "/nonexistent/clip-model"
        images = len(bpy.data.images)
        with pytest.raises(RuntimeError) as err:
            bpy.ops.partdistill.segment_parts()
    finally:
        bpy.context.preferences.addons.remove(prefs)
    message = str(err.value)  # Segment Parts is grey; its tooltip says why and what to press
    assert "poll()" in message
    assert "The model folder /nonexistent/clip-model does not exist" in message
    assert "Use Folder" in message and "set Model in the add-on's preferences" in message
    assert "download_models.py" not in message and "--model" not in message  # command line
    assert snapshot(obj) == before and len(bpy.data.images) == images  # nothing rendered

    ui.teacher = "simulated"
    ui.parts.clear()
    with pytest.raises(RuntimeError, match="no part names given"):
        bpy.ops.partdistill.segment_parts()
    assert snapshot(obj) == before
    bpy.ops.mesh.primitive_cube_add()  # a mesh without ground truth
    cube, before = bpy.context.active_object, snapshot(obj)
    for name in ("top", "side"):
        ui.parts.add().name = name
    with pytest.raises(RuntimeError, match="simulated teacher needs ground-truth labels on 'Cube'"):
        bpy.ops.partdistill.segment_parts()
    assert snapshot(obj) == before and len(cube.vertex_groups) == 0


@pytest.mark.parametrize("stage", ["render", "teacher", "features", "student"])
def test_cancel_at_any_stage_leaves_the_object_as_it_was(ui, stage):
    obj = chair_scene(ui, mode="forward")
    before = snapshot(obj)
    config = properties.config_from_settings(ui, None)
    job = CancelAt([obj], demo.DEMO_CHAIR_PARTS, config)
    job.stage = stage
    seen = set()
    while not job.step():  # as the modal's timer does, worker thread included
        seen.add(job.progress[0])
        time.sleep(0.005)
    assert job.cancelled and job.results is None and job.error is None
    assert snapshot(obj) == before
    assert results.result_rows(obj) is None


def test_cancel_while_rendering_by_the_cancel_button(ui):
    obj = chair_scene(ui)
    before = snapshot(obj)
    job = StagedRun([obj], demo.DEMO_CHAIR_PARTS, properties.config_from_settings(ui))
    assert job.step() is False and job.step() is False  # two views rendered
    job.cancel()
    assert job.step() is True and job.cancelled
    assert snapshot(obj) == before


def test_clear_restores_and_a_second_run_replaces_the_first(ui):
    obj = chair_scene(ui)
    obj.data.materials.append(bpy.data.materials.new("Wood"))  # the user's own material
    before = snapshot(obj)
    bpy.ops.partdistill.segment_parts()
    ui.parts.remove(3)  # back, seat, leg
    bpy.ops.partdistill.segment_parts()
    assert [g.name for g in obj.vertex_groups] == ["back", "seat", "leg"]
    assert [s.material.name for s in obj.material_slots] == [
        "Wood", "PartDistill back", "PartDistill seat", "PartDistill leg"]  # fmt: skip
    assert [r.name for r in results.result_rows(obj)] == ["back", "seat", "leg"]

    assert bpy.ops.partdistill.clear_segmentation() == {"FINISHED"}
    after = snapshot(obj)
    after["datablocks"] = before["datablocks"]  # part materials may stay in bpy.data unused
    assert after == before
    assert results.result_rows(obj) is None


# --- looking at a result ------------------------------------------------------------------
def test_select_hide_isolate_and_low_confidence(ui):
    obj = chair_scene(ui)
    bpy.ops.partdistill.segment_parts()
    mesh = obj.data
    labels = np.empty(len(mesh.polygons), np.int32)
    mesh.attributes["partdistill_part"].data.foreach_get("value", labels)
    leg = labels == demo.DEMO_CHAIR_PARTS.index("leg")

    def faces(prop):
        bpy.ops.object.mode_set(mode="OBJECT")
        values = np.empty(len(mesh.polygons), bool)
        mesh.polygons.foreach_get(prop, values)
        return values

    bpy.ops.partdistill.select_part(index=2)
    assert obj.mode == "EDIT"
    assert np.array_equal(faces("select"), leg)
    bpy.ops.partdistill.hide_part(index=2)
    assert np.array_equal(faces("hide"), leg)
    bpy.ops.partdistill.isolate_part(index=0)
    assert np.array_equal(faces("hide"), labels != 0)
    bpy.ops.partdistill.show_all_parts()
    assert not faces("hide").any()

    confidence = np.empty(len(mesh.polygons), np.float32)
    mesh.attributes["partdistill_confidence"].data.foreach_get("value", confidence)
    ui.low_confidence = float(np.median(confidence)) + 1e-4
    bpy.ops.partdistill.select_low_confidence()
    assert np.array_equal(faces("select"), confidence < ui.low_confidence)
    with pytest.raises(RuntimeError, match="there is no part number 9 on 'Chair'"):
        bpy.ops.partdistill.select_part(index=9)


def test_evidence_images_show_views_and_teacher_predictions(ui):
    obj = chair_scene(ui)
    bpy.ops.partdistill.segment_parts()
    assert bpy.ops.partdistill.show_evidence(view=1) == {"FINISHED"}
    store = evidence.EVIDENCE[obj.name]
    for i, view in enumerate(store.views):
        image = bpy.data.images[evidence.VIEW_IMAGE.format(i)]
        teacher = bpy.data.images[evidence.TEACHER_IMAGE.format(i)]
        assert tuple(image.size) == (96, 96) and tuple(teacher.size) == (96, 96)
        pixels = np.empty(96 * 96 * 4, np.float32)
        image.pixels.foreach_get(pixels)
        rgb = pixels.reshape(96, 96, 4)[::-1, :, :3]  # top row first, as the view
        assert np.allclose(rgb, view.image / 255.0, atol=1e-3)
        teacher.pixels.foreach_get(pixels)
        predicted = pixels.reshape(96, 96, 4)[::-1, :, :3]
        assert np.allclose(predicted[view.face_ids < 0], evidence.BACKGROUND, atol=1e-3)
        # On the object, every pixel has its argmax part's colour, dimmed by the confidence.
        probs = store.predictions[i]
        on = view.face_ids >= 0
        expected = evidence.pixel_prediction_rgb(probs, view.face_ids)
        assert np.allclose(predicted[on], expected[on], atol=2.5 / 255)  # 8-bit image
    assert evidence.show_in_image_editor(bpy.context, image) is False  # background: no windows


def test_result_operators_work_from_edit_mode(ui):
    # Select puts the object in edit mode; the other buttons are pressed from there.
    obj = chair_scene(ui)
    bpy.ops.partdistill.segment_parts()
    labels = np.empty(len(obj.data.polygons), np.int32)
    obj.data.attributes["partdistill_part"].data.foreach_get("value", labels)
    bpy.ops.partdistill.select_part(index=0)
    assert obj.mode == "EDIT"
    bpy.ops.partdistill.hide_part(index=1)
    assert obj.mode == "EDIT"
    bpy.ops.object.mode_set(mode="OBJECT")
    hidden = np.empty(len(obj.data.polygons), bool)
    obj.data.polygons.foreach_get("hide", hidden)
    assert np.array_equal(hidden, labels == 1)
    bpy.ops.object.mode_set(mode="EDIT")
    bpy.ops.partdistill.show_all_parts()
    assert obj.mode == "EDIT"  # Show All keeps the mode it was pressed in
    bpy.ops.object.mode_set(mode="OBJECT")
    obj.data.polygons.foreach_get("hide", hidden)
    assert not hidden.any()
    bpy.ops.object.mode_set(mode="EDIT")
    with pytest.raises(ValueError, match="in edit mode: part labels are read in object mode"):
        results.part_face_mask(obj, 0)


def test_run_record_says_how_a_result_was_made(ui):
    obj = chair_scene(ui)
    bpy.ops.partdistill.segment_parts()
    run = results.read_run(obj)
    assert run == {"teacher": "simulated", "mode": "direct", "views": 10, "student_shared_by": []}
    assert results.run_summary(run) == ["simulated, 10 views", "Teacher votes only, no student"]
    shared = {"teacher": "clip", "model": "/models/clip-vit-b16/", "mode": "distill",
              "views": 10, "student_shared_by": ["Chair", "Chair.001"]}  # fmt: skip
    assert results.run_summary(shared) == ["clip-vit-b16, 10 views", "One student for 2 objects"]
    assert results.run_summary({}) == []


def test_loading_another_file_stops_a_running_segmentation(ui):
    obj = chair_scene(ui, mode="forward", epochs=25)
    job = StagedRun([obj], demo.DEMO_CHAIR_PARTS, properties.config_from_settings(ui))
    job_registry.set_running_job(job)  # as the modal's invoke does
    while job._worker is None:  # render every view, then the worker starts
        job.step()
    assert job_registry.running_job() is job
    bpy.ops.wm.read_factory_settings(use_empty=True)  # File > New: the load_pre handler runs
    assert job_registry.running_job() is None
    assert job.cancelled and not job._worker.is_alive() and job.results is None
