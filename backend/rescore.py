"""Scoring knowledge units by what the other views say about the same points.

Eq. 4 scores a unit by the student's agreement with it; the student was trained on that very
unit, so a unit that is wrong over a whole view keeps part of its weight, while a small right
unit that the student was outvoted on loses it. Here a unit is compared with the vote of the
*other* views on its points (leave-one-view-out), so a view cannot vouch for itself, and the
scores are refined a few times, each vote weighted by the scores of the round before (a
truth-discovery iteration): a view that is wrong everywhere loses its say on every point.
"""

from __future__ import annotations

import numpy as np

from .contracts import KnowledgeUnits


def view_votes(
    units: KnowledgeUnits, num_parts: int, scores: np.ndarray, strongest_only: bool = False
) -> np.ndarray:
    """(V, N, R) each view's vote on each point: sum of its units' score x confidence, or with
    ``strongest_only`` the largest of them (a view's overlapping units of one part count once)."""
    num_views = int(units.view.max()) + 1 if len(units) else 0
    weight = units.confidence * scores[:, None]  # (D, N)
    votes = np.zeros((num_views, units.mask.shape[1], num_parts), np.float32)
    for d in range(len(units)):  # D is small (tens to a few hundred units)
        row = votes[units.view[d], :, units.part[d]]  # a view into votes
        if strongest_only:
            np.maximum(row, weight[d], out=row)
        else:
            row += weight[d]
    return votes


def cross_view_agreement(
    units: KnowledgeUnits, num_parts: int, scores: np.ndarray, prior: float
) -> np.ndarray:
    """(D,) in [0, 1]: the mean share of the other views' vote that each unit's part gets on
    its points. Points no other view covers count as ``prior``."""
    votes = view_votes(units, num_parts, scores)
    total = votes.sum(axis=0)  # (N, R)
    agreement = np.zeros(len(units), np.float32)
    for d in range(len(units)):
        covered = units.mask[d]
        others = total[covered] - votes[units.view[d]][covered]  # (n, R)
        mass = others.sum(axis=1)
        share = np.where(mass > 1e-6, others[:, units.part[d]] / np.maximum(mass, 1e-6), prior)
        agreement[d] = share.mean() if share.size else 0.0
    return agreement


def consensus_scores(
    units: KnowledgeUnits, num_parts: int, rounds: int, prior: float
) -> np.ndarray:
    """(D,) unit scores after ``rounds`` of leave-one-view-out agreement, starting from 1."""
    scores = np.ones(len(units), np.float32)
    for _ in range(rounds):
        scores = cross_view_agreement(units, num_parts, scores, prior)
    return scores


def whole_view_weights(
    units: KnowledgeUnits, start: float, floor: float, gap: float = 0.0
) -> np.ndarray:
    """(D,) float32 in [floor, 1]: less trust in a unit the more of its view's points it takes.

    A 2D teacher that fails on a view tends to give the whole object one label (the prompt
    that wins one patch wins them all), and a missed part is absorbed by its neighbour: such a
    unit covers most of what its view sees. An object of several parts rarely shows only one,
    so a unit's weight falls linearly from 1 at ``start`` of its view's covered points to
    ``floor`` at all of them.

    With ``gap`` > 0 only a unit that takes at least ``gap`` more of its view than its part's
    units do in the median view is trusted less: a part that fills every view (a cup's body,
    whose box holds the handle too) is what the object mostly is, not a failed view.
    """
    if not len(units):
        return np.ones(0, np.float32)
    num_views = int(units.view.max()) + 1
    size = units.mask.sum(axis=1).astype(np.float64)
    seen = np.zeros((num_views, units.mask.shape[1]), bool)
    np.logical_or.at(seen, units.view, units.mask)
    share = size / np.maximum(seen.sum(axis=1)[units.view], 1)
    excess = np.clip((share - start) / max(1.0 - start, 1e-6), 0.0, 1.0)
    if gap > 0:
        typical = np.zeros(int(units.part.max()) + 1)
        for r in np.unique(units.part):  # parts, not points: a short loop
            typical[r] = np.median(share[units.part == r])
        excess = np.where(share - typical[units.part] >= gap, excess, 0.0)
    return (1.0 - (1.0 - floor) * excess).astype(np.float32)


def prior_trust(units: KnowledgeUnits, kind: str, config) -> np.ndarray | None:
    """(D,) weights of a teacher's units before any scoring, None when all 1: the whole-view
    discount of the teacher ``kind`` (config.whole_view_* for pixels, box_whole_view_*)."""
    if kind == "box":
        start, floor = config.box_whole_view_start, config.box_whole_view_floor
        gap = config.box_whole_view_gap
    else:
        start, floor, gap = config.whole_view_start, config.whole_view_floor, 0.0
    if start >= 1.0 or not len(units):
        return None
    return whole_view_weights(units, start, floor, gap)
