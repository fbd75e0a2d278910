"""Part labels and confidences for every polygon."""

from __future__ import annotations

import numpy as np

from .contracts import KnowledgeUnits


def label_polygons(query_probs: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Student probabilities at polygon centroids (P, R) -> labels (P,) int32, confidence (P,).

    Polygons that no longer exist in the evaluated mesh (``present`` False) get -1 and 0.
    """
    labels = np.where(present, query_probs.argmax(axis=1), -1).astype(np.int32)
    confidence = np.where(present, query_probs.max(axis=1), 0.0).astype(np.float32)
    return labels, confidence


def direct_vote(
    units: KnowledgeUnits, num_polygons: int, num_parts: int
) -> tuple[np.ndarray, np.ndarray]:
    """The no-student baseline: each polygon takes the confidence-weighted vote of its units.

    This is the PointCLIPv2-style transfer the paper improves on. A polygon no unit covers stays
    -1 with confidence 0; the confidence of a voted polygon is its winning share of the votes.
    """
    votes = np.zeros((num_polygons, num_parts), np.float64)
    if len(units.polygon_unit):
        np.add.at(
            votes,
            (units.polygon_index, units.part[units.polygon_unit]),
            units.polygon_confidence,
        )
    total = votes.sum(axis=1)
    voted = total > 0
    labels = np.where(voted, votes.argmax(axis=1), -1).astype(np.int32)
    confidence = np.where(voted, votes.max(axis=1) / np.maximum(total, 1e-12), 0.0)
    return labels, confidence.astype(np.float32)
