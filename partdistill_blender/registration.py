"""register() / unregister() of every class of the extension, in dependency order."""

from __future__ import annotations

import bpy

from . import operators, panels, part_list, preferences, properties

# Property groups first (others point at them), panels last (they draw the operators).
CLASSES = (
    *properties.CLASSES,
    *preferences.CLASSES,
    *part_list.CLASSES,
    *operators.CLASSES,
    *panels.CLASSES,
)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    properties.register_properties()


def unregister() -> None:
    job = operators.running_job()
    if job is not None:  # never leave a worker thread behind a disabled add-on
        job.abort()
    properties.unregister_properties()
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
