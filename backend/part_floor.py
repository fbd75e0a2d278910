"""Keep the refinement from eroding parts away.

The diffusion and the CRF move each polygon towards the label around it, so a part that is
small or thin, or that the views give a weak majority, shrinks and can vanish, which costs
mean IoU a whole part. Here the CRF's unaries get a per-part bias, raised for each part whose
area (over the polygons some view sees) fell below ``floor`` x its area in the evidence
(the student blended with the votes), until it is back at that share. The evidence decides
which parts exist and roughly how large they are; the smoothing decides where their
boundaries lie. A part that is only scattered islands in the evidence gets no floor: those
are speckle, which the smoothing is right to remove.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components


def area_shares(labels: np.ndarray, areas: np.ndarray, num_parts: int, where: np.ndarray):
    """(R,) float64: each part's share of the total area of the polygons ``where`` (P,) bool,
    from labels (P,) in [0, R) and areas (P,)."""
    share = np.bincount(labels[where], weights=areas[where], minlength=num_parts)[:num_parts]
    return share / max(float(share.sum()), 1e-30)


def parts_with_a_region(
    labels: np.ndarray,
    areas: np.ndarray,
    first: np.ndarray,
    second: np.ndarray,
    num_parts: int,
    min_share: float,
) -> np.ndarray:
    """(R,) bool: the parts with at least one connected region (across the shared edges
    first (E,), second (E,)) of ``min_share`` of the total area or more. A part that is only
    scattered polygons is a view's speckle or a hallucination, not a part to keep."""
    p = len(labels)
    same = labels[first] == labels[second]
    graph = sparse.coo_matrix((np.ones(int(same.sum())), (first[same], second[same])), shape=(p, p))
    _, region = connected_components(graph, directed=False)
    region_area = np.bincount(region, weights=areas)
    largest = np.zeros(num_parts)
    np.maximum.at(largest, labels, region_area[region])
    return largest >= min_share * float(areas.sum())


def solve_with_floor(
    probs: np.ndarray,
    solve: Callable[[np.ndarray], np.ndarray],
    target: np.ndarray,
    areas: np.ndarray,
    where: np.ndarray,
    floor: float,
    rounds: int,
) -> np.ndarray:
    """``solve(probs)`` (P, R) -> (P, R) marginals, with the unaries' bias of each part raised
    until its area share over ``where`` is at least ``floor`` x ``target`` (R,), at most
    ``rounds`` times (the k-th raise at most a factor e^(2^-k)). Returns the last marginals."""
    bias = np.zeros(probs.shape[1])
    marginals = solve(probs)
    for round_ in range(rounds):
        share = area_shares(marginals.argmax(axis=1), areas, probs.shape[1], where)
        low = share < floor * target
        if not low.any():
            break
        # Halving steps: a raised part can overshoot and starve another, which is raised in
        # turn; shrinking steps settle between the two instead of swinging back and forth.
        step = np.clip(np.log(floor * target[low] / np.maximum(share[low], 1e-3)), 0, 1)
        bias[low] += step * 0.5**round_
        biased = probs * np.exp(bias)
        marginals = solve((biased / biased.sum(axis=1, keepdims=True)).astype(np.float32))
    return marginals
