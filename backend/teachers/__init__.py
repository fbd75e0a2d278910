"""2D teachers and how a teacher is chosen by name.

Built-in names: "clip" (pixel-wise CLIP through transformers, the default), "owlv2" and
"grounding-dino" (box-wise), "simulated" (built from ground truth, for tests and benchmarks).
Anything else of the form "package.module:factory" is imported and called as
``factory(part_names, **options)``.

The package is layered so its imports run one way: ``models`` (where weights come from) and
``preprocess`` (image processor settings) at the bottom, the encoders (``clip_encoders``,
``open_clip_loader``) above them, the teachers (``clip``, ``boxes``, ``simulated``) above those,
and this module, which chooses and checks a teacher by name, on top.
"""

from __future__ import annotations

import importlib

from ..config import PartDistillConfig
from ..contracts import TeacherUnavailable
from .models import (
    DEFAULT_MODELS,
    OPEN_CLIP_PREFIX,
    downloads_allowed,
    hub_cache_dir,
    model_for_teacher,
    resolve_model,
)
from .weights_check import check_model_folder

BUILTIN_TEACHERS = {
    "clip": "clip:clip_teacher",
    "owlv2": "boxes:owlv2_teacher",
    "grounding-dino": "boxes:grounding_dino_teacher",
    "simulated": "simulated:simulated_teacher",
}


def resolve_factory(spec: str):
    """Return the factory callable named by ``spec`` (a built-in name or "module:function")."""
    if spec in BUILTIN_TEACHERS:
        module_name, _, attr = BUILTIN_TEACHERS[spec].partition(":")
        module = importlib.import_module(f"{__name__}.{module_name}")
        return getattr(module, attr)
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise TeacherUnavailable(
            f"unknown teacher {spec!r}: use one of {', '.join(BUILTIN_TEACHERS)} "
            "or 'package.module:factory'"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise TeacherUnavailable(f"cannot import teacher module {module_name!r}: {exc}") from exc
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise TeacherUnavailable(f"module {module_name!r} has no callable {attr!r}")
    return factory


def teacher_options_for(spec: str, config: PartDistillConfig, options: dict | None = None) -> dict:
    """The options a teacher ``spec`` is built with: ``options``, and for a built-in teacher the
    run's configuration as ``config`` too (it reads model, device and cache from it)."""
    options = dict(options or {})
    if spec in BUILTIN_TEACHERS:
        options["config"] = config
    return options


def build_teacher(spec: str, part_names: list[str], **options):
    """Build a teacher and check it honours the protocol (``kind`` and ``predict``)."""
    teacher = resolve_factory(spec)(list(part_names), **options)
    kind = getattr(teacher, "kind", None)
    if kind not in ("pixel", "box") or not callable(getattr(teacher, "predict", None)):
        raise TeacherUnavailable(
            f"teacher {spec!r} must have kind 'pixel' or 'box' and a predict(views) method"
        )
    return teacher


def download_missing_model(spec: str, config: PartDistillConfig, progress=None) -> str | None:
    """Fetch the weights of a built-in teacher now, when they are missing and downloads are
    allowed (``hub_download``, with ``progress`` as it goes); returns the model's name when
    something was fetched, else None. So a run never downloads inside its teacher stage, where
    no progress can be shown. A failed download raises TeacherUnavailable saying why."""
    if spec not in DEFAULT_MODELS or not downloads_allowed(config):
        return None
    name = model_for_teacher(spec, config)
    if name.startswith(OPEN_CLIP_PREFIX) or resolve_model(name, config).source != "download":
        return None
    from .hub_download import download_model, hub_endpoint

    try:
        download_model(name, hub_cache_dir(config), progress=progress)
    except (KeyboardInterrupt, MemoryError):
        raise
    except Exception as exc:  # the Hub's and the network's many errors, said in one line
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TeacherUnavailable(
            f"model {name!r} could not be downloaded from {hub_endpoint()}: {detail}. What was "
            "fetched is kept; running again resumes from it."
        ) from exc
    return name


def check_teacher_available(spec: str, config: PartDistillConfig) -> None:
    """Raise TeacherUnavailable now if the teacher ``spec`` could not be built later.

    Cheap (no model is loaded, nothing is downloaded): call it before rendering anything.
    Built-in VLM teachers check their weights; "simulated" needs nothing; a custom
    "package.module:factory" is imported, and its optional ``check_available(config)`` called.
    """
    if spec in DEFAULT_MODELS:
        name = model_for_teacher(spec, config)
        if name.startswith(OPEN_CLIP_PREFIX):
            if spec != "clip":
                raise TeacherUnavailable(
                    f"open_clip models work with the clip teacher only, not {spec!r}"
                )
            from .open_clip_loader import check_open_clip

            check_open_clip(name, config)
        else:
            resolved = resolve_model(name, config)
            # Whole weights of the right kind, read from the headers only (loads nothing).
            check_model_folder(spec, resolved.location, name)
        return
    if spec in BUILTIN_TEACHERS:
        return
    factory = resolve_factory(spec)
    check = getattr(factory, "check_available", None)
    if callable(check):
        check(config)
