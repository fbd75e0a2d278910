"""Operators of the panel: Segment Parts (modal, with a synchronous path), Cancel, Clear, and
looking at a result: select, hide or isolate a part, low-confidence faces, the evidence."""

from __future__ import annotations

import bpy
import numpy as np
from bpy.props import BoolProperty, IntProperty

from ..backend.contracts import TeacherUnavailable
from ..backend.run_stages import STAGE_NAMES
from . import evidence, results
from .addon import get_preferences
from .error_messages import error_message
from .input_checks import check_objects, check_part_names
from .job_registry import forget_running_job, running_job, set_running_job
from .kept_run_folders import give_own_ids, kept_run_dir
from .known_labels import clear_corrections, read_corrections, scene_examples
from .model_manager import missing_model_reason
from .properties import config_from_settings, part_names
from .report_log import reports_to
from .staged_run import StagedRun

TIMER_SECONDS = 0.05


def target_objects(context) -> list:
    """The meshes to segment: the active one first, then the other selected meshes."""
    active = context.active_object
    if active is None or active.type != "MESH":
        return []
    others = [o for o in context.selected_objects if o.type == "MESH" and o != active]
    return [active, *others]


def settings_progress(context) -> float:
    return context.scene.partdistill.progress


def _tag_redraw(context) -> None:
    screen = context.screen
    for area in screen.areas if screen else ():
        if area.type == "VIEW_3D":
            area.tag_redraw()


def report_error(operator, message: str) -> None:
    """An error through the product's logger: a Blender error report of ``operator`` and a
    terminal line (a report's popup is cut at the window's width and gone with the next one;
    a terminal, or a bug report, keeps it whole)."""
    with reports_to(operator) as logger:
        logger.error(message)


def check_teacher_before_rendering(config) -> None:
    """Raise TeacherUnavailable now, before any view is rendered, when the teacher's weights
    are not to be had (cheap: looks at folders and the cache, loads nothing)."""
    from ..backend.teachers import check_teacher_available

    try:
        check_teacher_available(config.teacher, config)
    except ImportError:
        pass  # the check needs a library that only the compute Python has: the run will tell


