"""The part-name list: its UIList and its add / remove / move operators."""

from __future__ import annotations

import bpy
from bpy.props import EnumProperty, StringProperty


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


CLASSES = (
    PARTDISTILL_UL_parts,
    PARTDISTILL_OT_part_add,
    PARTDISTILL_OT_part_remove,
    PARTDISTILL_OT_part_move,
)
