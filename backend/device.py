"""Choosing the torch device: one code path for CPU, CUDA and Apple's MPS."""

from __future__ import annotations

import torch


def resolve_device(name: str = "auto") -> torch.device:
    """ "auto" picks CUDA, then MPS, then CPU; an explicit device that is absent is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for, but this torch build sees no CUDA GPU")
    if name == "mps" and not (
        getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    ):
        raise RuntimeError("device 'mps' was asked for, but Apple's MPS is not available here")
    return torch.device(name)


def use_half_precision(setting: str, device: torch.device) -> bool:
    """fp16 only where it is safe and fast: CUDA by default, never on CPU."""
    if setting == "on":
        return device.type in ("cuda", "mps")
    if setting == "off":
        return False
    return device.type == "cuda"
