"""The last run's rendered views and the teacher's predictions: kept per object, shown as images.

For each view i: "PartDistill view i" (what the teacher saw) and "PartDistill teacher i" (its
prediction: per-pixel argmax coloured with the part palette, or boxes drawn in the part's
colour over the view). Images are packed in memory only (generated, not saved).
"""

from __future__ import annotations

from dataclasses import dataclass

import bpy
import numpy as np

from ..backend.contracts import View
from .palette import part_colors


@dataclass
class Evidence:
    """What the teacher saw and said in the last run on one object."""

    parts: list[str]
    views: list[View]
    predictions: list


# Last run's views and teacher predictions per object name, for the evidence images. Kept in
# memory only (not in the .blend): they are large and can be remade by running again.
EVIDENCE: dict[str, Evidence] = {}

VIEW_IMAGE = "PartDistill view {}"
TEACHER_IMAGE = "PartDistill teacher {}"
BACKGROUND = np.array([0.05, 0.05, 0.05])  # what is not the object in a prediction image
BOX_LINE_PIXELS = 2


def palette_rgb(num_parts: int) -> np.ndarray:
    """(R, 3) float in [0, 1]: the part colours, as the materials use them."""
    return np.array([c[:3] for c in part_colors(num_parts)], np.float64).reshape(-1, 3)


def pixel_prediction_rgb(probs: np.ndarray, face_ids: np.ndarray) -> np.ndarray:
    """(H, W, R) probabilities -> (H, W, 3) float RGB: argmax part colour, dimmed where the
    teacher is unsure (colour x max probability), background where no face was rendered."""
    colors = palette_rgb(probs.shape[2])
    best = probs.argmax(axis=2)
    strength = probs.max(axis=2)[..., None]
    rgb = colors[best] * np.clip(strength, 0.25, 1.0)
    rgb[face_ids < 0] = BACKGROUND
    return rgb


def box_prediction_rgb(image: np.ndarray, boxes: list, num_parts: int) -> np.ndarray:
    """The view (H, W, 3) uint8, darkened, with each box's outline in its argmax part colour."""
    colors = palette_rgb(num_parts)
    rgb = image.astype(np.float64) / 255.0 * 0.6
    height, width = rgb.shape[:2]
    for box, probs in boxes:
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        x0, x1 = np.clip([x0, x1], 0, width - 1)
        y0, y1 = np.clip([y0, y1], 0, height - 1)
        color = colors[int(np.argmax(probs))]
        t = BOX_LINE_PIXELS
        rgb[y0 : y0 + t, x0 : x1 + 1] = color
        rgb[max(y1 - t + 1, 0) : y1 + 1, x0 : x1 + 1] = color
        rgb[y0 : y1 + 1, x0 : x0 + t] = color
        rgb[y0 : y1 + 1, max(x1 - t + 1, 0) : x1 + 1] = color
    return rgb


def prediction_rgb(prediction, view, num_parts: int) -> np.ndarray:
    """(H, W, 3) float RGB of one teacher prediction, pixel-wise or box-wise."""
    if isinstance(prediction, np.ndarray) and prediction.ndim == 3:
        return pixel_prediction_rgb(prediction, view.face_ids)
    return box_prediction_rgb(view.image, list(prediction), num_parts)


def image_from_rgb(name: str, rgb: np.ndarray):
    """A bpy image named ``name`` holding (H, W, 3) RGB (top row first; uint8 or float 0-1),
    replacing an older one of that name."""
    height, width = rgb.shape[:2]
    image = bpy.data.images.get(name)
    if image is not None and tuple(image.size) != (width, height):
        bpy.data.images.remove(image)
        image = None
    if image is None:
        image = bpy.data.images.new(name, width, height, alpha=True)
    if rgb.dtype == np.uint8:
        rgb = rgb.astype(np.float32) / 255.0
    rgba = np.ones((height, width, 4), np.float32)
    rgba[..., :3] = rgb
    image.pixels.foreach_set(rgba[::-1].ravel())  # Blender stores the bottom row first
    image.update()
    return image


def load_evidence(object_name: str) -> list[tuple[object, object]]:
    """(view image, teacher image) per view of the last run on ``object_name``
    -> ValueError when this session has not segmented it."""
    evidence: Evidence | None = EVIDENCE.get(object_name)
    if evidence is None:
        raise ValueError(
            f"no evidence for {object_name!r} in this session: run Segment Parts on it first"
        )
    pairs = []
    for i, view in enumerate(evidence.views):
        view_image = image_from_rgb(VIEW_IMAGE.format(i), view.image)
        teacher_image = None
        if i < len(evidence.predictions):
            rgb = prediction_rgb(evidence.predictions[i], view, len(evidence.parts))
            teacher_image = image_from_rgb(TEACHER_IMAGE.format(i), rgb)
        pairs.append((view_image, teacher_image))
    return pairs


def image_editor_area(context):
    """(window, area) of an Image Editor to show evidence in: one already open (this window's
    first), else a new window holding one, made from the current area so the user's layout is
    left alone. None in background mode, where there are no windows."""
    if context.window is None or context.screen is None:
        return None
    windows = context.window_manager.windows
    for window in [context.window, *(w for w in windows if w != context.window)]:
        for area in window.screen.areas:
            if area.type == "IMAGE_EDITOR":
                return window, area
    area = context.area or max(context.screen.areas, key=lambda a: a.width * a.height)
    before = {w.as_pointer() for w in windows}
    with context.temp_override(window=context.window, area=area):
        bpy.ops.screen.area_dupli("INVOKE_DEFAULT")  # the new window's only area is a copy
    new = [w for w in windows if w.as_pointer() not in before]
    if not new:
        return None
    editor = new[0].screen.areas[0]
    editor.type = "IMAGE_EDITOR"
    return new[0], editor


def show_in_image_editor(context, image) -> bool:
    """Show ``image`` in an Image Editor (see ``image_editor_area``), zoomed to fit; False when
    none can be had."""
    found = image_editor_area(context) if image is not None else None
    if found is None:
        return False
    window, area = found
    area.spaces.active.image = image
    region = next((r for r in area.regions if r.type == "WINDOW"), None)
    if region is not None:
        with context.temp_override(window=window, area=area, region=region):
            bpy.ops.image.view_all(fit_view=True)  # views are small: fill the editor
    area.tag_redraw()
    return True
