"""Part-name presets: a built-in table, the two benchmarks' vocabularies, and the user's own;
how they are stored, and the menu and operators that apply, save and delete them.

The benchmark vocabularies (ShapeNetPart, PartNet-Ensemble) are read at run time from
``partdistill_blender/data/part_vocabularies.json``, which the extension builder copies into
the zip, or else from ``<repo>/../shared/data/part_vocabularies.json`` (a development
checkout). Without either there are the built-in table and the user's presets.
"""

from __future__ import annotations

import json
import os
import pathlib

import bpy
from bpy.props import StringProperty

from .addon import extension_user_dir
from .part_list import set_parts

# Everyday objects and the parts an artist would name, typed by us.
BUILTIN_PRESETS: dict[str, list[str]] = {
    "Chair": ["back", "seat", "leg", "arm"],
    "Table": ["top", "leg", "drawer"],
    "Lamp": ["base", "pole", "shade"],
    "Mug": ["body", "handle"],
    "Bottle": ["body", "neck", "cap"],
    "Airplane": ["body", "wing", "tail", "engine"],
    "Car": ["body", "wheel", "window", "roof"],
    "Bicycle": ["frame", "wheel", "saddle", "handlebar"],
    "Guitar": ["body", "neck", "head"],
    "Knife": ["blade", "handle"],
    "Sofa": ["back", "seat", "arm", "leg"],
    "Bed": ["frame", "mattress", "headboard", "leg"],
    "Character": ["head", "torso", "arm", "leg"],
    "Animal": ["head", "body", "leg", "tail"],
}

BUILTIN_GROUP = "Built-in"
USER_GROUP = "My Presets"
VOCABULARIES_FILE = "part_vocabularies.json"
VOCABULARIES_PATHS = (
    pathlib.Path(__file__).resolve().parent / "data" / VOCABULARIES_FILE,  # built into the zip
    pathlib.Path(__file__).resolve().parents[2] / "shared/data" / VOCABULARIES_FILE,  # checkout
)
DATASET_LABELS = {"ShapeNetPart": "ShapeNetPart", "PartNetE": "PartNet-Ensemble"}


def dataset_presets(path: os.PathLike | None = None) -> dict[str, dict[str, list[str]]]:
    """{"ShapeNetPart": {"Chair": [...], ...}, "PartNetE": {...}}; {} when the file is absent."""
    candidates = [pathlib.Path(path)] if path is not None else VOCABULARIES_PATHS
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        return {}
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    return {
        group: {name: [str(p) for p in parts] for name, parts in categories.items()}
        for group, categories in data.items()
        if isinstance(categories, dict)
    }


def user_presets_path() -> pathlib.Path:
    return pathlib.Path(extension_user_dir("presets")) / "part_presets.json"


def load_user_presets(path: os.PathLike | None = None) -> dict[str, list[str]]:
    """The user's saved presets, name -> part names; {} when none are saved or the file is bad."""
    path = pathlib.Path(path) if path is not None else user_presets_path()
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): [str(p) for p in v] for k, v in data.items() if isinstance(v, list)}


def _write_user_presets(presets: dict[str, list[str]], path: pathlib.Path) -> None:
    # Write a temporary file and rename it, so a crash never leaves half a presets file.
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(presets, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def save_user_preset(name: str, parts: list[str], path: os.PathLike | None = None) -> None:
    """Add or replace the user preset ``name``."""
    name = name.strip()
    if not name:
        raise ValueError("a preset needs a name")
    if not parts:
        raise ValueError("a preset needs at least one part name")
    path = pathlib.Path(path) if path is not None else user_presets_path()
    presets = load_user_presets(path)
    presets[name] = list(parts)
    _write_user_presets(presets, path)


def delete_user_preset(name: str, path: os.PathLike | None = None) -> bool:
    """Remove the user preset ``name``; False when there was none."""
    path = pathlib.Path(path) if path is not None else user_presets_path()
    presets = load_user_presets(path)
    if name not in presets:
        return False
    del presets[name]
    _write_user_presets(presets, path)
    return True


def preset_groups() -> dict[str, dict[str, list[str]]]:
    """All presets by menu group, in menu order: built-in, the benchmarks, the user's."""
    groups = {BUILTIN_GROUP: dict(BUILTIN_PRESETS)}
    for key, presets in dataset_presets().items():
        groups[DATASET_LABELS.get(key, key)] = presets
    groups[USER_GROUP] = load_user_presets()
    return groups


def find_preset(group: str, name: str) -> list[str]:
    """The part names of one preset -> KeyError with a readable message when missing."""
    presets = preset_groups().get(group, {})
    if name not in presets:
        raise KeyError(f"no preset {name!r} in {group!r}")
    return list(presets[name])


# --- the Presets menu and its operators ------------------------------------------------------


class PARTDISTILL_OT_apply_preset(bpy.types.Operator):
    """Use this preset's part names (and its name as the object name)"""

    bl_idname = "partdistill.apply_preset"
    bl_label = "Apply Preset"
    bl_options = {"REGISTER", "UNDO"}

    group: StringProperty()
    name: StringProperty()

    def execute(self, context):
        try:
            names = find_preset(self.group, self.name)
        except KeyError as exc:
            self.report({"ERROR"}, str(exc.args[0]))
            return {"CANCELLED"}
        settings = context.scene.partdistill
        set_parts(settings, names)
        if self.group != USER_GROUP:
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
            save_user_preset(self.name, names)
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
        if not delete_user_preset(self.name):
            self.report({"ERROR"}, f"There is no preset {self.name!r}")
            return {"CANCELLED"}
        return {"FINISHED"}


def _draw_group(layout, group: str) -> None:
    entries = preset_groups().get(group, {})
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
    _group_menu(BUILTIN_GROUP, "PARTDISTILL_MT_presets_builtin"),
    _group_menu("ShapeNetPart", "PARTDISTILL_MT_presets_shapenetpart"),
    _group_menu("PartNet-Ensemble", "PARTDISTILL_MT_presets_partnete"),
    _group_menu(USER_GROUP, "PARTDISTILL_MT_presets_user"),
)


class PARTDISTILL_MT_presets(bpy.types.Menu):
    bl_idname = "PARTDISTILL_MT_presets"
    bl_label = "Presets"

    def draw(self, context):
        layout = self.layout
        groups = preset_groups()
        for menu in GROUP_MENUS:
            if menu.bl_label in groups:
                layout.menu(menu.bl_idname)
        layout.separator()
        layout.operator(PARTDISTILL_OT_save_preset.bl_idname, icon="ADD")
        for name in sorted(groups.get(USER_GROUP, {})):
            op = layout.operator(PARTDISTILL_OT_delete_preset.bl_idname, text=f"Delete {name}",
                                 icon="REMOVE")  # fmt: skip
            op.name = name


CLASSES = (
    PARTDISTILL_OT_apply_preset,
    PARTDISTILL_OT_save_preset,
    PARTDISTILL_OT_delete_preset,
    *GROUP_MENUS,
    PARTDISTILL_MT_presets,
)
