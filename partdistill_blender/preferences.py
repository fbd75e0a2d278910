"""Add-on preferences: which model, where it runs, where weights are cached, may it download."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty, StringProperty

from ..backend.config import DEVICES
from .addon import ADDON_PACKAGE, extension_user_dir
from .model_manager import draw_models_box
from .properties import DEFAULTS


class PARTDISTILL_AP_preferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_PACKAGE

    model: StringProperty(
        name="Model",
        description="Hugging Face model id or a local folder holding the teacher's weights",
        default=DEFAULTS["model"],
    )
    device: EnumProperty(
        name="Device",
        description="Default device of the teacher and student",
        items=[
            (d, {"cpu": "CPU", "cuda": "CUDA", "mps": "MPS"}.get(d, d.capitalize()), "")
            for d in DEVICES
        ],  # fmt: skip
        default=DEFAULTS["device"],
    )
    cache_dir: StringProperty(
        name="Cache Folder",
        description="Where model weights are cached; empty: the extension's user directory",
        subtype="DIR_PATH",
        default="",
    )
    allow_downloads: BoolProperty(
        name="Allow Downloads",
        description="Download model weights when they are not cached. Takes effect only "
        "when Blender's online access is on (Preferences > System > Network)",
        default=DEFAULTS["allow_downloads"],
    )

    python_path: StringProperty(
        name="Python with torch",
        description="A Python whose environment has torch, scipy and transformers (e.g. a CUDA "
        "environment). When set, the compute half runs in it, out of Blender's process. Empty: "
        "Blender's own Python if it has torch, else one found on this machine",
        subtype="FILE_PATH",
        default="",
    )

    def effective_cache_dir(self) -> str:
        return bpy.path.abspath(self.cache_dir) if self.cache_dir else extension_user_dir("cache")

    def downloads_allowed(self) -> bool:
        return bool(self.allow_downloads and bpy.app.online_access)

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        layout.prop(self, "model")
        layout.prop(self, "device")
        layout.prop(self, "cache_dir")
        layout.prop(self, "python_path")
        row = layout.row()
        row.prop(self, "allow_downloads")
        box = layout.box()
        box.use_property_split = False
        box.label(text="Models", icon="IMPORT")
        draw_models_box(box, context)


CLASSES = (PARTDISTILL_AP_preferences,)
