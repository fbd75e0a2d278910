"""From views and geometry to a part label on every polygon: the whole compute half in one call.

segment(geometry, views, teacher, parts, config)            one object (test-time alignment)
segment_collection(objects, teacher, parts, config)         one student over several objects,
                                                            or with few-shot ``examples``
Known labels (``ObjectInput.labels``: corrections) supervise the student beside the teacher
(``supervision.py``); ``keep`` collects what Refine needs (``relearn.py``).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from .config import PartDistillConfig
from .contracts import (
    KnowledgeUnits,
    MeshGeometry,
    ObjectInfo,
    ObjectInput,
    ProgressFn,
    Segmentation,
    View,
)
from .device import resolve_device
from .distill import StudentData, train_student
from .example_transfer import example_units, joined_units
from .features import compute_point_features
from .kept_runs import KeptRun
from .knowledge import extract_knowledge_units
from .labels import (
    confidence_of,
    direct_vote,
    fuse_with_votes,
    label_polygons,
    voted_polygons,
)
from .refine import crease_pieces, refine_probabilities, split_by
from .sampling import polygon_areas, polygon_centroids, sample_surface_points
from .spectral_segments import polygon_clusters
from .supervision import (
    check_labels,
    clamp_to_labels,
    labelled_samples,
    spread_corrections,
    units_without_contradiction,
)


def _no_progress(stage: str, fraction: float) -> None:
    pass


def run_teacher(teacher, views: list[View], info: ObjectInfo) -> list:
    """Bind the teacher to the object (when it wants to know it) and predict every view."""
    if hasattr(teacher, "bind"):
        teacher.bind(info)
    predictions = teacher.predict(views)
    if len(predictions) != len(views):
        raise RuntimeError(
            f"the teacher returned {len(predictions)} predictions for {len(views)} views"
        )
    return predictions


def segment(
    geometry: MeshGeometry,
    views: list[View],
    teacher,
    parts: list[str],
    config: PartDistillConfig,
    info: ObjectInfo | None = None,
    progress: ProgressFn | None = None,
) -> Segmentation:
    """Segment one object. Returns labels for all ``geometry.num_polygons`` polygons."""
    obj = ObjectInput(geometry, views, info or ObjectInfo())
    return _segment_each([obj], teacher, parts, config, progress)[0]


def segment_collection(
    objects: list[ObjectInput],
    teacher,
    parts: list[str],
    config: PartDistillConfig,
    progress: ProgressFn | None = None,
    examples: list[ObjectInput] = (),
    keep: list[KeptRun] | None = None,
) -> list[Segmentation]:
    """Segment several objects that share the part names.

    With ``config.collection`` one student is aligned over all of them (pre-alignment, paper
    Sec. 3.4); otherwise each gets its own (test-time alignment). ``examples``, objects whose
    ``labels`` label every polygon, join the one student with a cross-entropy on their labels
    (the paper's few-shot setting, Sec. 4.3); they get no result. When ``keep`` is a list,
    each object's KeptRun is appended to it.
    """
    examples = list(examples)
    joint = config.collection and len(objects) > 1
    lent = None
    if examples and config.few_shot == "transfer":  # examples lend units to each object
        lent = [(e.geometry, np.asarray(e.labels)) for e in examples]
        examples = []
    if config.mode == "direct" or not (joint or examples):
        return _segment_each(objects, teacher, parts, config, progress, keep, lent)
    return _segment_jointly(objects, teacher, parts, config, progress, examples, keep, lent)


def _prepare(obj: ObjectInput, teacher, parts, config, progress, rng, shared: bool, lent=None):
    """(StudentData, extra) of one object: teacher, knowledge units, points and features.

    An object without views (an example) gets no teacher pass and no units. ``shared``: the
    features must share one space with other shapes (no per-shape spectral embedding).
    ``lent``: (geometry, labels) of few-shot examples that lend units (example_transfer.py).
    """
    timings = {}
    obj.geometry.validate()
    if obj.labels is not None:
        check_labels(obj.labels, obj.geometry.num_polygons, len(parts), obj.info.name)
    predictions = []
    if obj.views:
        t = time.perf_counter()
        progress("teacher", 0.0)
        predictions = run_teacher(teacher, obj.views, obj.info)
        timings["teacher"] = time.perf_counter() - t

    t = time.perf_counter()
    progress("knowledge", 0.0)
    points, normals, point_polygons = sample_surface_points(obj.geometry, config.num_points, rng)
    centroids, polygon_normals, present = polygon_centroids(obj.geometry)
    if obj.views:
        units = extract_knowledge_units(
            predictions,
            obj.views,
            teacher.kind,
            points,
            point_polygons,
            len(parts),
            config,
            planes=(centroids, polygon_normals),
            normals=normals,
        )
    else:
        units = KnowledgeUnits.empty(len(points), len(parts))  # an example: labels teach
    if lent:
        units = joined_units(units, example_units(
            lent, units, points, centroids, len(parts), config.example_confidence,
            config.example_fit_steps, config.example_reach,
        ))  # fmt: skip
    timings["knowledge"] = time.perf_counter() - t

    data = StudentData(
        points=points,
        normals=normals,
        units=units,
        query_points=centroids,
        query_normals=polygon_normals,
        query_present=present,
        point_polygons=point_polygons,
    )
    if config.mode != "direct":
        t = time.perf_counter()
        progress("features", 0.0)
        # Laplacian eigenvectors differ in sign and order between shapes: per shape only.
        spectral = 0 if shared else None
        data.point_features, data.query_features = compute_point_features(
            points, normals, centroids, polygon_normals, config, spectral_dims=spectral
        )
        timings["features"] = time.perf_counter() - t
    return data, {"timings": timings, "predictions": predictions}


def correction_segments(geometry: MeshGeometry, data: StudentData, config) -> np.ndarray:
    """(P,) the surface segments a correction spreads within: the spectral clusters of the
    points (they end at joints) cut at creases, as the refinement's (refine.py)."""
    pieces = crease_pieces(geometry, config.refine_crease_deg)
    clusters = polygon_clusters(data.points, data.query_points, config.refine_spectral_clusters,
                                config.knn, config.spectral_dims)  # fmt: skip
    return split_by(clusters, pieces)


def supervised(data: StudentData, geometry: MeshGeometry, labels, config, seed: int = 0,
               previous: np.ndarray | None = None) -> StudentData:  # fmt: skip
    """``data`` with the known ``labels`` (P,) applied: spread to the faces they point at
    (given the ``previous`` labels, config.spread_corrections), the units' say taken out
    where they contradict them, labelled polygons to learn. Unchanged without labels."""
    if labels is None or not (labels >= 0).any():
        return data
    learn = np.asarray(labels, np.int64)
    if previous is not None and config.spread_corrections:
        learn = spread_corrections(learn, previous, correction_segments(geometry, data, config))
    units = data.units
    if len(units) and config.trim_contradicted_units:
        units = units_without_contradiction(units, learn, data.point_polygons)
    rng = np.random.default_rng(seed)
    samples = labelled_samples(learn, polygon_areas(geometry), config.label_samples, rng)
    return dataclasses.replace(data, units=units, labelled=samples)


def finish_labels(
    geometry: MeshGeometry, data: StudentData, parts, config, query_probs, scores, extra,
    labels: np.ndarray | None = None,
) -> Segmentation:  # fmt: skip
    """Polygon labels from the student's probabilities (P, R) (or the votes, in direct mode):
    vote fusion, refinement, and the known ``labels`` (P,) kept as they are."""
    timings = extra["timings"]
    t = time.perf_counter()
    known = labels is not None and bool((labels >= 0).any())
    if config.mode == "direct":
        face_labels, confidence = direct_vote(data.units, geometry.num_polygons, len(parts))
    else:
        if config.vote_fusion:
            query_probs = fuse_with_votes(
                query_probs,
                data.units,
                config.vote_prior_mass,
                config.one_vote_per_view,
                data.units.trust,
            )
        if known:  # the refinement spreads what the user said, not what it replaced
            query_probs = clamp_to_labels(query_probs, labels)
        evidence = query_probs
        if config.refine:
            seen = voted_polygons(data.units, geometry.num_polygons)
            query_probs = refine_probabilities(
                geometry, query_probs, config, points=data.points, seen=seen
            )
            timings["refine"] = time.perf_counter() - t
            t = time.perf_counter()
        face_labels, _ = label_polygons(query_probs, data.query_present)
        # The confidence is the evidence's (student and votes) for the chosen part, not the
        # refined marginal: mean-field iterations make most faces near-certain, right or wrong,
        # and Low Confidence would find nothing. Expected calibration error measured over 13
        # profiles x 10 shapes: 26.6 % with the refined marginal, 17.1 % with this.
        confidence = confidence_of(evidence, face_labels)
    if known:
        face_labels = np.where(labels >= 0, labels, face_labels).astype(np.int32)
        confidence = np.where(labels >= 0, 1.0, confidence).astype(np.float32)
    timings["labels"] = time.perf_counter() - t
    return Segmentation(
        parts=list(parts),
        face_labels=face_labels,
        face_confidence=confidence,
        unit_scores_before=scores[0] if scores else None,
        unit_scores_after=scores[1] if scores else None,
        teacher_predictions=extra["predictions"],
        timings=timings,
        info=extra.get("info", {}),
    )


def _keep(keep, obj: ObjectInput, data: StudentData, parts, state, labels: np.ndarray) -> None:
    """Append the object's KeptRun to ``keep`` (when it is a list). Refine starts from the
    teacher's units: the labels are applied anew each time."""
    if keep is not None and state is not None:
        teacher_data = dataclasses.replace(data, labelled=None)
        keep.append(KeptRun(obj.info.name, list(parts), obj.geometry, teacher_data, state,
                            labels))  # fmt: skip


def _segment_each(objects, teacher, parts, config, progress, keep=None, lent=None):
    config.validate()
    progress = progress or _no_progress
    device = resolve_device(config.device)
    results = []
    for obj in objects:
        rng = np.random.default_rng(config.seed)
        data, extra = _prepare(obj, teacher, parts, config, progress, rng, False, lent)
        taught = supervised(data, obj.geometry, obj.labels, config, config.seed)
        scores = None
        query_probs = None
        if config.mode != "direct":
            t = time.perf_counter()
            progress("student", 0.0)
            trained = train_student([taught], len(parts), config, device, progress)
            extra["timings"]["student"] = time.perf_counter() - t
            query_probs = trained.query_probs[0]
            scores = (trained.scores_before[0], trained.scores_after[0])
            extra["info"] = trained.info
        results.append(finish_labels(obj.geometry, taught, parts, config, query_probs, scores,
                                     extra, obj.labels))  # fmt: skip
        if config.mode != "direct":
            _keep(keep, obj, data, parts, trained.state, results[-1].face_labels)
        progress("labels", 1.0)
    return results


def _segment_jointly(objects, teacher, parts, config, progress, examples=(), keep=None,
                     lent=None):  # fmt: skip
    config.validate()
    progress = progress or _no_progress
    device = resolve_device(config.device)
    rng = np.random.default_rng(config.seed)
    everything = list(objects) + list(examples)
    prepared = [_prepare(obj, teacher, parts, config, progress, rng, True, lent)
                for obj in everything]  # fmt: skip
    taught = [
        supervised(data, obj.geometry, obj.labels, config, config.seed + i)
        for i, (obj, (data, _)) in enumerate(zip(everything, prepared, strict=True))
    ]
    t = time.perf_counter()
    progress("student", 0.0)
    trained = train_student(taught, len(parts), config, device, progress)
    seconds = (time.perf_counter() - t) / len(objects)
    results = []
    for i, obj in enumerate(objects):
        data, extra = prepared[i]
        extra["timings"]["student"] = seconds
        extra["info"] = trained.info
        scores = (trained.scores_before[i], trained.scores_after[i])
        probs = trained.query_probs[i]
        results.append(finish_labels(obj.geometry, taught[i], parts, config, probs, scores,
                                     extra, obj.labels))  # fmt: skip
        _keep(keep, obj, data, parts, trained.state, results[-1].face_labels)
    progress("labels", 1.0)
    return results
