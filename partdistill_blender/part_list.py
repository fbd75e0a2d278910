"""The part-name list: its UIList, add / remove / move operators, and the presets menus."""

from __future__ import annotations

import bpy
from bpy.props import EnumProperty, StringProperty

from . import presets


class PARTDISTILL_UL_parts(bpy.types.UIList):
    """Part names, renamed inline (double-click or Ctrl-click)."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname):
        layout.prop(item, "name", text="", emboss=False, icon="MESH_CUBE")


def set_parts(settings, names: list[str]) -> None:
    """Replace the list's part names."""
    settings.parts.clear()
    for name in names:
        settings.parts.add().name = name
    settings.active_part = 0


class PARTDISTILL_OT_part_add(bpy.types.Operator):
    """Add a part name below the selected one"""

    bl_idname = "partdistill.part_add"
    bl_label = "Add Part"
    bl_options = {"REGISTER", "UNDO"}

    name: StringProperty(name="Name", default="part")

    def execute(self, context):
        settings = context.scene.partdistill
        existing = {p.name for p in settings.parts}
        name, n = self.name, 2
        while name in existing:  # names must be unique; "part", "part 2", ...
            name, n = f"{self.name} {n}", n + 1
        settings.parts.add().name = name
        new_index = len(settings.parts) - 1
        target = min(settings.active_part + 1, new_index) if new_index else 0
        settings.parts.move(new_index, target)
        settings.active_part = target
        return {"FINISHED"}


class PARTDISTILL_OT_part_remove(bpy.types.Operator):
    """Remove the selected part name"""

    bl_idname = "partdistill.part_remove"
    bl_label = "Remove Part"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return len(context.scene.partdistill.parts) > 0

    def execute(self, context):
        settings = context.scene.partdistill
        settings.parts.remove(settings.active_part)
        settings.active_part = max(0, min(settings.active_part, len(settings.parts) - 1))
        return {"FINISHED"}


class PARTDISTILL_OT_part_move(bpy.types.Operator):
    """Move the selected part name up or down"""

    bl_idname = "partdistill.part_move"
    bl_label = "Move Part"
    bl_options = {"REGISTER", "UNDO"}

    direction: EnumProperty(items=[("UP", "Up", ""), ("DOWN", "Down", "")])

    def execute(self, context):
        settings = context.scene.partdistill
        index = settings.active_part
        target = index - 1 if self.direction == "UP" else index + 1
        if not 0 <= target < len(settings.parts):
            return {"CANCELLED"}
        settings.parts.move(index, target)
        settings.active_part = target
        return {"FINISHED"}


class PARTDISTILL_OT_apply_preset(bpy.types.Operator):
    """Use this preset's part names (and its name as the object name)"""

    bl_idname = "partdistill.apply_preset"
    bl_label = "Apply Preset"
    bl_options = {"REGISTER", "UNDO"}

    group: StringProperty()
    name: StringProperty()

    def execute(self, context):
        try:
            names = presets.find_preset(self.group, self.name)
        except KeyError as exc:
            self.report({"ERROR"}, str(exc.args[0]))
            return {"CANCELLED"}
        settings = context.scene.partdistill
        set_parts(settings, names)
        if self.group != presets.USER_GROUP:
            settings.category = self.name.lower()
        return {"FINISHED"}


class PARTDISTILL_OT_save_preset(bpy.types.Operator):
    """Save the current part names as a preset of yours"""

    bl_idname = "partdistill.save_preset"
    bl_label = "Save Preset"

    name: StringProperty(name="Preset Name")

    @classmethod
    def poll(cls, context):
        return len(context.scene.partdistill.parts) > 0

    def invoke(self, context, event):
        self.name = context.scene.partdistill.category.title()
        return context.window_manager.invoke_props_dialog(self)

    def execute(self, context):
        names = [p.name.strip() for p in context.scene.partdistill.parts if p.name.strip()]
        try:
            presets.save_user_preset(self.name, names)
        except (ValueError, OSError) as exc:
            self.report({"ERROR"}, f"Could not save the preset: {exc}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Saved preset {self.name.strip()!r}")
        return {"FINISHED"}


class PARTDISTILL_OT_delete_preset(bpy.types.Operator):
    """Delete one of your presets"""

    bl_idname = "partdistill.delete_preset"
    bl_label = "Delete Preset"

    name: StringProperty()

    def execute(self, context):
        if not presets.delete_user_preset(self.name):
            self.report({"ERROR"}, f"There is no preset {self.name!r}")
            return {"CANCELLED"}
        return {"FINISHED"}


def _draw_group(layout, group: str) -> None:
    entries = presets.preset_groups().get(group, {})
    if not entries:
        layout.label(text="No presets yet: use Save Preset")
    for name in sorted(entries):
        op = layout.operator(PARTDISTILL_OT_apply_preset.bl_idname, text=name)
        op.group, op.name = group, name


def _group_menu(group: str, idname: str):
    """A submenu class listing the presets of one group."""
    return type(idname, (bpy.types.Menu,), {
        "bl_idname": idname,
        "bl_label": group,
        "draw": lambda self, context: _draw_group(self.layout, group),
    })  # fmt: skip


GROUP_MENUS = (
    _group_menu(presets.BUILTIN_GROUP, "PARTDISTILL_MT_presets_builtin"),
    _group_menu("ShapeNetPart", "PARTDISTILL_MT_presets_shapenetpart"),
    _group_menu("PartNet-Ensemble", "PARTDISTILL_MT_presets_partnete"),
    _group_menu(presets.USER_GROUP, "PARTDISTILL_MT_presets_user"),
)


class PARTDISTILL_MT_presets(bpy.types.Menu):
    bl_idname = "PARTDISTILL_MT_presets"
    bl_label = "Presets"

    def draw(self, context):
        layout = self.layout
        groups = presets.preset_groups()
        for menu in GROUP_MENUS:
            if menu.bl_label in groups:
                layout.menu(menu.bl_idname)
        layout.separator()
        layout.operator(PARTDISTILL_OT_save_preset.bl_idname, icon="ADD")
        for name in sorted(groups.get(presets.USER_GROUP, {})):
            op = layout.operator(PARTDISTILL_OT_delete_preset.bl_idname, text=f"Delete {name}",
                                 icon="REMOVE")  # fmt: skip
            op.name = name


CLASSES = (
    PARTDISTILL_UL_parts,
    PARTDISTILL_OT_part_add,
    PARTDISTILL_OT_part_remove,
    PARTDISTILL_OT_part_move,
    PARTDISTILL_OT_apply_preset,
    PARTDISTILL_OT_save_preset,
    PARTDISTILL_OT_delete_preset,
    *GROUP_MENUS,
    PARTDISTILL_MT_presets,
)
