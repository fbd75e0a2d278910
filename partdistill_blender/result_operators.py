"""Operators that look at the active object's result: Clear, select, hide or isolate a part,
show every face, select the low-confidence faces, show the evidence."""

from __future__ import annotations

import bpy
import numpy as np
from bpy.props import BoolProperty, IntProperty

from . import evidence, results
from .error_messages import error_message
from .job_registry import running_job
from .known_labels import clear_corrections
from .report_log import report_error


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
    PARTDISTILL_OT_clear_segmentation,
    PARTDISTILL_OT_select_part,
    PARTDISTILL_OT_hide_part,
    PARTDISTILL_OT_isolate_part,
    PARTDISTILL_OT_show_all_parts,
    PARTDISTILL_OT_select_low_confidence,
    PARTDISTILL_OT_show_evidence,
)
