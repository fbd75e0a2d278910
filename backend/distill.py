"""Forward and backward distillation (paper Sec. 3.2-3.4, Eq. 3-4).

Forward: the student is trained on the knowledge units with the masked, confidence-weighted,
class-balanced cross-entropy. Backward: once the moving average of the epoch loss settles
(change < tau), every unit is re-scored by its agreement with the student (Eq. 4) and training
continues with the new scores in place of the teacher's confidences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from scipy.spatial import cKDTree

from .config import PartDistillConfig
from .contracts import KnowledgeUnits, ProgressFn
from .labels import group_by_key
from .rescore import consensus_scores
from .student import Student, knn_indices
from .supervision import LabelledSamples, labelled_loss
from .view_reliability import view_reliability_posterior


@dataclass
class StudentData:
    """One shape as the student sees it."""

    points: np.ndarray  # (N, 3) float32
    normals: np.ndarray  # (N, 3) float32
    units: KnowledgeUnits  # D units over the N points
    query_points: np.ndarray  # (P, 3) polygon centroids, where labels are read
    query_normals: np.ndarray  # (P, 3)
    query_present: np.ndarray  # (P,) bool
    point_features: np.ndarray | None = None  # (N, E) float32
    query_features: np.ndarray | None = None  # (P, E) float32
    point_polygons: np.ndarray | None = None  # (N,) int64 the polygon each point lies on
    labelled: LabelledSamples | None = None  # known labels: corrections, or an example's


@dataclass
class TrainedStudent:
    query_probs: list[np.ndarray]  # per shape (P, R) float32
    point_probs: list[np.ndarray]  # per shape (N, R) float32
    scores_before: list[np.ndarray]  # per shape (D,) mean teacher confidence of each unit
    scores_after: list[np.ndarray | None]  # per shape (D,) Eq. 4 scores, None without backward
    info: dict = field(default_factory=dict)
    state: dict | None = None  # the student's weights (CPU tensors), to start a Refine from


def class_weights(units: list[KnowledgeUnits], num_parts: int, config: PartDistillConfig):
    """Class-balance weights (R,) from how often each part is taught, as the official code does.

    w = inverse part frequency over covered points; weight = log_b(w) + 1 clipped to [1, max],
    with b = config.class_weight_base.
    """
    counts = np.zeros(num_parts)
    for u in units:
        np.add.at(counts, u.part, u.mask.sum(axis=1))
    total = counts.sum()
    if total == 0:
        return np.ones(num_parts, np.float32)
    frequency = np.where(counts > 0, counts / total, 1.0 / total)
    weights = np.log(1.0 / frequency) / np.log(config.class_weight_base) + 1.0
    return np.clip(weights, 1.0, config.class_weight_max).astype(np.float32)


def unit_targets(
    units: KnowledgeUnits,
    num_parts: int,
    scores: np.ndarray | None = None,
    unit_weights: np.ndarray | None = None,
    one_per_view: bool = False,
):
    """Per-point target weights of Eq. 3, summed over the units that cover each point.

    targets (N, R): sum over units d covering point n of C^d_n on the unit's part; C^d_n is the
    teacher's confidence, or the unit's backward-distillation score when ``scores`` (D,) is given,
    times ``unit_weights`` (D,) when given and the unit's incidence weights when it has them.
    coverage (N,): the number of units covering each point.

    With ``one_per_view`` the units of one view and part count once per point (their maximum):
    a view is one opinion, however many overlapping boxes of a part it returns. Pixel units of
    one view are disjoint, so for them nothing changes.
    """
    mask = units.mask  # (D, N)
    confidence = units.confidence if scores is None else mask * scores[:, None]
    if unit_weights is not None:
        confidence = confidence * unit_weights[:, None]
    if units.incidence is not None:
        confidence = confidence * units.incidence
    part = units.part
    if one_per_view and len(part):
        confidence, mask, part = _one_per_view(confidence, mask, units.view, part, num_parts)
    onehot = np.eye(num_parts, dtype=np.float32)[part]  # (D, R)
    targets = np.einsum("dn,dr->nr", confidence.astype(np.float32), onehot)
    return targets.astype(np.float32), mask.sum(axis=0).astype(np.float32)


def _one_per_view(confidence, mask, view, part, num_parts):
    """Units (D, N) grouped by (view, part): the maximum confidence and the union of masks."""
    key = view.astype(np.int64) * num_parts + part
    order, starts = group_by_key(key)
    grouped = np.maximum.reduceat(confidence[order], starts, axis=0)
    covered = np.logical_or.reduceat(mask[order], starts, axis=0)
    return grouped, covered, part[order][starts]


def distillation_loss(
    log_probs: torch.Tensor,
    targets: torch.Tensor,
    coverage: torch.Tensor,
    weights: torch.Tensor,
) -> torch.Tensor:
    """Masked, confidence-weighted, class-balanced cross-entropy (Eq. 3, official normalisation).

    log_probs (N, R) student log-probabilities; targets (N, R) and coverage (N,) from
    ``unit_targets``; weights (R,) class weights. Each point's sum over its units is divided by
    the number of units covering it; the loss is the mean over covered points. This is the
    official code's normalisation, not Eq. 3 as printed (each unit's sum divided by its size
    |M^d|), which weighs a point by how small its units are: measured worse under other
    teachers (55.4 against 59.1 mIoU in the robustness issue's runs).
    """
    covered = coverage > 0
    if not bool(covered.any()):
        return log_probs.sum() * 0.0
    per_point = -(targets * weights * log_probs).sum(dim=1)
    return (per_point[covered] / coverage[covered]).mean()


def backward_rescore(units: KnowledgeUnits, student_parts: np.ndarray) -> np.ndarray:
    """Eq. 4: the fraction of each unit's points where the student agrees with the unit's part.

    student_parts (N,) argmax of the student -> (D,) float32 scores in [0, 1] (0 for a unit that
    covers no point).
    """
    agree = (student_parts[None, :] == units.part[:, None]) & units.mask
    size = units.mask.sum(axis=1)
    return np.where(size > 0, agree.sum(axis=1) / np.maximum(size, 1), 0.0).astype(np.float32)


def mean_unit_confidence(units: KnowledgeUnits) -> np.ndarray:
    """(D,) the teacher's mean confidence over each unit's points (0 for an empty unit)."""
    size = units.mask.sum(axis=1)
    return (units.confidence.sum(axis=1) / np.maximum(size, 1)).astype(np.float32)


def _backward_scores(shape, student_parts, config) -> np.ndarray:
    """(D,) the scores backward distillation gives the units (config.backward_scores)."""
    agreement = backward_rescore(shape.data.units, student_parts)
    if config.backward_scores == "eq4":
        return agreement
    if config.backward_scores == "consensus":
        return shape.consensus
    return np.sqrt(agreement * shape.consensus).astype(np.float32)


def backward_due(epoch_losses: list[float], config: PartDistillConfig) -> bool:
    """The moving-average rule of Sec. 3.3 (after at least ``backward_min_epochs`` epochs).

    If it never fires, backward distillation still runs with ``backward_min_epochs`` epochs
    left, so the re-scored knowledge is always learnt from.
    """
    epoch = len(epoch_losses)
    if epoch < config.backward_min_epochs:
        return False
    if epoch >= config.epochs - config.backward_min_epochs:
        return True
    w = config.loss_average_window
    if epoch < w + 1:
        return False
    now = float(np.mean(epoch_losses[-w:]))
    before = float(np.mean(epoch_losses[-w - 1 : -1]))
    return abs(now - before) < config.tau


class _Shape:
    """Tensors of one shape on the training device."""

    def __init__(self, data: StudentData, num_parts: int, config, device):
        self.data = data
        self.features = torch.from_numpy(data.point_features).to(device)
        self.query_features = torch.from_numpy(data.query_features).to(device)
        self.num_parts = num_parts
        self.device = device
        self.consensus = None
        if config.backward_scores != "eq4" or config.consensus_forward:
            self.consensus = consensus_scores(
                data.units, num_parts, config.consensus_rounds, config.consensus_prior
            )
        self.unit_weights = data.units.trust  # (D,) or None
        if config.consensus_forward:
            trust = 1.0 if self.unit_weights is None else self.unit_weights
            self.unit_weights = self.consensus * trust
        self.one_per_view = config.one_vote_per_view
        self.config = config
        self.set_scores(None)
        self.labelled = data.labelled
        if data.labelled is not None:
            self.labelled_index = torch.from_numpy(data.labelled.polygons).to(device)
            self.labelled_features = self.query_features[self.labelled_index]
            self.labelled_labels = torch.from_numpy(data.labelled.labels).to(device)
            self.labelled_weights = torch.from_numpy(data.labelled.weights).to(device)
        self.neighbours = self.query_index = self.query_weight = None
        if config.encoder == "edgeconv":
            pts = torch.from_numpy(data.points).to(device)
            self.neighbours = knn_indices(pts, config.knn)
            tree = cKDTree(data.points)
            dist, idx = tree.query(data.query_points, k=3)
            w = 1.0 / np.maximum(dist, 1e-9)
            self.query_index = torch.from_numpy(idx).to(device)
            self.query_weight = torch.from_numpy(w / w.sum(1, keepdims=True)).float().to(device)

    def set_scores(self, scores, start=None):
        """Targets from the units' scores (None: the teacher's confidences, before backward
        distillation), with config.view_reliability blended with those read through the views'
        confusions (start: the student's (N, R) probabilities, where backward distillation
        re-estimates them) by config.reliability_weight (reliability_backward_weight)."""
        targets, coverage = unit_targets(
            self.data.units, self.num_parts, scores, self.unit_weights, self.one_per_view
        )
        config = self.config
        backward = scores is not None
        weight = self.reliability_weight(backward)
        if weight > 0 and len(self.data.units):
            rounds = config.reliability_backward_rounds if backward else config.reliability_rounds
            posterior, covered, _ = view_reliability_posterior(
                self.data.units, self.num_parts, rounds, config.reliability_smoothing, start,
            )  # fmt: skip
            # The vote's targets per point (their mean over its units) beside the posterior.
            votes = targets / np.maximum(coverage, 1)[:, None]
            targets = (weight * posterior + (1 - weight) * votes) * covered[:, None]
            coverage = covered.astype(np.float32)
        self.targets = torch.from_numpy(targets.astype(np.float32)).to(self.device)
        self.coverage = torch.from_numpy(coverage).to(self.device)

    def reliability_weight(self, backward: bool) -> float:
        """Share of the views' confusions in the targets before / in backward distillation."""
        if not self.config.view_reliability:
            return 0.0
        if backward:
            return self.config.reliability_backward_weight
        return self.config.reliability_weight


