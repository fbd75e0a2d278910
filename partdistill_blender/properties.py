"""Scene settings of the sidebar panel, and the one function that turns them into a config.

Every setting that mirrors a ``PartDistillConfig`` field takes its default from the dataclass,
so the UI, the batch entry point and the benchmarks start from the same numbers.
"""

from __future__ import annotations

import dataclasses
import struct

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    EnumProperty,
    FloatProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)

from ..backend.config import (
    DEVICES,
    ENCODERS,
    MODES,
    RENDER_ENGINES,
    PartDistillConfig,
    parse_part_names,
)
from ..backend.teachers import BUILTIN_TEACHERS

DEFAULTS = {f.name: f.default for f in dataclasses.fields(PartDistillConfig)}

CUSTOM_TEACHER = "custom"
FROM_PREFERENCES = "preferences"

_ENGINE_LABELS = {
    "CYCLES": "Cycles",
    "BLENDER_WORKBENCH": "Workbench",
    "BLENDER_EEVEE_NEXT": "EEVEE",
}
_MODE_LABELS = {
    "direct": ("Teacher only", "Vote the teacher's predictions onto faces, no student"),
    "forward": ("Student", "Distill the teacher into a 3D student (forward only)"),
    "distill": ("Student + backward", "Forward and backward distillation (the paper's method)"),
}
_TEACHER_LABELS = {
    "clip": ("CLIP (pixels)", "Pixel-wise CLIP features compared with the part names"),
    "owlv2": ("OWLv2 (boxes)", "Open-vocabulary boxes from OWLv2"),
    "grounding-dino": ("Grounding DINO (boxes)", "Open-vocabulary boxes from Grounding DINO"),
    "simulated": ("Simulated", "Built from the mesh's ground-truth labels (tests and demos)"),
}


def _enum_items(values, labels=None):
    labels = labels or {}
    items = []
    for value in values:
        label = labels.get(value, value.capitalize())
        name, description = label if isinstance(label, tuple) else (label, label)
        items.append((value, name, description))
    return items


def _int(field: str, name: str, description: str, **limits) -> IntProperty:
    return IntProperty(name=name, description=description, default=DEFAULTS[field], **limits)


def _float(field: str, name: str, description: str, **limits) -> FloatProperty:
    return FloatProperty(name=name, description=description, default=DEFAULTS[field], **limits)


class PARTDISTILL_PG_part(bpy.types.PropertyGroup):
    """One part name of the list; ``name`` is the name the teacher is prompted with."""

    name: StringProperty(name="Part", description="Name of the part, as a teacher reads it")


class PARTDISTILL_PG_settings(bpy.types.PropertyGroup):
    """Everything the Segment Parts button needs, stored per scene (``scene.partdistill``)."""

    parts: CollectionProperty(type=PARTDISTILL_PG_part)
    active_part: IntProperty(name="Active Part", default=0)
    category: StringProperty(
        name="Object",
        description='What the object is ("chair"), used in prompts: "the leg of a chair". Optional',
    )
    one_student: BoolProperty(
        name="One Student for All Selected",
        description="Align one student over all selected meshes (pre-alignment) instead of "
        "one per mesh",
        default=DEFAULTS["collection"],
    )

    # --- main settings ---
    num_views: _int("num_views", "Views", "Number of rendered views", min=1, soft_max=30)
    resolution: _int("resolution", "Resolution", "Pixels of each square view", min=32, max=4096)
    render_engine: EnumProperty(
        name="Engine",
        description="Render engine of the views the teacher sees",
        items=_enum_items(RENDER_ENGINES, _ENGINE_LABELS),
        default=DEFAULTS["render_engine"],
    )
    mode: EnumProperty(
        name="Mode",
        description="How faces get their labels",
        items=_enum_items(MODES, _MODE_LABELS),
        default=DEFAULTS["mode"],
    )
    device: EnumProperty(
        name="Device",
        description="Where the teacher and student run",
        items=[(FROM_PREFERENCES, "Preferences", "The device set in the add-on preferences")]
        + _enum_items(DEVICES, {"cpu": "CPU", "cuda": "CUDA", "mps": "MPS"}),
        default=FROM_PREFERENCES,
    )
    teacher: EnumProperty(
        name="Teacher",
        description="The 2D model that predicts parts in the views",
        items=_enum_items(BUILTIN_TEACHERS, _TEACHER_LABELS)
        + [(CUSTOM_TEACHER, "Custom", "A factory of yours: package.module:factory")],
        default=DEFAULTS["teacher"],
    )
    custom_teacher: StringProperty(
        name="Factory", description="package.module:factory, called with the part names"
    )

    # --- advanced settings ---
    render_samples: _int("render_samples", "Samples", "Cycles samples per view", min=1)
    camera_fov_deg: _float("camera_fov_deg", "Field of View", "Camera field of view, degrees",
                           min=5.0, max=120.0)  # fmt: skip
    num_points: _int("num_points", "Points", "Points sampled on the surface", min=64)
    epochs: _int("epochs", "Epochs", "Training epochs of the student", min=1)
    steps_per_epoch: _int("steps_per_epoch", "Steps per Epoch", "Optimiser steps per epoch", min=1)
    learning_rate: _float("learning_rate", "Learning Rate", "Adam learning rate", min=0.0,
                          precision=4)  # fmt: skip
    encoder: EnumProperty(
        name="Encoder",
        description="Point features of the student",
        items=_enum_items(ENCODERS, {"geometric": "Geometric (fixed)", "edgeconv": "EdgeConv"}),
        default=DEFAULTS["encoder"],
    )
    tau: _float("tau", "Tau", "Backward distillation starts when the loss changes less than this",
                min=0.0, precision=3)  # fmt: skip
    min_component_pixels: _int("min_component_pixels", "Min Component Pixels",
                               "Smaller teacher regions are ignored as noise", min=0)  # fmt: skip
    seed: _int("seed", "Seed", "Random seed of sampling and training", min=0)
    low_confidence: _float("low_confidence", "Low Confidence", "Faces below this confidence "
                           "count as low confidence", min=0.0, max=1.0)  # fmt: skip

    # --- state of a running segmentation, shown by the panel (not settings) ---
    is_running: BoolProperty(default=False, options={"SKIP_SAVE"})
    progress: FloatProperty(default=0.0, min=0.0, max=1.0, subtype="FACTOR", options={"SKIP_SAVE"})
    progress_text: StringProperty(default="", options={"SKIP_SAVE"})
    evidence_view: IntProperty(name="View", description="View shown in the Image Editor", min=0)
    keep_corrections: BoolProperty(
        name="Keep Corrections",
        description="Clear Segmentation keeps the faces you assigned to parts, so that the "
        "next Segment Parts learns them again",
        default=False,
    )
    # A Refine that found the kept run stale: the panel offers a full run for this object.
    stale_object: StringProperty(default="", options={"SKIP_SAVE"})
    stale_message: StringProperty(default="", options={"SKIP_SAVE"})


