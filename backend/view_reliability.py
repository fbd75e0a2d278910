"""How far to believe each view, part by part: a confusion matrix per view (Dawid and Skene).

A vote adds every view's labels. A view whose teacher failed as a whole (one label over the
object, a part missed and taken by its neighbour) then adds its wrong label at full weight on
every point it sees. Dawid-Skene instead estimates, for each view, how often it says part s
where the truth (the current consensus) is part r, and weighs a view's label by how much more
likely it is under one part than under another: a view that says "leg" over the whole table
says "leg" whatever the truth is, so its "leg" moves nothing, while a view that tells legs from
the top keeps its say. The estimate alternates: confusions from the consensus, consensus from
the confusions.
"""

from __future__ import annotations

import numpy as np

from .contracts import KnowledgeUnits
from .rescore import view_votes


def view_label_weights(units: KnowledgeUnits, num_parts: int) -> np.ndarray:
    """(V, N, R) float32: what each view says on each point, as weights over parts summing to 1
    where the view covers the point (0 elsewhere). A view's units of one part count once (their
    maximum confidence); overlapping boxes of different parts split the point's weight."""
    said = view_votes(units, num_parts, np.ones(len(units), np.float32), strongest_only=True)
    total = said.sum(axis=2, keepdims=True)
    return np.where(total > 0, said / np.maximum(total, 1e-12), 0.0).astype(np.float32)


def estimate_confusions(said: np.ndarray, posterior: np.ndarray, smoothing: float) -> np.ndarray:
    """(V, R, R) float64: row r of view v is P(view says s | the point is part r).

    said (V, N, R) from ``view_label_weights``; posterior (N, R) the current belief. Each row
    starts from ``smoothing`` points' worth of a view that is right (the diagonal) and as many
    of one that guesses (uniform), so a part a view hardly sees keeps a trusting row rather
    than a noisy one, and no label is ever impossible under a part.
    """
    counts = np.einsum("nr,vns->vrs", posterior.astype(np.float64), said.astype(np.float64))
    num_parts = posterior.shape[1]
    counts += smoothing * (np.eye(num_parts) + 1.0 / num_parts)[None]
    return counts / counts.sum(axis=2, keepdims=True)


def label_log_likelihood(said: np.ndarray, confusions: np.ndarray) -> np.ndarray:
    """(N, R): sum over views of log P(what the view says | part r)."""
    return np.einsum("vns,vrs->nr", said.astype(np.float64), np.log(confusions))


def view_reliability_posterior(
    units: KnowledgeUnits,
    num_parts: int,
    rounds: int,
    smoothing: float,
    start: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dawid-Skene over the views: posterior (N, R) float32, covered (N,) bool and the views'
    confusions (V, R, R) against that posterior (``estimate_confusions``).

    start (N, R): the first belief (the student's probabilities in backward distillation);
    by default each point's vote shares. Points no view covers keep a uniform row; ``covered``
    marks the others. No part prior enters the posterior: a part's size over the object says
    nothing about what one point is, and a prior would let a large part swallow thin ones.
    """
    said = view_label_weights(units, num_parts)  # (V, N, R)
    covered = said.sum(axis=(0, 2)) > 0
    if start is None:
        votes = said.sum(axis=0)
        posterior = votes / np.maximum(votes.sum(axis=1, keepdims=True), 1e-12)
    else:
        posterior = np.asarray(start, np.float64)
    posterior = np.where(covered[:, None], posterior, 1.0 / num_parts)
    confusions = estimate_confusions(said, posterior, smoothing)
    for _ in range(rounds):
        log_like = label_log_likelihood(said, confusions)
        log_like -= log_like.max(axis=1, keepdims=True)
        posterior = np.exp(log_like)
        posterior /= posterior.sum(axis=1, keepdims=True)
        confusions = estimate_confusions(said, posterior, smoothing)
    return posterior.astype(np.float32), covered, confusions
