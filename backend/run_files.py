"""The files of a run: the request a compute stage answers and the result it gives back.

A run's state between the Blender stages and the compute stages is plain data saved here, the
same for the worker process (``backend/worker.py``), a saved run loaded again, or any other
executor. A request folder holds ``request.json`` (part names, configuration, teacher spec and
options, one entry per object) and ``request.npz`` (geometry, views and optional ground truth,
keyed ``o{i}_...`` and ``o{i}_v{j}_...``); a result is ``result.json`` + ``result.npz``, or
``result.json`` with an ``error`` entry on failure. Every file appears atomically (written then
renamed), so a killed writer leaves no half-written file. Progress of a run in another process
comes as ``PROGRESS <stage> <fraction>`` lines on its stdout.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import traceback

import numpy as np

from .atomic_write import write_atomically
from .config import PartDistillConfig
from .contracts import (
    MeshGeometry,
    ObjectInfo,
    ObjectInput,
    Segmentation,
    SegmentationCancelled,
    StaleRun,
    TeacherUnavailable,
    View,
)

REQUEST_JSON = "request.json"
REQUEST_NPZ = "request.npz"
RESULT_JSON = "result.json"
RESULT_NPZ = "result.npz"
PROGRESS_PREFIX = "PROGRESS "

# Exceptions whose message is meant for users and that cross the process boundary as they are.
ERROR_TYPES = {
    "TeacherUnavailable": TeacherUnavailable,
    "SegmentationCancelled": SegmentationCancelled,
    "ValueError": ValueError,
    "StaleRun": StaleRun,
}


def config_to_dict(config: PartDistillConfig) -> dict:
    return dataclasses.asdict(config)


def config_from_dict(values: dict) -> PartDistillConfig:
    """Inverse of ``config_to_dict``: JSON lists back to the tuples the fields hold."""
    defaults = PartDistillConfig()
    known = {f.name for f in dataclasses.fields(PartDistillConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown configuration fields from the add-on: {', '.join(unknown)}")
    fixed = {}
    for name, value in values.items():
        if isinstance(getattr(defaults, name), tuple):
            value = _to_tuple(value)
        fixed[name] = value
    return PartDistillConfig(**fixed)


def _to_tuple(value):
    return tuple(_to_tuple(v) for v in value) if isinstance(value, list | tuple) else value


def _json_default(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} cannot be sent to the compute process")


def _save_npz(path: pathlib.Path, arrays: dict) -> None:
    def write(temporary):
        with open(temporary, "wb") as handle:
            np.savez(handle, **arrays)

    write_atomically(path, write)


def _save_json(path: pathlib.Path, data: dict) -> None:
    def write(temporary):
        temporary.write_text(json.dumps(data, default=_json_default))

    write_atomically(path, write)


def _object_arrays(arrays: dict, prefix: str, obj: ObjectInput) -> dict:
    """Put one object's arrays into ``arrays`` under ``prefix``; returns its JSON entry."""
    g = obj.geometry
    if g is not None:  # a Refine's objects come with their labels only
        arrays[f"{prefix}_vertices"] = g.vertices
        arrays[f"{prefix}_triangles"] = g.triangles
        arrays[f"{prefix}_triangle_polygons"] = g.triangle_polygons
    if obj.info.face_labels is not None:
        arrays[f"{prefix}_face_labels"] = np.asarray(obj.info.face_labels)
    if obj.labels is not None:
        arrays[f"{prefix}_labels"] = np.asarray(obj.labels)
    for j, view in enumerate(obj.views):
        for key in ("image", "face_ids", "K", "world_to_camera"):
            arrays[f"{prefix}_v{j}_{key}"] = getattr(view, key)
    return {
        "name": obj.info.name,
        "category": obj.info.category,
        "num_polygons": None if g is None else int(g.num_polygons),
        "num_views": len(obj.views),
        "has_face_labels": obj.info.face_labels is not None,
        "has_labels": obj.labels is not None,
    }


def _read_object(arrays, prefix: str, entry: dict) -> ObjectInput:
    geometry = None
    if entry["num_polygons"] is not None:
        geometry = MeshGeometry(
            vertices=arrays[f"{prefix}_vertices"],
            triangles=arrays[f"{prefix}_triangles"],
            triangle_polygons=arrays[f"{prefix}_triangle_polygons"],
            num_polygons=entry["num_polygons"],
        )
    views = [
        View(*(arrays[f"{prefix}_v{j}_{k}"] for k in ("image", "face_ids", "K", "world_to_camera")))
        for j in range(entry["num_views"])
    ]
    info = ObjectInfo(
        name=entry["name"],
        category=entry["category"],
        face_labels=arrays[f"{prefix}_face_labels"] if entry["has_face_labels"] else None,
    )
    labels = arrays[f"{prefix}_labels"] if entry.get("has_labels") else None
    return ObjectInput(geometry, views, info, labels)