def _point_logits(student: Student, shape: _Shape) -> torch.Tensor:
    return student.point_logits(shape.features, shape.neighbours)  # (N, R)


def _query_logits(student: Student, shape: _Shape) -> torch.Tensor:
    # (P, R) at the shape's polygon centroids
    return student.query_logits(
        shape.query_features, shape.features, shape.neighbours, shape.query_index,
        shape.query_weight,
    )  # fmt: skip


def _rescore_units(student: Student, shapes: list[_Shape], scores_after: list, config) -> None:
    """Backward distillation's step: every shape's units re-scored by their agreement with
    the student (Eq. 4, config.backward_scores), in ``scores_after``, and its targets anew."""
    with torch.no_grad():
        for i, s in enumerate(shapes):
            if not len(s.data.units):  # an example: nothing to re-score
                continue
            logits = _point_logits(student, s)
            parts = logits.argmax(dim=1).cpu().numpy()
            scores_after[i] = _backward_scores(s, parts, config)
            s.unit_weights = None  # the new scores take the consensus into account
            rereads = s.reliability_weight(backward=True) > 0
            start = _probabilities(logits) if rereads else None
            s.set_scores(scores_after[i], start)


def _labelled_logits(student: Student, shape: _Shape) -> torch.Tensor:
    """(S, R) at the shape's labelled polygons."""
    index = shape.labelled_index
    near = None if shape.query_index is None else shape.query_index[index]
    weight = None if shape.query_weight is None else shape.query_weight[index]
    return student.query_logits(shape.labelled_features, shape.features, shape.neighbours,
                                near, weight)  # fmt: skip


