"""The one door from the Blender half to the compute half.

Batch and UI call ``segment_objects``; it builds (and caches) the teacher and runs the backend
pipeline. Keeping this seam in one place lets the compute half run elsewhere (another Python
with torch, a GPU machine) without the callers knowing.
"""

from __future__ import annotations

from ..backend.config import PartDistillConfig
from ..backend.contracts import ProgressFn, Segmentation
from ..backend.pipeline import ObjectInput, segment_collection
from ..backend.teachers import build_teacher

_teacher_cache: dict = {}


def get_teacher(spec: str, parts: list[str], options: dict):
    """The teacher for these part names, built once per process and reused across objects."""
    key = (spec, tuple(parts), tuple(sorted((k, repr(v)) for k, v in options.items())))
    if key not in _teacher_cache:
        _teacher_cache.clear()  # one model in memory at a time
        _teacher_cache[key] = build_teacher(spec, parts, **options)
    return _teacher_cache[key]


def segment_objects(
    objects: list[ObjectInput],
    parts: list[str],
    config: PartDistillConfig,
    teacher_options: dict | None = None,
    progress: ProgressFn | None = None,
    teacher=None,
) -> list[Segmentation]:
    """Segment objects (already rendered) with the configured teacher and student."""
    if teacher is None:
        teacher = get_teacher(config.teacher, parts, dict(teacher_options or {}))
    return segment_collection(objects, teacher, parts, config, progress)
