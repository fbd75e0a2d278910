"""Files the batch writes from Blender's data: a .blend per object or of the whole scene."""

from __future__ import annotations

import pathlib

import bpy

from ..backend.atomic_write import write_atomically
from .input_checks import os_error_from_message


def per_object_path(target: str, name: str, suffix: str) -> pathlib.Path:
    """``target`` itself when it ends in ``suffix``, else ``target/NAME{suffix}`` (a safe
    file name made of the object's name); the folder is made."""
    target = pathlib.Path(target)
    if target.suffix.lower() == suffix:
        target.parent.mkdir(parents=True, exist_ok=True)
        return target
    target.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return target / f"{safe}{suffix}"


def save_blend(path: pathlib.Path, objects=None) -> None:
    """The whole open file as a copy (objects=None), or a file holding just these objects.
    A failed write (a full disk) raises OSError with its errno, naming ``path``."""
    if objects is None:
        _write_blend(path, lambda p: bpy.ops.wm.save_as_mainfile(filepath=str(p), copy=True))
        return
    scene = bpy.data.scenes.new(f"PartDistill {objects[0].name}")
    try:
        for obj in objects:
            scene.collection.objects.link(obj)
        _write_blend(path, lambda p: bpy.data.libraries.write(str(p), {scene}, compress=True))
    finally:
        bpy.data.scenes.remove(scene)


def _write_blend(path: pathlib.Path, write) -> None:
    def written(temporary):
        try:
            write(temporary)
        except (RuntimeError, OSError) as exc:
            translated = os_error_from_message(exc, temporary)
            if translated is exc:
                raise
            raise translated from exc

    write_atomically(path, written)


def remove_objects(objects) -> None:
    """Delete the objects and the meshes only they used (thousands of files: flat memory)."""
    meshes = [o.data for o in objects]
    for obj in objects:
        bpy.data.objects.remove(obj)
    for mesh in meshes:
        if mesh.users == 0:
            bpy.data.meshes.remove(mesh)
