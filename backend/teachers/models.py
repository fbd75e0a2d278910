"""Where a teacher's weights come from, decided before anything is rendered or loaded.

A model is named by a Hugging Face id ("openai/clip-vit-base-patch16"), a local directory
holding a ``config.json`` (what ``save_pretrained`` writes), or, for the open_clip loader,
"open_clip:ARCH/TAG" or "open_clip:ARCH/path/to/checkpoint.pt". Weights are taken from, in
order: the local directory; the Hugging Face cache (``config.cache_dir`` or the default one),
without touching the network; a download, only when ``config.allow_downloads`` is on and
``HF_HUB_OFFLINE`` is not set. Anything else raises ``TeacherUnavailable`` with one message a
user can act on. Loaded models are kept for the life of the process (batch runs reuse them).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from ..config import PartDistillConfig
from ..contracts import TeacherUnavailable
from .model_store import installed_location, is_hub_id

# The model each built-in teacher uses when the configuration does not name another one.
DEFAULT_MODELS = {
    "clip": "openai/clip-vit-base-patch16",
    "owlv2": "google/owlv2-base-patch16-ensemble",
    "grounding-dino": "IDEA-Research/grounding-dino-base",
}
OPEN_CLIP_PREFIX = "open_clip:"
DOWNLOAD_SCRIPT = "scripts/download_models.py"

_LOADED: dict[tuple, object] = {}
_LOADED_LOCK = threading.Lock()


@dataclass(frozen=True)
class ResolvedModel:
    """Where to load a model from: ``location`` is a directory, or a hub id to download."""

    name: str  # what the user asked for
    location: str
    source: str  # "directory", "cache" or "download"

    @property
    def local_files_only(self) -> bool:
        return self.source != "download"


def model_for_teacher(teacher: str, config: PartDistillConfig) -> str:
    """The model a built-in teacher loads: ``config.model``, or the teacher's own default.

    ``config.model`` defaults to the CLIP model; a box teacher given that default uses its own
    default model instead, so "--teacher owlv2" alone does the expected thing.
    """
    model = (config.model or "").strip()
    default = DEFAULT_MODELS.get(teacher)
    if not model or (teacher != "clip" and default and model == DEFAULT_MODELS["clip"]):
        return default or model
    return model


def hub_cache_dir(config: PartDistillConfig) -> Path:
    """The Hugging Face hub cache this configuration reads and fills."""
    if config.cache_dir:
        return Path(config.cache_dir).expanduser()
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def downloads_allowed(config: PartDistillConfig) -> bool:
    """Downloads need the configuration's consent and no HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE."""
    offline = any(
        os.environ.get(var, "").strip().upper() in ("1", "ON", "YES", "TRUE")
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )
    return bool(config.allow_downloads) and not offline


def resolve_model(name: str, config: PartDistillConfig) -> ResolvedModel:
    """Find ``name`` on disk (or decide to download it) without loading anything.

    Raises TeacherUnavailable naming the model, where it was looked for, and how to get it.
    """
    name = name.strip()
    if not name:
        raise TeacherUnavailable("no model given: pass --model with a model id or a directory")
    path = Path(name).expanduser()
    if path.is_dir():
        if (path / "config.json").is_file():
            return ResolvedModel(name, str(path.resolve()), "directory")
        raise TeacherUnavailable(
            f"model directory {path} has no config.json, so it is not a saved transformers model.",
            _how_to_get(name, config),
        )
    if not is_hub_id(name):
        raise TeacherUnavailable(
            f"model {name!r} was not found: no directory {path.resolve()} exists.",
            _how_to_get(name, config),
        )
    snapshot = _cached_snapshot(name, config)
    if snapshot is not None:
        return ResolvedModel(name, snapshot, "cache")
    if downloads_allowed(config):
        return ResolvedModel(name, name, "download")
    raise TeacherUnavailable(
        f"model {name!r} is not on this machine: not a local directory, and not in the "
        f"Hugging Face cache {hub_cache_dir(config)}; downloads are off"
        + (" (HF_HUB_OFFLINE is set)" if config.allow_downloads else "")
        + ".",
        _how_to_get(name, config),
    )


def _cached_snapshot(repo_id: str, config: PartDistillConfig) -> str | None:
    """The cached snapshot of ``repo_id`` when it holds config.json and weights, else None."""
    found = installed_location(repo_id, hub_cache_dir(config))
    return str(found[0]) if found is not None and found[1] else None


def _how_to_get(name: str, config: PartDistillConfig) -> str:
    cache = f" --cache-dir {config.cache_dir}" if config.cache_dir else ""
    return (
        f"On a machine that is online, fetch it with `python {DOWNLOAD_SCRIPT} {name}{cache}` "
        f"(or `hf download {name}`), then copy the cache or the model directory here and pass "
        "--model DIR; or use another teacher: --model DIR (any saved CLIP-family model), "
        "--teacher package.module:factory (your own), or --teacher simulated."
    )


def load_once(key: tuple, loader):
    """Return the object cached under ``key``, calling ``loader()`` the first time only."""
    with _LOADED_LOCK:
        if key not in _LOADED:
            _LOADED[key] = loader()
        return _LOADED[key]


def forget_loaded_models() -> None:
    """Drop every cached model (frees memory; the next teacher loads again)."""
    with _LOADED_LOCK:
        _LOADED.clear()


def from_pretrained(cls, resolved: ResolvedModel, config: PartDistillConfig, **kwargs):
    """``cls.from_pretrained`` on a resolved model, never reaching the network unless allowed.

    Missing or broken files become TeacherUnavailable with the same advice as a missing model.
    """
    try:
        return cls.from_pretrained(
            resolved.location,
            cache_dir=str(hub_cache_dir(config)),
            local_files_only=resolved.local_files_only,
            **kwargs,
        )
    except (OSError, ValueError) as exc:
        raise TeacherUnavailable(
            f"model {resolved.name!r} could not be loaded from {resolved.location} "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). "
            + _how_to_get(resolved.name, config)
        ) from exc
