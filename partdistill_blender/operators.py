"""Segment Parts (modal, with a synchronous path) and Cancel. The operators that look at a
result once it is written are in result_operators.py."""

from __future__ import annotations

import bpy

from ..backend.contracts import TeacherUnavailable
from ..backend.run_stages import STAGE_NAMES
from .addon import get_preferences
from .error_messages import error_message
from .input_checks import check_objects, check_part_names
from .job_registry import forget_running_job, running_job, set_running_job
from .kept_run_folders import give_own_ids, kept_run_dir
from .known_labels import read_corrections, scene_examples
from .model_manager import missing_model_reason
from .properties import config_from_settings, part_names
from .report_log import report_error, reports_to
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


CLASSES = (
    PARTDISTILL_OT_segment_parts,
    PARTDISTILL_OT_cancel,
)