class PARTDISTILL_OT_segment_parts(bpy.types.Operator):
    """Name the parts of the selected meshes: render views, ask the teacher, distill a student
    and write vertex groups, material slots and face attributes"""

    bl_idname = "partdistill.segment_parts"
    bl_label = "Segment Parts"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        if not target_objects(context) or running_job() is not None:
            return False
        reason = missing_model_reason(context)  # the Models box says what to press
        if reason:
            cls.poll_message_set(reason)
            return False
        return True

    def _start(self, context) -> StagedRun | None:
        settings = context.scene.partdistill
        objects = target_objects(context)
        try:
            parts = part_names(settings)
            config = config_from_settings(settings, get_preferences(context))
            check_objects(objects)
            check_part_names(parts)
            check_teacher_before_rendering(config)
            if context.mode != "OBJECT":  # edit-mode changes reach the mesh data only here
                bpy.ops.object.mode_set(mode="OBJECT")
            job = StagedRun(objects, parts, config, settings.category,
                            **self._known_labels(context, objects, parts))  # fmt: skip
        except (ValueError, TeacherUnavailable) as exc:
            report_error(self, error_message(exc))
            return None
        set_running_job(job)
        settings.is_running = True
        self._set_progress(context, job)
        return job

    def _known_labels(self, context, objects, parts) -> dict:
        """StagedRun's labels, examples and keep_dirs: each object's corrections (kept as
        labels of the new result), the scene's example objects, and where each object's run
        is kept for Refine. Object mode."""
        with reports_to(self) as logger:
            examples, warnings = scene_examples(context.scene, objects, parts)
            for warning in warnings:
                logger.warning(warning)
        give_own_ids(objects, bpy.data.objects)
        return {
            "labels": [read_corrections(obj, parts) for obj in objects],
            "examples": examples,
            "keep_dirs": [kept_run_dir(obj) for obj in objects],
        }

    def _set_progress(self, context, job) -> None:
        text, fraction = job.progress
        settings = context.scene.partdistill
        settings.progress_text = "Cancelling…" if job.is_cancelling else text
        settings.progress = fraction

    def _finish(self, context, job: StagedRun) -> set[str]:
        forget_running_job()
        settings = context.scene.partdistill
        settings.is_running = False
        settings.progress = 0.0
        settings.progress_text = ""
        _tag_redraw(context)
        if job.cancelled or job.error is not None:
            job.discard_kept_runs()  # the last good kept run stays for Refine
        if job.cancelled:
            self.report({"WARNING"}, "Segmentation cancelled: nothing was changed")
            return {"CANCELLED"}
        if job.error is not None:
            report_error(self, f"Segmentation failed: {error_message(job.error)}")
            return {"CANCELLED"}
        settings.progress_text = STAGE_NAMES["write"]
        try:
            written = job.write_results(context.scene.objects)
        except (ValueError, RuntimeError) as exc:
            report_error(self, f"Could not write the parts: {error_message(exc)}")
            return {"CANCELLED"}
        finally:
            settings.progress_text = ""
        if settings.stale_object in written:  # a fresh run: Refine works again
            settings.stale_object = settings.stale_message = ""
        self.report({"INFO"}, f"Segmented {', '.join(written)} into {len(job.parts)} parts")
        return {"FINISHED"}

    def execute(self, context):
        job = self._start(context)
        if job is None:
            return {"CANCELLED"}
        job.run_to_end()
        return self._finish(context, job)

    def invoke(self, context, event):
        if context.window is None:  # no window (background mode): no timer, run it through
            return self.execute(context)
        job = self._start(context)
        if job is None:
            return {"CANCELLED"}
        wm = context.window_manager
        self._timer = wm.event_timer_add(TIMER_SECONDS, window=context.window)
        wm.progress_begin(0, 100)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        job = running_job()
        if job is None:  # should not happen; stop cleanly
            self._end_modal(context)
            return {"CANCELLED"}
        if event.type == "ESC" and event.value == "PRESS":
            job.cancel()
            return {"RUNNING_MODAL"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        done = job.step()
        self._set_progress(context, job)
        context.window_manager.progress_update(int(settings_progress(context) * 100))
        _tag_redraw(context)
        if not done:
            return {"RUNNING_MODAL"}
        self._end_modal(context)
        return self._finish(context, job)

    def _end_modal(self, context) -> None:
        wm = context.window_manager
        wm.event_timer_remove(self._timer)
        wm.progress_end()


class PARTDISTILL_OT_cancel(bpy.types.Operator):
    """Stop the running segmentation; the objects stay as they were"""

    bl_idname = "partdistill.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        return running_job() is not None

    def execute(self, context):
        running_job().cancel()
        return {"FINISHED"}


class _ResultOperator(bpy.types.Operator):
    """Base: acts on the active object's segmentation."""

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        return obj is not None and obj.type == "MESH" and running_job() is None

    def _run(self, context, action) -> set[str]:
        obj = context.active_object
        self.was_editing = obj.mode == "EDIT"
        # Face attributes are readable only in object mode (in edit mode they live in the
        # BMesh); leaving edit mode also brings the user's edits into the mesh.
        _object_mode(obj)
        try:
            action(obj)
        except ValueError as exc:
            report_error(self, error_message(exc))
            return {"CANCELLED"}
        return {"FINISHED"}


def _edit_faces(obj) -> None:
    """Enter edit mode in face select mode, where selections and hidden faces are seen."""
    bpy.context.scene.tool_settings.mesh_select_mode = (False, False, True)
    if obj.mode != "EDIT":
        bpy.ops.object.mode_set(mode="EDIT")


def _object_mode(obj) -> None:
    if obj.mode != "OBJECT":
        bpy.ops.object.mode_set(mode="OBJECT")  # brings edit-mode changes into the mesh


class PARTDISTILL_OT_clear_segmentation(_ResultOperator):
    """Remove the part groups, slots and attributes and restore the previous materials (and
    the corrections, unless Keep Corrections is on)"""

    bl_idname = "partdistill.clear_segmentation"
    bl_label = "Clear Segmentation"
    bl_options = {"REGISTER", "UNDO"}

    keep_corrections: BoolProperty(
        name="Keep Corrections",
        description="Keep the faces assigned to parts, for the next Segment Parts to learn",
        default=False,
    )

    def execute(self, context):
        from .writeback import clear_segmentation

        obj = context.active_object
        _object_mode(obj)
        cleared = clear_segmentation(obj)
        corrections_cleared = not self.keep_corrections and clear_corrections(obj)
        if not cleared and not corrections_cleared:
            self.report({"INFO"}, f"{obj.name} has no segmentation to clear")
            return {"CANCELLED"}
        return {"FINISHED"}


class PARTDISTILL_OT_select_part(_ResultOperator):
    """Select this part's faces in edit mode"""

    bl_idname = "partdistill.select_part"
    bl_label = "Select Part"
    bl_options = {"REGISTER", "UNDO"}

    index: IntProperty(name="Part", min=0)

    def execute(self, context):
        def action(obj):
            mask = results.part_face_mask(obj, self.index)
            results.select_faces(obj.data, mask)
            _edit_faces(obj)

        return self._run(context, action)


def _hidden_faces(mesh) -> np.ndarray:
    hidden = np.empty(len(mesh.polygons), bool)
    mesh.polygons.foreach_get("hide", hidden)
    return hidden


class PARTDISTILL_OT_hide_part(_ResultOperator):
    """Hide this part's faces in edit mode"""

    bl_idname = "partdistill.hide_part"
    bl_label = "Hide Part"
    bl_options = {"REGISTER", "UNDO"}

    index: IntProperty(name="Part", min=0)

    def execute(self, context):
        def action(obj):
            mask = results.part_face_mask(obj, self.index)
            results.hide_faces(obj.data, _hidden_faces(obj.data) | mask)
            _edit_faces(obj)

        return self._run(context, action)


class PARTDISTILL_OT_isolate_part(_ResultOperator):
    """Show only this part's faces in edit mode"""

    bl_idname = "partdistill.isolate_part"
    bl_label = "Isolate Part"
    bl_options = {"REGISTER", "UNDO"}

    index: IntProperty(name="Part", min=0)

    def execute(self, context):
        def action(obj):
            mask = results.part_face_mask(obj, self.index)
            results.hide_faces(obj.data, ~mask)
            _edit_faces(obj)

        return self._run(context, action)


class PARTDISTILL_OT_show_all_parts(_ResultOperator):
    """Show every face again"""

    bl_idname = "partdistill.show_all_parts"
    bl_label = "Show All"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        def action(obj):
            results.reveal_all(obj.data)
            if self.was_editing:
                _edit_faces(obj)

        return self._run(context, action)


class PARTDISTILL_OT_select_low_confidence(_ResultOperator):
    """Select the faces whose confidence is below the Low Confidence setting"""

    bl_idname = "partdistill.select_low_confidence"
    bl_label = "Select Low Confidence"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        threshold = context.scene.partdistill.low_confidence

        def action(obj):
            mask = results.low_confidence_mask(obj, threshold)
            results.select_faces(obj.data, mask)
            _edit_faces(obj)
            self.report({"INFO"}, f"{int(mask.sum())} faces below {threshold:.2f} confidence")

        return self._run(context, action)


class PARTDISTILL_OT_show_evidence(_ResultOperator):
    """Load the last run's views and the teacher's predictions as images and show one in an
    Image Editor"""

    bl_idname = "partdistill.show_evidence"
    bl_label = "Show Evidence"

    view: IntProperty(name="View", min=0)
    show_teacher: BoolProperty(name="Teacher", default=True)

    def execute(self, context):
        obj = context.active_object
        try:
            pairs = evidence.load_evidence(obj.name)
        except ValueError as exc:
            report_error(self, error_message(exc))
            return {"CANCELLED"}
        index = min(self.view, len(pairs) - 1)
        view_image, teacher_image = pairs[index]
        shown = teacher_image if self.show_teacher and teacher_image else view_image
        if evidence.show_in_image_editor(context, shown):
            self.report({"INFO"}, f"Showing {shown.name}")
        else:
            self.report({"INFO"}, f"Loaded {2 * len(pairs)} images ({shown.name}, …): open an "
                        "Image Editor to look at them")  # fmt: skip
        return {"FINISHED"}


CLASSES = (
    PARTDISTILL_OT_segment_parts,
    PARTDISTILL_OT_cancel,
    PARTDISTILL_OT_clear_segmentation,
    PARTDISTILL_OT_select_part,
    PARTDISTILL_OT_hide_part,
    PARTDISTILL_OT_isolate_part,
    PARTDISTILL_OT_show_all_parts,
    PARTDISTILL_OT_select_low_confidence,
    PARTDISTILL_OT_show_evidence,
)
