"""Is the object drawn in its part colours? Counts screenshot pixels near each palette colour.

    python3 .ci/check_screenshot.py AFTER.png BEFORE.png UI_STATE.json NUM_PARTS

Runs inside the chroot (ImageMagick decodes the PNG; numpy counts). Only the 3D viewport's canvas
(no toolbar, headers or sidebar) is counted, so the Results panel's swatches do not count. Each part
colour must cover at least MIN_PIXELS there after the run, and next to none before it (the
object starts grey), so the colours come from the segmentation.
"""

import colorsys
import importlib.util
import json
import pathlib
import subprocess
import sys

import numpy as np

MIN_PIXELS = 400  # a part of the chair covers thousands of pixels at 1280 x 800
MAX_PIXELS_BEFORE = 50
HUE_TOLERANCE = 0.04  # of a full turn: lighting and the view transform shift hues a little
MIN_SATURATION = 0.25
MIN_VALUE = 0.12

REPO = pathlib.Path(__file__).resolve().parents[1]


def palette(num_parts: int) -> list[tuple[float, float, float]]:
    spec = importlib.util.spec_from_file_location(
        "palette", REPO / "partdistill_blender" / "palette.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [c[:3] for c in module.part_colors(num_parts)]


def read_rgb(path: str) -> np.ndarray:
    """(H, W, 3) uint8, decoded by ImageMagick."""
    size = subprocess.run(
        ["identify", "-format", "%w %h", path], capture_output=True, text=True, check=True
    ).stdout.split()
    width, height = int(size[0]), int(size[1])
    raw = subprocess.run(
        ["convert", path, "-depth", "8", "rgb:-"], capture_output=True, check=True
    ).stdout
    return np.frombuffer(raw, np.uint8).reshape(height, width, 3)


def hsv(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 RGB -> (..., 3) float HSV in [0, 1]."""
    x = rgb.astype(np.float32) / 255.0
    value = x.max(-1)
    chroma = value - x.min(-1)
    saturation = np.where(value > 0, chroma / np.maximum(value, 1e-6), 0.0)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    safe = np.maximum(chroma, 1e-6)
    hue = np.where(
        value == r,
        ((g - b) / safe) % 6.0,
        np.where(value == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0),
    )
    return np.stack([hue / 6.0, saturation, value], -1)


def count_part_pixels(image: np.ndarray, colors) -> list[int]:
    pixels = hsv(image)
    counts = []
    for color in colors:
        hue = colorsys.rgb_to_hsv(*color)[0]
        distance = np.abs(pixels[..., 0] - hue)
        distance = np.minimum(distance, 1.0 - distance)
        near = (distance < HUE_TOLERANCE) & (pixels[..., 1] > MIN_SATURATION)
        counts.append(int(np.sum(near & (pixels[..., 2] > MIN_VALUE))))
    return counts


def viewport_crop(image: np.ndarray, state: dict) -> np.ndarray:
    """The viewport where the object is drawn (no toolbar, headers or sidebar)."""
    c = state["canvas"]
    return image[c["y"] : c["y"] + c["height"], c["x"] : c["x"] + c["width"]]


def main(after_path: str, before_path: str, state_path: str, num_parts: str) -> int:
    state = json.loads(pathlib.Path(state_path).read_text())
    colors = palette(int(num_parts))
    after = count_part_pixels(viewport_crop(read_rgb(after_path), state), colors)
    before = count_part_pixels(viewport_crop(read_rgb(before_path), state), colors)
    print(f"part-colour pixels in the viewport: before {before}, after {after}")
    failures = [f"part {i}: {n} pixels" for i, n in enumerate(after) if n < MIN_PIXELS]
    failures += [
        f"part {i} before the run: {n}" for i, n in enumerate(before) if n > MAX_PIXELS_BEFORE
    ]
    if failures:
        print("the screenshot does not show the parts:", "; ".join(failures))
        return 1
    print("the object is drawn in its part colours")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