def write_request(
    folder,
    objects: list,
    parts: list[str],
    config: PartDistillConfig,
    teacher_options: dict,
    examples: list = (),
    keep_dirs: list[str] = (),
    refine: bool = False,
) -> None:
    """Write a request for ``objects`` (backend.contracts.ObjectInput) into ``folder``, with
    few-shot ``examples``, the folders to keep each object's run in, and whether it is a
    Refine (``backend.run_stages.RunRequest``)."""
    folder = pathlib.Path(folder)
    arrays = {}
    entries = [_object_arrays(arrays, f"o{i}", obj) for i, obj in enumerate(objects)]
    example_entries = [_object_arrays(arrays, f"e{i}", obj) for i, obj in enumerate(examples)]
    options = dict(teacher_options or {})
    # A teacher may be given the run's configuration as an option; it crosses as the config.
    config_option = isinstance(options.get("config"), PartDistillConfig)
    if config_option:
        del options["config"]
    try:
        options_json = json.loads(json.dumps(options))
    except TypeError as exc:
        raise ValueError(
            f"teacher options must be plain values to run in another Python: {exc}"
        ) from exc
    request = {
        "parts": list(parts),
        "config": config_to_dict(config),
        "teacher_options": options_json,
        "teacher_gets_config": config_option,
        "objects": entries,
        "examples": example_entries,
        "keep_dirs": [str(d) for d in keep_dirs],
        "refine": bool(refine),
    }
    _save_npz(folder / REQUEST_NPZ, arrays)
    _save_json(folder / REQUEST_JSON, request)


def read_request(folder) -> dict:
    """The fields of a ``RunRequest`` (objects, parts, config, teacher_options, examples,
    keep_dirs, refine) from a request folder."""
    folder = pathlib.Path(folder)
    request = json.loads((folder / REQUEST_JSON).read_text())
    with np.load(folder / REQUEST_NPZ) as arrays:
        objects = [_read_object(arrays, f"o{i}", e) for i, e in enumerate(request["objects"])]
        examples = [
            _read_object(arrays, f"e{i}", e) for i, e in enumerate(request.get("examples", []))
        ]
    config = config_from_dict(request["config"])
    options = dict(request["teacher_options"])
    if request.get("teacher_gets_config"):
        options["config"] = config
    return {
        "objects": objects,
        "parts": request["parts"],
        "config": config,
        "teacher_options": options,
        "examples": examples,
        "keep_dirs": request.get("keep_dirs", []),
        "refine": request.get("refine", False),
    }


def write_result(folder, segmentations: list[Segmentation]) -> None:
    folder = pathlib.Path(folder)
    arrays = {}
    entries = []
    for i, seg in enumerate(segmentations):
        arrays[f"o{i}_face_labels"] = seg.face_labels
        arrays[f"o{i}_face_confidence"] = seg.face_confidence
        for key in ("unit_scores_before", "unit_scores_after"):
            if getattr(seg, key) is not None:
                arrays[f"o{i}_{key}"] = getattr(seg, key)
        predictions = seg.teacher_predictions or []
        pixel = bool(predictions) and all(isinstance(p, np.ndarray) for p in predictions)
        if pixel:
            for j, p in enumerate(predictions):
                arrays[f"o{i}_p{j}"] = p
        entries.append(
            {
                "parts": seg.parts,
                "timings": seg.timings,
                "info": seg.info,
                "num_predictions": len(predictions) if pixel else 0,
                # Box predictions: per view a list of [box, probabilities].
                "boxes": None if pixel or not predictions else predictions,
            }
        )
    _save_npz(folder / RESULT_NPZ, arrays)
    _save_json(folder / RESULT_JSON, {"objects": entries})


def read_result(folder) -> list[Segmentation]:
    """The segmentations a worker wrote; raises the worker's error when it wrote one."""
    folder = pathlib.Path(folder)
    result = json.loads((folder / RESULT_JSON).read_text())
    if "error" in result:
        error = result["error"]
        if error["type"] == "TeacherUnavailable" and "problem" in error:
            raise TeacherUnavailable(error["problem"], error.get("remedy", ""))
        raise ERROR_TYPES.get(error["type"], RuntimeError)(error["message"])
    segmentations = []
    with np.load(folder / RESULT_NPZ) as arrays:
        for i, entry in enumerate(result["objects"]):
            if entry["num_predictions"]:
                predictions = [arrays[f"o{i}_p{j}"] for j in range(entry["num_predictions"])]
            elif entry["boxes"] is not None:
                predictions = [
                    [(tuple(box), np.asarray(probs, np.float32)) for box, probs in view]
                    for view in entry["boxes"]
                ]
            else:
                predictions = None
            segmentations.append(
                Segmentation(
                    parts=entry["parts"],
                    face_labels=arrays[f"o{i}_face_labels"],
                    face_confidence=arrays[f"o{i}_face_confidence"],
                    unit_scores_before=arrays.get(f"o{i}_unit_scores_before"),
                    unit_scores_after=arrays.get(f"o{i}_unit_scores_after"),
                    teacher_predictions=predictions,
                    timings=entry["timings"],
                    info=entry["info"],
                )
            )
    return segmentations


def write_error(folder, exc: BaseException) -> None:
    """The error entry ``read_result`` raises again on the caller's side; call it inside the
    ``except`` block (it keeps the traceback)."""
    error = {
        "type": type(exc).__name__,
        "message": str(exc) or type(exc).__name__,
        "traceback": traceback.format_exc(),
    }
    if isinstance(exc, TeacherUnavailable):  # what is missing and how to get it, apart
        error.update(problem=exc.problem, remedy=exc.remedy)
    _save_json(pathlib.Path(folder) / RESULT_JSON, {"error": error})


def parse_progress_line(line: str) -> tuple[str, float] | None:
    """("teacher", 0.5) from "PROGRESS teacher 0.5"; None for any other output line."""
    if not line.startswith(PROGRESS_PREFIX):
        return None
    parts = line[len(PROGRESS_PREFIX) :].split()
    if len(parts) != 2:
        return None
    try:
        return parts[0], float(parts[1])
    except ValueError:
        return None


def print_progress(stage: str, fraction: float) -> None:
    print(f"{PROGRESS_PREFIX}{stage} {fraction:.4f}", flush=True)
