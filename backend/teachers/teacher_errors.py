"""Error patterns of real 2D teachers, applied to a view's true part map.

Each function takes the (H, W) part map of one view (-1 off the object or unlabelled) and
returns a new one with the error made; ``rng`` is a numpy Generator. They model what the
paper, PointCLIPv2 and PartSLIP report of CLIP- and GLIP-style teachers: systematic
confusions, whole-view failures, whole parts missed, speckle and hallucinated parts. Blur,
coarse patches and confidence errors act on the probabilities and live in ``simulated``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def absorb_into_neighbours(parts: np.ndarray, missed: int) -> np.ndarray:
    """A missed part's pixels take the part of the nearest pixel of another part."""
    others = (parts >= 0) & (parts != missed)
    if not others.any():
        return parts
    _, (rows, cols) = ndimage.distance_transform_edt(~others, return_indices=True)
    region = parts == missed
    out = parts.copy()
    out[region] = parts[rows[region], cols[region]]
    return out


def replace_part(parts: np.ndarray, source: int, target: int) -> np.ndarray:
    """Systematic confusion: every pixel of ``source`` read as ``target``."""
    return np.where(parts == source, target, parts)


def whole_view_failure(parts: np.ndarray, labels: list[int], rng) -> np.ndarray:
    """The whole object comes back as one label, or as two split by a line through its centre.

    labels: one or two part indices. With two, the split line's direction is random.
    """
    on = parts >= 0
    out = np.where(on, labels[0], -1)
    if len(labels) > 1 and on.any():
        rows, cols = np.nonzero(on)
        angle = rng.uniform(0.0, np.pi)
        side = (rows - rows.mean()) * np.cos(angle) + (cols - cols.mean()) * np.sin(angle) > 0
        out[rows[side], cols[side]] = labels[1]
    return out


def discs(parts: np.ndarray, count: int, radius: float, rng, choose_label) -> np.ndarray:
    """``count`` discs of ``radius`` pixels (x U(0.5, 1.5)) centred on random object pixels.

    choose_label(source part) -> the label painted on the object pixels of that disc.
    """
    rows, cols = np.nonzero(parts >= 0)
    if rows.size == 0 or count == 0:
        return parts
    out = parts.copy()
    yy, xx = np.mgrid[0 : parts.shape[0], 0 : parts.shape[1]]
    for _ in range(count):
        centre = rng.integers(rows.size)
        r0, c0 = rows[centre], cols[centre]
        size = radius * rng.uniform(0.5, 1.5)
        # A bounding window keeps each disc's cost at its own size, not the image's.
        lo_r, hi_r = max(0, int(r0 - size) - 1), int(r0 + size) + 2
        lo_c, hi_c = max(0, int(c0 - size) - 1), int(c0 + size) + 2
        window = (slice(lo_r, hi_r), slice(lo_c, hi_c))
        inside = (yy[window] - r0) ** 2 + (xx[window] - c0) ** 2 <= size**2
        inside &= parts[window] >= 0
        label = choose_label(int(parts[r0, c0]))
        out[window][inside] = label
    return out


def leak_box(box, other_boxes) -> tuple:
    """Semantic leaking: a box grown to also cover the nearest box of another part."""
    if not other_boxes:
        return box
    centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
    centres = np.array([[(b[0] + b[2]) / 2, (b[1] + b[3]) / 2] for b in other_boxes])
    nearest = other_boxes[int(np.argmin(np.linalg.norm(centres - centre, axis=1)))]
    return (
        min(box[0], nearest[0]),
        min(box[1], nearest[1]),
        max(box[2], nearest[2]),
        max(box[3], nearest[3]),
    )
