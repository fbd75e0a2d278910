"""Refine: the student re-learns an object from its kept run and the user's corrections.

No view is rendered and no teacher runs: the kept run (``kept_runs.py``) has the points, their
features, the teacher's knowledge units and the student's weights. The corrections join as
known labels (``pipeline.supervised``): a cross-entropy the units cannot outvote, and the
final labels keeping them. The student goes on from its kept
weights for ``config.refine_epochs`` epochs (``distill.train_student``'s ``start_from``).
Each Refine starts from the kept run, never from the last Refine: the same corrections give
the same labels, whatever was refined before.
"""

from __future__ import annotations

import time

import numpy as np

from .config import PartDistillConfig
from .contracts import ProgressFn, Segmentation
from .device import resolve_device
from .distill import train_student
from .kept_runs import KeptRun, check_fits
from .pipeline import finish_labels, supervised


def refine_kept_run(
    kept: KeptRun,
    corrections: np.ndarray,
    parts: list[str],
    config: PartDistillConfig,
    name: str = "",
    progress: ProgressFn | None = None,
) -> Segmentation:
    """Labels for every polygon of the kept object, given ``corrections`` (P,) int (part
    index, -1 = not corrected). Raises StaleRun when the object changed since the kept run,
    ValueError when nothing is corrected."""
    progress = progress or (lambda stage, fraction: None)
    name = name or kept.name
    check_fits(kept, len(corrections), parts, name)
    corrections = np.asarray(corrections, np.int64)
    if not (corrections >= 0).any():
        raise ValueError(
            f"{name!r} has no corrections to learn from: select faces in Edit Mode and press "
            "a part's Assign button first"
        )
    if config.mode == "direct":
        raise ValueError("Refine re-trains the student: it needs the forward or distill mode")
    config.validate()
    timings: dict[str, float] = {}
    t = time.perf_counter()
    taught = supervised(kept.data, kept.geometry, corrections, config, config.seed, kept.labels)
    progress("student", 0.0)
    device = resolve_device(config.device)
    trained = train_student([taught], len(parts), config, device, progress, start_from=kept.student)
    timings["student"] = time.perf_counter() - t
    extra = {"timings": timings, "predictions": [], "info": trained.info}
    scores = (trained.scores_before[0], trained.scores_after[0])
    result = finish_labels(
        kept.geometry, taught, parts, config, trained.query_probs[0], scores, extra, corrections
    )
    progress("labels", 1.0)
    return result
