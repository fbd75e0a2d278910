"""Per-view confusions (Dawid-Skene) on units whose right answer is known."""

import numpy as np
from partdistill.backend.contracts import KnowledgeUnits
from partdistill.backend.view_reliability import (
    estimate_confusions,
    view_label_weights,
    view_reliability_posterior,
)

N = 200  # points 0-159 are part 0 ("top"), 160-199 part 1 ("leg")
TRUTH = np.r_[np.zeros(160, np.int64), np.ones(40, np.int64)]


def _units(views: list[np.ndarray], confidence: float = 0.9) -> KnowledgeUnits:
    """One unit per (view, part) from per-view point labels (-1 = not seen by that view).
    Each point is also its own polygon, so polygon votes mirror the point labels."""
    probs, masks, parts, unit_views = [], [], [], []
    for v, said in enumerate(views):
        for r in (0, 1):
            mask = said == r
            if not mask.any():
                continue
            p = np.zeros((N, 2), np.float32)
            p[mask, r] = confidence
            p[mask, 1 - r] = 1 - confidence
            probs.append(p)
            masks.append(mask)
            parts.append(r)
            unit_views.append(v)
    mask = np.stack(masks)
    unit, point = np.nonzero(mask)
    return KnowledgeUnits(
        probs=np.stack(probs), mask=mask, part=np.array(parts), view=np.array(unit_views),
        polygon_unit=unit.astype(np.int64), polygon_index=point.astype(np.int64),
        polygon_confidence=np.full(len(unit), confidence, np.float32),
    )  # fmt: skip


def _whole_view_failures():
    """Two views that say "leg" over everything they see, two that are right: on the top the
    vote is a tie, two against two."""
    wrong = np.ones(N, np.int64)
    right = TRUTH.copy()
    return _units([wrong, wrong, right, right])


def test_a_view_that_says_one_part_everywhere_moves_nothing():
    units = _whole_view_failures()
    votes = view_label_weights(units, 2).sum(axis=0)
    top = TRUTH == 0
    assert np.allclose(votes[top, 0], votes[top, 1]), "the plain vote is a tie on the top"
    posterior, covered, confusions = view_reliability_posterior(units, 2, rounds=3, smoothing=10)
    assert covered.all()
    assert (posterior.argmax(axis=1) == TRUTH).all()
    # The failed views say "leg" as often on the top as on the legs: their rows are alike.
    assert abs(confusions[0, 0, 1] - confusions[0, 1, 1]) < 0.1
    # The right views tell the parts apart: each label is likelier under its own part.
    assert confusions[2, 0, 0] > 2 * confusions[2, 1, 0]
    assert confusions[2, 1, 1] > 2 * confusions[2, 0, 1]


def test_agreeing_views_keep_the_vote():
    # Every view right but for a different scatter of 10 % of the points: the answer is the
    # vote's, and Dawid-Skene must not drift from it.
    rng = np.random.default_rng(0)
    views = []
    for _ in range(5):
        said = TRUTH.copy()
        flip = rng.random(N) < 0.1
        said[flip] = 1 - said[flip]
        views.append(said)
    units = _units(views)
    posterior, _, confusions = view_reliability_posterior(units, 2, rounds=10, smoothing=10)
    votes = view_label_weights(units, 2).sum(axis=0).argmax(axis=1)
    assert (votes == TRUTH).mean() > 0.95
    assert (posterior.argmax(axis=1) == TRUTH).mean() >= (votes == TRUTH).mean()
    assert (np.diagonal(confusions, axis1=1, axis2=2) > 0.75).all()


def test_unseen_points_stay_uniform_and_no_label_is_impossible():
    said = TRUTH.copy()
    said[:10] = -1  # no view sees points 0-9
    units = _units([said, said])
    posterior, covered, confusions = view_reliability_posterior(units, 2, rounds=2, smoothing=5)
    assert not covered[:10].any() and covered[10:].all()
    assert np.allclose(posterior[:10], 0.5)
    assert (confusions > 0).all(), "smoothing keeps every label possible under every part"
    rows = estimate_confusions(view_label_weights(units, 2), posterior, smoothing=5)
    assert np.allclose(rows.sum(axis=2), 1.0)
