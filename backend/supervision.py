"""Known labels as supervision: a user's corrections, and labelled shapes as few-shot examples.

The paper's few-shot setting (Sec. 4.3) adds a cross-entropy on labelled shapes to Eq. 3; a
corrected face is a labelled face, so both use the same term. Known labels act three ways:
- the student learns them with a cross-entropy that the units cannot outvote
  (``labelled_samples``, ``labelled_loss``);
- a unit that contradicts them loses its say everywhere (``contradicted_units``): a view that
  called a table top "leg" where the user said "top" is wrong on the rest of the top too;
- the final labels keep them, and the refinement spreads them (``clamp_to_labels``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .contracts import KnowledgeUnits


def check_labels(labels: np.ndarray, num_polygons: int, num_parts: int, name: str = "") -> None:
    """Raise ValueError when ``labels`` (P,) are not one part index (or -1) per polygon."""
    who = f"{name!r}: " if name else ""
    if labels.shape != (num_polygons,):
        raise ValueError(
            f"{who}{labels.shape[0] if labels.ndim == 1 else labels.shape} known labels for "
            f"{num_polygons} polygons: the mesh changed since they were made"
        )
    if labels.size and (labels.min() < -1 or labels.max() >= num_parts):
        raise ValueError(
            f"{who}known labels must lie in -1..{num_parts - 1}, found "
            f"{labels.min()}..{labels.max()}"
        )


@dataclass
class LabelledSamples:
    """Polygons with a known label, as the student trains on them."""

    polygons: np.ndarray  # (S,) int64 polygon indices (rows of the query features)
    labels: np.ndarray  # (S,) int64 part index
    weights: np.ndarray  # (S,) float32, sum 1: by area, so a large face counts as much as it covers


def labelled_samples(
    labels: np.ndarray, areas: np.ndarray, limit: int, rng: np.random.Generator
) -> LabelledSamples | None:
    """The labelled polygons of one shape, at most ``limit`` of them (drawn by area without
    replacement: an example's 20k labelled faces train like its 2048 sampled points), or None
    when no polygon is labelled. labels (P,) int, -1 = unknown; areas (P,) float."""
    known = np.flatnonzero(labels >= 0)
    if known.size == 0:
        return None
    weight = np.maximum(areas[known].astype(np.float64), 1e-12)
    if known.size > limit:
        chosen = rng.choice(known.size, size=limit, replace=False, p=weight / weight.sum())
        known = np.sort(known[chosen])
        weight = np.ones(known.size)  # drawn by area already
    return LabelledSamples(
        polygons=known.astype(np.int64),
        labels=labels[known].astype(np.int64),
        weights=(weight / weight.sum()).astype(np.float32),
    )


def labelled_loss(
    logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Area-weighted cross-entropy of the student's logits (S, R) at labelled polygons."""
    return (F.cross_entropy(logits, labels, reduction="none") * weights).sum()


def contradicted_units(
    units: KnowledgeUnits, labels: np.ndarray, min_polygons: int, min_agreement: float
) -> np.ndarray:
    """(D,) bool: units that contradict the known labels.

    A unit is contradicted when it covers at least ``min_polygons`` labelled polygons and
    fewer than ``min_agreement`` of them (weighted by the unit's confidence on each) carry the
    unit's part. labels (P,) int, -1 = unknown. None is with ``min_agreement`` 0.
    """
    if min_agreement <= 0:
        return np.zeros(len(units), bool)
    pair_label = labels[units.polygon_index]  # (Q,)
    judged = pair_label >= 0
    unit = units.polygon_unit[judged]
    weight = units.polygon_confidence[judged].astype(np.float64)
    agrees = pair_label[judged] == units.part[unit]
    count = np.bincount(unit, minlength=len(units))
    total = np.bincount(unit, weight, minlength=len(units))
    agreeing = np.bincount(unit, weight * agrees, minlength=len(units))
    share = agreeing / np.maximum(total, 1e-12)
    return (count >= min_polygons) & (share < min_agreement)


def without_units(units: KnowledgeUnits, drop: np.ndarray) -> KnowledgeUnits:
    """``units`` less those where ``drop`` (D,) is True (the polygon pairs renumbered)."""
    if not drop.any():
        return units
    keep = ~drop
    new_index = np.cumsum(keep) - 1
    pairs = keep[units.polygon_unit]
    return KnowledgeUnits(
        probs=units.probs[keep],
        mask=units.mask[keep],
        part=units.part[keep],
        view=units.view[keep],
        polygon_unit=new_index[units.polygon_unit[pairs]],
        polygon_index=units.polygon_index[pairs],
        polygon_confidence=units.polygon_confidence[pairs],
        incidence=None if units.incidence is None else units.incidence[keep],
    )


def clamp_to_labels(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """probs (P, R) with every labelled polygon's row one-hot on its label."""
    known = labels >= 0
    if not known.any():
        return probs
    probs = probs.copy()
    probs[known] = 0.0
    probs[np.flatnonzero(known), labels[known]] = 1.0
    return probs