# Settings copied one to one into the config (same name on both sides).
MIRRORED_FIELDS = (
    "num_views",
    "resolution",
    "render_engine",
    "mode",
    "render_samples",
    "camera_fov_deg",
    "num_points",
    "epochs",
    "steps_per_epoch",
    "learning_rate",
    "encoder",
    "tau",
    "min_component_pixels",
    "seed",
    "low_confidence",
)


def part_names(settings) -> list[str]:
    """The part names of the list, checked (no empty list, no duplicates) -> ValueError."""
    return parse_part_names(",".join(p.name for p in settings.parts))


def _config_value(name: str, value):
    """Blender stores floats in 32 bits: an unchanged setting gives back the exact default."""
    default = DEFAULTS[name]
    if isinstance(default, float) and struct.unpack("f", struct.pack("f", default))[0] == value:
        return default
    return value


def config_from_settings(settings, prefs=None) -> PartDistillConfig:
    """The config of a run: the panel's settings over the add-on preferences over the defaults.

    ``prefs`` is the add-on preferences (None when the add-on is not enabled as such, e.g. in
    tests that load the package directly): then model, device and cache use the defaults.
    """
    changes = {name: _config_value(name, getattr(settings, name)) for name in MIRRORED_FIELDS}
    changes["teacher"] = (
        settings.custom_teacher.strip() if settings.teacher == CUSTOM_TEACHER else settings.teacher
    )
    changes["collection"] = settings.one_student
    if prefs is not None:
        changes["model"] = prefs.model.strip() or DEFAULTS["model"]
        changes["cache_dir"] = prefs.effective_cache_dir()
        changes["allow_downloads"] = prefs.downloads_allowed()
    device = settings.device
    if device == FROM_PREFERENCES:
        device = prefs.device if prefs is not None else DEFAULTS["device"]
    changes["device"] = device
    config = PartDistillConfig().replace(**changes)
    if not config.teacher:
        raise ValueError("the custom teacher needs a factory: package.module:factory")
    config.validate()
    return config


CLASSES = (PARTDISTILL_PG_part, PARTDISTILL_PG_settings)


def register_properties() -> None:
    bpy.types.Scene.partdistill = PointerProperty(type=PARTDISTILL_PG_settings)
    # On the object, so it is saved with it and shows in its Results panel.
    bpy.types.Object.partdistill_example = BoolProperty(
        name="Use as Example",
        description="Segment Parts on other objects learns from this object's parts (its "
        "segmentation with your corrections), as a labelled example of the same kind of shape",
        default=False,
    )


def unregister_properties() -> None:
    del bpy.types.Object.partdistill_example
    del bpy.types.Scene.partdistill
