"""Views to model inputs in plain torch (no torchvision, no PIL), on the teacher's device.

transformers 5's image processors want torchvision, which does not import beside the CPU torch
here; these few lines do what the CLIP-family processors do: resize, scale to [0, 1], normalise
with the checkpoint's mean and std (read from its ``preprocessor_config.json`` when present).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .models import hub_cache_dir

# OpenAI CLIP's normalisation, the default of every CLIP-family processor that does not say.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def read_model_json(location: str, filename: str, cache_dir: str, local_only: bool) -> dict:
    """A JSON file of a resolved model (directory or hub id), or {} when it has none."""
    path = Path(location) / filename
    if path.is_file():
        return json.loads(path.read_text())
    if Path(location).is_dir() or local_only:
        return {}
    from huggingface_hub import hf_hub_download

    try:
        return json.loads(
            Path(hf_hub_download(location, filename, cache_dir=cache_dir)).read_text()
        )
    except Exception:  # a model without a preprocessor file uses the defaults
        return {}


def normalisation(preprocessor: dict) -> tuple[tuple, tuple]:
    """(mean, std) per RGB channel from a preprocessor config, CLIP's when absent."""
    mean = tuple(preprocessor.get("image_mean") or CLIP_MEAN)
    std = tuple(preprocessor.get("image_std") or CLIP_STD)
    return mean, std


def views_to_pixels(
    images: list[np.ndarray],
    size: tuple[int, int],
    mean: tuple,
    std: tuple,
    device: torch.device,
    dtype: torch.dtype,
    pad_to_square: bool = False,
    pad_value: float = 0.5,
) -> torch.Tensor:
    """(V, 3, size[0], size[1]) normalised pixels from V (H, W, 3) uint8 RGB images.

    Each image is resized as a whole (its aspect ratio is not kept unless ``pad_to_square``,
    which first pads the bottom and right with ``pad_value`` in [0, 1] as OWLv2 does), so a
    model's output grid maps back onto the image by a plain rescale.
    """
    mean_t = torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    out = []
    for image in images:
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"a view image must be (H, W, 3) RGB, not {image.shape}")
        x = torch.from_numpy(np.ascontiguousarray(image)).to(device)
        x = x.permute(2, 0, 1).unsqueeze(0).float() / 255.0
        if pad_to_square:
            h, w = x.shape[2:]
            side = max(h, w)
            x = F.pad(x, (0, side - w, 0, side - h), value=pad_value)
        if tuple(x.shape[2:]) != tuple(size):
            # Antialiasing, as PIL's resize does; MPS kernels lack it.
            antialias = device.type != "mps"
            x = F.interpolate(
                x, size=size, mode="bilinear", align_corners=False, antialias=antialias
            )
        out.append(x)
    pixels = (torch.cat(out, 0) - mean_t) / std_t
    return pixels.to(dtype)


def read_preprocessor_config(resolved, config) -> dict | None:
    """The model's preprocessor_config.json (image size, mean, std), wherever it was resolved."""
    return read_model_json(
        resolved.location,
        "preprocessor_config.json",
        str(hub_cache_dir(config)),
        resolved.local_files_only,
    )
