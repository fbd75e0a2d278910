"""Where the add-on lives: its package name, its preferences and its writable folder. Kept
apart from the preferences' class so that what reads the preferences need not import what
draws them."""

from __future__ import annotations

import os
import tempfile

import bpy

# The extension's root package: "bl_ext.<repo>.<id>" when installed, "partdistill" in tests.
ADDON_PACKAGE = __package__.rpartition(".")[0]


def extension_user_dir(subdir: str) -> str:
    """A writable folder of the extension (created): its user directory when installed as an
    extension, else a folder under the system's temporary directory."""
    try:
        return bpy.utils.extension_path_user(ADDON_PACKAGE, path=subdir, create=True)
    except (ValueError, AttributeError, RuntimeError):
        # Not loaded as an extension (tests, scripts): no extension user directory exists.
        path = os.path.join(tempfile.gettempdir(), "partdistill", subdir)
        os.makedirs(path, exist_ok=True)
        return path


def get_preferences(context=None):
    """The add-on preferences, or None when the package is not enabled as an add-on."""
    context = context or bpy.context
    addon = context.preferences.addons.get(ADDON_PACKAGE)
    return addon.preferences if addon is not None else None
