"""Evaluation: area-weighted part IoU on meshes."""

from __future__ import annotations

import numpy as np


def part_iou(
    predicted: np.ndarray, truth: np.ndarray, areas: np.ndarray, num_parts: int
) -> np.ndarray:
    """Area-weighted IoU of each part (R,), NaN for parts in neither prediction nor truth.

    predicted, truth (P,) int part per polygon (-1 = none); areas (P,) polygon areas. Polygons
    with no ground truth are left out; an unlabelled prediction counts as wrong.
    """
    judged = truth >= 0
    p, t, a = predicted[judged], truth[judged], areas[judged]
    ious = np.full(num_parts, np.nan)
    for r in range(num_parts):
        union = a[(p == r) | (t == r)].sum()
        if union > 0:
            ious[r] = a[(p == r) & (t == r)].sum() / union
    return ious


def mean_part_iou(predicted, truth, areas, num_parts: int) -> float:
    """Mean over the parts present in the prediction or the ground truth, in [0, 1]."""
    return float(np.nanmean(part_iou(predicted, truth, areas, num_parts)))
