"""Correct and teach: Assign (the selected faces get a part, and stay corrected) and Refine (the
student re-learns the object from its kept run with the corrections, without rendering or
asking the teacher again).

Both are plain execute operators with UNDO, so one Ctrl+Z takes a whole Assign or Refine back.
Face attributes are readable only in Object Mode (in Edit Mode they live in the BMesh), so both
leave Edit Mode to read and write, and go back to it with the user's selection.
"""

from __future__ import annotations

import bpy
import numpy as np
from bpy.props import IntProperty

from ..backend.contracts import ObjectInfo, ObjectInput, StaleRun
from ..backend.run_stages import RunRequest
from .addon import get_preferences
from .error_messages import error_message
from .job_registry import running_job
from .kept_run_folders import kept_run_dir, stale_reason
from .known_labels import corrected_face_count, read_corrections, write_corrections
from .properties import config_from_settings
from .report_log import report_error
from .results import has_segmentation, read_run, read_segmentation, result_rows
from .writeback import write_segmentation


def _selected_faces(mesh) -> np.ndarray:
    """(P,) bool: the selected faces of ``mesh`` (object mode: edit-mode selection synced)."""
    selected = np.zeros(len(mesh.polygons), bool)
    mesh.polygons.foreach_get("select", selected)
    return selected


def _refresh_edit_mode_readings(obj) -> None:
    """Read the rows and the corrected count now, in object mode: the panel shows these while
    the object is in edit mode, where they cannot be read."""
    result_rows(obj)
    corrected_face_count(obj)


class PARTDISTILL_OT_assign_part(bpy.types.Operator):
    """Give the selected faces this part, and keep them as corrections that Refine and the
    next Segment Parts learn from"""

    bl_idname = "partdistill.assign_part"
    bl_label = "Assign"
    bl_options = {"REGISTER", "UNDO"}

    index: IntProperty(name="Part", description="The part, as numbered in the result", min=0)

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        if obj is None or obj.type != "MESH" or running_job() is not None:
            return False
        if obj.mode != "EDIT":
            cls.poll_message_set("Select faces in Edit Mode first")
            return False
        return True

    def execute(self, context):
        obj = context.active_object
        bpy.ops.object.mode_set(mode="OBJECT")  # the selection and attributes reach the mesh
        try:
            return self._assign(obj)
        finally:
            bpy.ops.object.mode_set(mode="EDIT")  # the same selection: it is in the mesh

    def _assign(self, obj) -> set[str]:
        result = read_segmentation(obj)
        if result is None:
            report_error(self, f"{obj.name!r} has no segmentation: run Segment Parts first, "
                         "then assign faces to its parts")  # fmt: skip
            return {"CANCELLED"}
        parts = result["parts"]
        if not 0 <= self.index < len(parts):
            report_error(self, f"{obj.name!r} has no part number {self.index}")
            return {"CANCELLED"}
        selected = _selected_faces(obj.data)
        if not selected.any():
            report_error(self, f"no faces of {obj.name!r} are selected: select the faces of "
                         f"the {parts[self.index]!r} in Edit Mode, then press Assign")  # fmt: skip
            return {"CANCELLED"}
        labels = np.where(selected, self.index, result["face_labels"]).astype(np.int32)
        confidence = np.where(selected, 1.0, result["face_confidence"]).astype(np.float32)
        # Rewriting the whole segmentation keeps groups, slots and attributes in step; the
        # selection and hidden faces are untouched by it.
        write_segmentation(obj, parts, labels, confidence, read_run(obj))
        write_corrections(obj, selected, parts[self.index])
        _refresh_edit_mode_readings(obj)
        self.report({"INFO"}, f"{int(selected.sum())} faces of {obj.name} are now "
                    f"{parts[self.index]!r}")  # fmt: skip
        return {"FINISHED"}


class PARTDISTILL_OT_refine(bpy.types.Operator):
    """Re-learn the parts from your corrections and the last Segment Parts' views and teacher
    predictions (a few seconds: nothing is rendered, no teacher runs)"""

    bl_idname = "partdistill.refine"
    bl_label = "Refine"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        if obj is None or obj.type != "MESH" or running_job() is not None:
            return False
        if not has_segmentation(obj):
            cls.poll_message_set("Run Segment Parts first")
            return False
        return True

    def execute(self, context):
        obj = context.active_object
        was_editing = obj.mode == "EDIT"
        if was_editing:
            bpy.ops.object.mode_set(mode="OBJECT")  # edits and attributes reach the mesh
        try:
            return self._refine(context, obj)
        finally:
            if was_editing:
                bpy.ops.object.mode_set(mode="EDIT")

    def _refine(self, context, obj) -> set[str]:
        settings = context.scene.partdistill
        result = read_segmentation(obj)
        if result is None:
            report_error(self, f"{obj.name!r} has no segmentation: run Segment Parts first")
            return {"CANCELLED"}
        parts = result["parts"]
        corrections = read_corrections(obj, parts)
        if corrections is None:
            report_error(self, f"{obj.name!r} has no corrections to learn from: select faces "
                         "in Edit Mode and press a part's Assign button first")  # fmt: skip
            return {"CANCELLED"}
        folder = kept_run_dir(obj, create=False)
        try:
            config = config_from_settings(settings, get_preferences(context))
            if config.mode == "direct":  # no student was kept, and none would learn
                raise ValueError("Refine re-trains the student: set Mode to Student (or "
                                 "Student + backward), run Segment Parts, then Refine")  # fmt: skip
            reason = stale_reason(folder, len(obj.data.polygons), parts, obj.name)
            if not folder or reason:
                raise StaleRun(reason or f"{obj.name!r} has no kept run: Refine re-uses the "
                               "views and teacher predictions of the last Segment Parts. Run "
                               "Segment Parts again")  # fmt: skip
            refined = self._compute(context, obj, parts, config, corrections, folder)
        except StaleRun as exc:
            # The panel offers the full run ("Segment Parts Again") for this object.
            settings.stale_object, settings.stale_message = obj.name, error_message(exc)
            report_error(self, f"Cannot refine: {error_message(exc)}")
            return {"CANCELLED"}
        except (ValueError, RuntimeError) as exc:
            report_error(self, f"Refine failed: {error_message(exc)}")
            return {"CANCELLED"}
        settings.stale_object = settings.stale_message = ""
        # The run record stays: the result is still that run's, refined.
        write_segmentation(obj, parts, refined.face_labels, refined.face_confidence, read_run(obj))
        _refresh_edit_mode_readings(obj)
        count = int((corrections >= 0).sum())
        self.report({"INFO"}, f"Refined {obj.name} from {count} corrected faces")
        return {"FINISHED"}

    @staticmethod
    def _compute(context, obj, parts, config, corrections, folder):
        """The Refine's compute stage (a few seconds), with Blender's progress cursor."""
        from .compute_process import compute

        request = RunRequest([ObjectInput(None, [], ObjectInfo(name=obj.name), corrections)],
                             parts, config, keep_dirs=[folder], refine=True)  # fmt: skip
        wm = context.window_manager
        wm.progress_begin(0, 100)
        try:
            (refined,) = compute(request, lambda _stage, f: wm.progress_update(int(100 * f)))
        finally:
            wm.progress_end()
        return refined


CLASSES = (PARTDISTILL_OT_assign_part, PARTDISTILL_OT_refine)