def _shape_loss(student: Student, shape: _Shape, weights: torch.Tensor, config) -> torch.Tensor:
    """Eq. 3 on the shape's units, plus the cross-entropy on its known labels."""
    log_probs = F.log_softmax(_point_logits(student, shape), dim=1)
    loss = distillation_loss(log_probs, shape.targets, shape.coverage, weights)
    if shape.labelled is not None:
        logits = _labelled_logits(student, shape)
        labelled = labelled_loss(logits, shape.labelled_labels, shape.labelled_weights)
        loss = loss + config.label_loss_weight * labelled
    return loss


def _probabilities(logits: torch.Tensor) -> np.ndarray:
    return F.softmax(logits, 1).float().cpu().numpy()


def train_student(
    data: list[StudentData],
    num_parts: int,
    config: PartDistillConfig,
    device: torch.device,
    progress: ProgressFn | None = None,
    start_from: dict | None = None,
) -> TrainedStudent:
    """Align one student to the knowledge of one shape (TTA) or of several (pre-alignment).

    Shapes with known labels (``StudentData.labelled``) add their cross-entropy, weighted by
    ``config.label_loss_weight``; an example shape has labels and no units. ``start_from``
    (``TrainedStudent.state`` of an earlier run on the same shapes) makes this a Refine: the
    student goes on from those weights for ``config.refine_epochs`` epochs, with the units
    re-scored by backward distillation against the kept student before it learns the labels
    (``config.refine_rescore`` "start") or half-way, against the student that has ("midway").
    """
    progress = progress or (lambda stage, fraction: None)
    torch.manual_seed(config.seed)
    shapes = [_Shape(d, num_parts, config, device) for d in data]
    balance = config.class_balance == "always" or (
        config.class_balance == "collection" and len(data) > 1
    )
    weights = torch.ones(num_parts)
    if balance:
        weights = torch.from_numpy(class_weights([d.units for d in data], num_parts, config))
    weights = weights.to(device)
    student = Student(
        shapes[0].features.shape[1], num_parts, config.encoder == "edgeconv",
        config.head_hidden, config.head_layers,
    ).to(device)  # fmt: skip
    epochs = config.epochs
    if start_from is not None:
        student.load_state_dict(start_from)
        epochs = config.refine_epochs
    optimiser = torch.optim.Adam(
        student.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    total_steps = epochs * config.steps_per_epoch
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser,
        lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps)),
    )
    batch = max(1, min(config.collection_batch_size, len(shapes)))
    epoch_losses: list[float] = []
    backward_epoch = None
    scores_after: list = [None] * len(shapes)
    if start_from is not None and config.mode == "distill" and config.refine_rescore == "start":
        # A Refine re-scores the units against the kept student, before it learns the labels.
        backward_epoch = 0
        _rescore_units(student, shapes, scores_after, config)
    step = 0
    for epoch in range(epochs):
        losses = []
        for _ in range(config.steps_per_epoch):
            chosen = [shapes[(step * batch + i) % len(shapes)] for i in range(batch)]
            loss = sum(_shape_loss(student, s, weights, config) for s in chosen) / len(chosen)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            losses.append(float(loss.detach()))
            step += 1
        epoch_losses.append(float(np.mean(losses)))
        progress("student", (epoch + 1) / epochs)
        if start_from is not None:
            due = config.refine_rescore == "midway" and epoch + 1 == max(1, epochs // 2)
        else:
            due = backward_due(epoch_losses, config)
        if config.mode == "distill" and backward_epoch is None and due:
            backward_epoch = epoch + 1
            _rescore_units(student, shapes, scores_after, config)

    with torch.no_grad():
        query_probs = [_probabilities(_query_logits(student, s)) for s in shapes]
        point_probs = [_probabilities(_point_logits(student, s)) for s in shapes]
    return TrainedStudent(
        query_probs=query_probs,
        point_probs=point_probs,
        scores_before=[mean_unit_confidence(d.units) for d in data],
        scores_after=scores_after,
        info={"epoch_losses": epoch_losses, "backward_epoch": backward_epoch},
        state={k: v.detach().cpu().clone() for k, v in student.state_dict().items()},
    )
