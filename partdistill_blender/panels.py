"""The sidebar panels (3D viewport, N-panel, tab "PartDistill"): setup, advanced, results."""

from __future__ import annotations

import textwrap

import bpy

from . import presets, results
from .addon import ADDON_PACKAGE
from .job_registry import running_job
from .known_labels import EXAMPLE_PROPERTY, corrected_face_count, example_objects
from .model_manager import draw_models_box, missing_model_reason
from .operators import target_objects
from .results import has_segmentation, read_run, run_summary

CATEGORY = "PartDistill"
STALE_WRAP = 44  # characters per line of a stale Refine's message (a label does not wrap)


class _SidebarPanel:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = CATEGORY


def draw_progress(layout, settings) -> None:
    """The progress bar with the stage name, and Cancel."""
    row = layout.row(align=True)
    text = settings.progress_text or "Starting…"
    row.progress(factor=settings.progress, type="BAR", text=text)
    row.operator("partdistill.cancel", text="", icon="CANCEL")


def object_summary(context) -> str:
    """ "Chair: 1,234 faces", with the other selected meshes counted, or why nothing can run."""
    objects = target_objects(context)
    if not objects:
        active = context.active_object
        if active is not None and active.type != "MESH":  # say why the button is grey
            return f"{active.name} is a {active.type.lower()}: select a mesh object"
        return "Select a mesh object"
    faces = len(objects[0].data.polygons)
    text = f"{objects[0].name}: {faces:,} faces"
    if len(objects) > 1:
        text += f" (+{len(objects) - 1} selected)"
    return text


class PARTDISTILL_PT_main(_SidebarPanel, bpy.types.Panel):
    bl_idname = "PARTDISTILL_PT_main"
    bl_label = "Part Segmentation"

    def draw_header_preset(self, context):
        # The add-on's preferences (model, device, cache, downloads) one click away.
        op = self.layout.operator("preferences.addon_show", text="", icon="PREFERENCES",
                                  emboss=False)  # fmt: skip
        op.module = ADDON_PACKAGE

    def draw(self, context):
        layout = self.layout
        settings = context.scene.partdistill
        objects = target_objects(context)
        layout.label(text=object_summary(context), icon="MESH_DATA" if objects else "INFO")

        layout.label(text="Parts")
        row = layout.row()
        row.template_list("PARTDISTILL_UL_parts", "", settings, "parts", settings, "active_part",
                          rows=4)  # fmt: skip
        buttons = row.column(align=True)
        buttons.operator("partdistill.part_add", text="", icon="ADD")
        buttons.operator("partdistill.part_remove", text="", icon="REMOVE")
        buttons.separator()
        buttons.operator("partdistill.part_move", text="", icon="TRIA_UP").direction = "UP"
        buttons.operator("partdistill.part_move", text="", icon="TRIA_DOWN").direction = "DOWN"
        if not settings.parts:
            layout.label(text="Add part names or pick a preset", icon="INFO")
        layout.menu(presets.PARTDISTILL_MT_presets.bl_idname, icon="PRESET")
        layout.prop(settings, "category")

        col = layout.column()
        col.use_property_split = True
        col.use_property_decorate = False
        col.prop(settings, "teacher")
        if settings.teacher == "custom":
            col.prop(settings, "custom_teacher")
        col.prop(settings, "mode")
        col.prop(settings, "num_views")
        col.prop(settings, "resolution")
        col.prop(settings, "render_engine")
        col.prop(settings, "device")
        if len(objects) > 1:
            layout.prop(settings, "one_student")

        if running_job() is not None:  # not is_running: a file saved mid-run keeps that True
            draw_progress(layout, settings)
            return
        examples = example_objects(context.scene, objects)
        if examples:
            count = f"{len(examples)} example{'s' if len(examples) > 1 else ''}"
            names = ", ".join(o.name for o in examples)
            layout.label(text=f"{count}: {names}", icon="OUTLINER_OB_GROUP_INSTANCE")
        reason = missing_model_reason(context)
        if reason:  # the teacher's weights are absent: say so, and what to press
            box = layout.box()
            box.label(text="Models", icon="IMPORT")
            draw_models_box(box, context, only_chosen=True)
        layout.operator("partdistill.segment_parts", icon="PLAY")  # grey while reason is set


