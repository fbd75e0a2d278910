"""Datablocks made for one piece of work (a render, a preview) and removed with it.

Rendering and previews build scenes, cameras, worlds and materials of their own so that the
user's data is never touched; this removes them again, also on error.
"""

from __future__ import annotations

import bpy


class TemporaryData:
    """Datablocks to remove together, newest first, as a context manager or by ``remove_all``.

    Blender's "Render Result" image is made by the first render when there is none yet: it is
    removed too when there was none on creation, and the user's to keep otherwise.
    """

    def __init__(self):
        self._datablocks: list = []  # (collection, datablock) in creation order
        self._had_render_result = any(i.type == "RENDER_RESULT" for i in bpy.data.images)

    def add(self, collection, datablock):
        """Remove ``datablock`` from ``collection`` (bpy.data.scenes, ...) later; return it."""
        self._datablocks.append((collection, datablock))
        return datablock

    def remove_all(self) -> None:
        """Remove every datablock added, users (scenes, objects) before the data they held."""
        for collection, datablock in reversed(self._datablocks):
            try:
                collection.remove(datablock)
            except ReferenceError:  # already gone with its owner
                pass
        self._datablocks.clear()
        if not self._had_render_result:
            for image in [i for i in bpy.data.images if i.type == "RENDER_RESULT"]:
                bpy.data.images.remove(image)

    def __enter__(self) -> TemporaryData:
        return self

    def __exit__(self, *exc_info) -> None:
        self.remove_all()
