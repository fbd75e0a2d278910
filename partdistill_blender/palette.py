"""Distinct, deterministic part colours for materials and previews."""

from __future__ import annotations

import colorsys

# Hand-picked first colours: readable on grey and on each other, in sRGB 0-1.
_BASE_COLORS = (
    (0.90, 0.33, 0.27),  # red
    (0.27, 0.55, 0.87),  # blue
    (0.38, 0.75, 0.36),  # green
    (0.96, 0.70, 0.20),  # amber
    (0.62, 0.40, 0.80),  # violet
    (0.25, 0.78, 0.78),  # teal
    (0.93, 0.50, 0.72),  # pink
    (0.60, 0.45, 0.30),  # brown
    (0.70, 0.82, 0.30),  # lime
    (0.45, 0.45, 0.55),  # slate
)
_GOLDEN_RATIO_CONJUGATE = 0.618033988749895


def part_colors(n: int) -> list[tuple[float, float, float, float]]:
    """n RGBA colours (floats in [0, 1], alpha 1): the hand-picked ones, then golden-ratio hues."""
    if n < 0:
        raise ValueError(f"number of colours must be non-negative, not {n}")
    colors = [(*c, 1.0) for c in _BASE_COLORS[:n]]
    hue = 0.11
    for i in range(len(colors), n):
        hue = (hue + _GOLDEN_RATIO_CONJUGATE) % 1.0
        # Alternate lightness and saturation a little so neighbours in hue still differ.
        lightness = 0.55 if i % 2 else 0.45
        saturation = 0.65 if (i // 2) % 2 else 0.8
        r, g, b = colorsys.hls_to_rgb(hue, lightness, saturation)
        colors.append((r, g, b, 1.0))
    return colors
