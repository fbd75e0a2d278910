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


def confidence_of(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(P,) float32: probs (P, R) at each polygon's label (P,); 0 where the label is -1."""
    picked = probs[np.arange(len(labels)), np.clip(labels, 0, None)]
    return np.where(labels >= 0, picked, 0.0).astype(np.float32)


def group_by_key(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(order, starts) that sort ``key`` (M,) and mark where each run of equal keys begins,
    for ``np.<ufunc>.reduceat(values[order], starts)`` over each group."""
    order = np.argsort(key, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(key[order]) != 0])
    return order, starts


def polygon_votes(
    units: KnowledgeUnits,
    num_polygons: int,
    num_parts: int,
    one_per_view: bool = False,
    unit_weights: np.ndarray | None = None,
) -> np.ndarray:
    """(P, R) float64: the teacher's confidence-weighted votes for each part on each polygon,
    summed over the units (pixel components or boxes) that cover it. With ``one_per_view``,
    a view's units of one part count once on a polygon (their maximum), as in
    ``distill.unit_targets``. ``unit_weights`` (D,) multiply each unit's confidences."""
    votes = np.zeros((num_polygons, num_parts), np.float64)
    if not len(units.polygon_unit):
        return votes
    polygon = units.polygon_index
    part = units.part[units.polygon_unit]
    confidence = units.polygon_confidence.astype(np.float64)
    if unit_weights is not None:
        confidence = confidence * unit_weights[units.polygon_unit]
    if one_per_view:
        view = units.view[units.polygon_unit]
        key = (polygon.astype(np.int64) * (view.max() + 1) + view) * num_parts + part
        order, starts = group_by_key(key)
        confidence = np.maximum.reduceat(confidence[order], starts)
        polygon, part = polygon[order][starts], part[order][starts]
    np.add.at(votes, (polygon, part), confidence)
    return votes


def voted_polygons(units: KnowledgeUnits, num_polygons: int) -> np.ndarray:
    """(P,) bool: the polygons some unit votes on (those a view sees)."""
    voted = np.zeros(num_polygons, bool)
    voted[units.polygon_index[units.polygon_confidence > 0]] = True
    return voted


def fuse_with_votes(
    query_probs: np.ndarray,
    units: KnowledgeUnits,
    prior_mass: float,
    one_per_view: bool = False,
    unit_weights: np.ndarray | None = None,
) -> np.ndarray:
    """The student's polygon probabilities (P, R) blended with the polygons' own votes (P, R).

    The student sees the shape through 2048 points and blurs parts thinner than their spacing
    (table legs, the rim of a cup), while the vote is pixel-exact where views see the polygon
    but noisy and absent elsewhere. Each polygon takes lambda x votes' shares + (1 - lambda) x
    student, lambda = m / (m + prior_mass) with m its vote mass (about 0.7 a view that sees
    it): unseen polygons keep the student, well-seen ones lean on the views. Measured on the
    robustness benchmark (13 profiles, 10 shapes, after refinement): prior_mass 1 / 2 / 4 gave
    45.5 / 46.3 / 46.2 mIoU, the student alone 44.9, direct 37.2.
    """
    votes = polygon_votes(units, len(query_probs), query_probs.shape[1], one_per_view, unit_weights)
    mass = votes.sum(axis=1, keepdims=True)
    shares = votes / np.maximum(mass, 1e-12)
    weight = mass / (mass + prior_mass)
    return ((1.0 - weight) * query_probs + weight * shares).astype(np.float32)


def direct_vote(
    units: KnowledgeUnits, num_polygons: int, num_parts: int
) -> tuple[np.ndarray, np.ndarray]:
    """The no-student baseline: each polygon takes the confidence-weighted vote of its units.

    This is the PointCLIPv2-style transfer the paper improves on. A polygon no unit covers stays
    -1 with confidence 0; the confidence of a voted polygon is its winning share of the votes.
    """
    votes = polygon_votes(units, num_polygons, num_parts)
    total = votes.sum(axis=1)
    voted = total > 0
    labels = np.where(voted, votes.argmax(axis=1), -1).astype(np.int32)
    confidence = np.where(voted, votes.max(axis=1) / np.maximum(total, 1e-12), 0.0)
    return labels, confidence.astype(np.float32)