class PARTDISTILL_PT_advanced(_SidebarPanel, bpy.types.Panel):
    bl_idname = "PARTDISTILL_PT_advanced"
    bl_label = "Advanced"
    bl_parent_id = PARTDISTILL_PT_main.bl_idname
    bl_options = {"DEFAULT_CLOSED"}

    FIELDS = ("render_samples", "camera_fov_deg", "num_points", "encoder", "epochs",
              "steps_per_epoch", "learning_rate", "tau", "min_component_pixels", "seed",
              "low_confidence")  # fmt: skip

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        settings = context.scene.partdistill
        for name in self.FIELDS:
            layout.prop(settings, name)


class PARTDISTILL_PT_results(_SidebarPanel, bpy.types.Panel):
    bl_idname = "PARTDISTILL_PT_results"
    bl_label = "Results"

    def draw(self, context):
        layout = self.layout
        obj = context.active_object
        rows = results.result_rows(obj) if obj is not None else None
        if rows is None:
            if obj is not None and obj.mode == "EDIT" and has_segmentation(obj):
                layout.label(text="Back to Object Mode to read the parts", icon="INFO")
            else:
                layout.label(text="No segmentation on the active object")
            return
        for line in run_summary(read_run(obj)):
            layout.label(text=line, icon="INFO")
        header = layout.row()
        header.label(text="Part")
        header.label(text="Faces · confidence")
        grid = layout.column(align=True)
        for row in rows:
            line = grid.row(align=True)
            swatch = line.row()
            swatch.ui_units_x = 1.2
            material = bpy.data.materials.get(row.material_name) if row.material_name else None
            if material is not None:
                swatch.prop(material, "diffuse_color", text="")
            else:
                swatch.label(text="", icon="BLANK1")
            line.label(text=row.name)
            line.label(text=f"{row.face_count:,} · {row.mean_confidence:.0%}")
            line.operator(
                "partdistill.select_part", text="", icon="RESTRICT_SELECT_OFF"
            ).index = row.index
            line.operator("partdistill.hide_part", text="", icon="HIDE_ON").index = row.index
            line.operator("partdistill.isolate_part", text="", icon="SOLO_ON").index = row.index
            if obj.mode == "EDIT":  # the selected faces get this part
                line.operator("partdistill.assign_part", text="Assign").index = row.index
        layout.operator("partdistill.show_all_parts", icon="HIDE_OFF")
        settings = context.scene.partdistill
        line = layout.row(align=True).split(factor=0.62, align=True)
        line.operator("partdistill.select_low_confidence", text="Low Confidence", icon="ERROR")
        line.prop(settings, "low_confidence", text="")
        line = layout.row(align=True)
        op = line.operator("partdistill.show_evidence", icon="IMAGE_DATA")
        op.view = settings.evidence_view
        line.prop(settings, "evidence_view")
        draw_corrections(layout, context, obj)
        line = layout.row(align=True)
        clear = line.operator("partdistill.clear_segmentation", icon="TRASH")
        clear.keep_corrections = settings.keep_corrections
        line.prop(settings, "keep_corrections", text="Keep Corrections", toggle=False)


def draw_corrections(layout, context, obj) -> None:
    """Corrections, Refine (or the full run a stale Refine asks for), and Use as Example."""
    settings = context.scene.partdistill
    box = layout.box()
    corrected = corrected_face_count(obj)
    if corrected:
        box.label(text=f"{corrected:,} faces corrected", icon="CHECKMARK")
    else:
        box.label(text="Correct: select faces in Edit Mode, press Assign", icon="INFO")
    box.operator("partdistill.refine", icon="FILE_REFRESH")
    if settings.stale_object == obj.name and settings.stale_message:
        for text in textwrap.wrap(settings.stale_message, STALE_WRAP):
            box.label(text=text)
        box.operator("partdistill.segment_parts", text="Segment Parts Again", icon="PLAY")
    box.prop(obj, EXAMPLE_PROPERTY)


CLASSES = (PARTDISTILL_PT_main, PARTDISTILL_PT_advanced, PARTDISTILL_PT_results)
