"""register() / unregister() of every class of the extension, in dependency order."""

from __future__ import annotations

import bpy

from . import (
    correction_ops,
    job_registry,
    known_labels,
    model_downloads,
    model_manager,
    operators,
    panels,
    part_list,
    preferences,
    presets,
    properties,
    result_operators,
)

# Property groups first (others point at them), panels last (they draw the operators).
CLASSES = (
    *properties.CLASSES,
    *preferences.CLASSES,
    *part_list.CLASSES,
    *presets.CLASSES,
    *model_manager.CLASSES,
    *operators.CLASSES,
    *result_operators.CLASSES,
    *correction_ops.CLASSES,
    *panels.CLASSES,
)


@bpy.app.handlers.persistent
def _abort_on_load(*_args) -> None:
    job_registry.abort_running_job()


@bpy.app.handlers.persistent
def _reread_after_undo(*_args) -> None:
    known_labels.refresh_after_undo()


UNDO_HANDLERS = (bpy.app.handlers.undo_post, bpy.app.handlers.redo_post)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    properties.register_properties()
    bpy.app.handlers.load_pre.append(_abort_on_load)
    for handlers in UNDO_HANDLERS:
        handlers.append(_reread_after_undo)


def unregister() -> None:
    if _abort_on_load in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(_abort_on_load)
    for handlers in UNDO_HANDLERS:
        if _reread_after_undo in handlers:
            handlers.remove(_reread_after_undo)
    job_registry.abort_running_job()  # never leave a worker thread behind a disabled add-on
    model_downloads.stop_all()
    properties.unregister_properties()
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
