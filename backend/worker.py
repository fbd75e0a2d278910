"""The compute half as a separate process, for a Blender whose Python cannot import torch.

Run by the add-on with another Python (one that has torch, CPU or CUDA):

    python /path/to/partdistill/backend/worker.py REQUEST_DIR     # by path (no install needed)
    python -m partdistill.backend.worker REQUEST_DIR              # when partdistill is importable
    python /path/to/partdistill/backend/worker.py --probe         # JSON: python, torch, CUDA

REQUEST_DIR holds ``request.json`` (part names, configuration, teacher spec and options, one
entry per object) and ``request.npz`` (geometry, views and optional ground truth, keyed
``o{i}_...`` and ``o{i}_v{j}_...``). The worker prints ``PROGRESS <stage> <fraction>`` lines on
stdout while it runs and writes ``result.json`` + ``result.npz`` when done, or ``result.json``
with an ``error`` entry on failure. Both files appear atomically (written then renamed), so a
killed worker leaves no half-written result.
"""

from __future__ import annotations

import sys

if __name__ == "__main__" and not __package__:
    # Run by path: drop this folder from sys.path (its module names must not shadow others) and
    # load the extension's root folder as the package "partdistill".
    import pathlib

    _here = pathlib.Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if pathlib.Path(p or ".").resolve() != _here]
    sys.path.insert(0, str(_here.parent))
    import load_repo

    load_repo.load()
    from partdistill.backend.worker import main as _main

    sys.exit(_main(sys.argv[1:]))

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


def write_request(
    folder, objects: list, parts: list[str], config: PartDistillConfig, teacher_options: dict
) -> None:
    """Write a request for ``objects`` (backend.pipeline.ObjectInput) into ``folder``."""
    folder = pathlib.Path(folder)
    arrays = {}
    entries = []
    for i, obj in enumerate(objects):
        g = obj.geometry
        arrays[f"o{i}_vertices"] = g.vertices
        arrays[f"o{i}_triangles"] = g.triangles
        arrays[f"o{i}_triangle_polygons"] = g.triangle_polygons
        if obj.info.face_labels is not None:
            arrays[f"o{i}_face_labels"] = np.asarray(obj.info.face_labels)
        for j, view in enumerate(obj.views):
            for key in ("image", "face_ids", "K", "world_to_camera"):
                arrays[f"o{i}_v{j}_{key}"] = getattr(view, key)
        entries.append(
            {
                "name": obj.info.name,
                "category": obj.info.category,
                "num_polygons": int(g.num_polygons),
                "num_views": len(obj.views),
                "has_face_labels": obj.info.face_labels is not None,
            }
        )
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
    }
    _save_npz(folder / REQUEST_NPZ, arrays)
    _save_json(folder / REQUEST_JSON, request)


def read_request(folder):
    """(objects, parts, config, teacher_options) from a request folder."""
    folder = pathlib.Path(folder)
    request = json.loads((folder / REQUEST_JSON).read_text())
    objects = []
    with np.load(folder / REQUEST_NPZ) as arrays:
        for i, entry in enumerate(request["objects"]):
            geometry = MeshGeometry(
                vertices=arrays[f"o{i}_vertices"],
                triangles=arrays[f"o{i}_triangles"],
                triangle_polygons=arrays[f"o{i}_triangle_polygons"],
                num_polygons=entry["num_polygons"],
            )
            views = [
                View(
                    *(
                        arrays[f"o{i}_v{j}_{k}"]
                        for k in ("image", "face_ids", "K", "world_to_camera")
                    )
                )
                for j in range(entry["num_views"])
            ]
            info = ObjectInfo(
                name=entry["name"],
                category=entry["category"],
                face_labels=arrays[f"o{i}_face_labels"] if entry["has_face_labels"] else None,
            )
            objects.append(ObjectInput(geometry, views, info))
    config = config_from_dict(request["config"])
    options = dict(request["teacher_options"])
    if request.get("teacher_gets_config"):
        options["config"] = config
    return objects, request["parts"], config, options


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


def _print_progress(stage: str, fraction: float) -> None:
    print(f"{PROGRESS_PREFIX}{stage} {fraction:.4f}", flush=True)


def probe() -> dict:
    """What this Python offers the compute half: versions, CUDA, and what is missing."""
    report = {"python": sys.version.split()[0], "executable": sys.executable, "missing": []}
    for name in ("torch", "scipy", "transformers", "safetensors"):
        try:
            module = __import__(name)
            report[name] = getattr(module, "__version__", "")
        except ImportError:
            report["missing"].append(name)
    if "torch" in report:
        import torch

        report["cuda"] = bool(torch.cuda.is_available())
        report["cuda_device"] = torch.cuda.get_device_name(0) if report["cuda"] else ""
    return report


def run(folder) -> None:
    """Answer the request in ``folder``: result files on success, an error entry on failure."""
    from .pipeline import segment_collection
    from .teachers import build_teacher

    folder = pathlib.Path(folder)
    try:
        objects, parts, config, teacher_options = read_request(folder)
        teacher = build_teacher(config.teacher, parts, **teacher_options)
        segmentations = segment_collection(objects, teacher, parts, config, _print_progress)
        write_result(folder, segmentations)
    except Exception as exc:
        write_error(folder, exc)
        raise


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


def main(argv: list[str]) -> int:
    if argv == ["--probe"]:
        print(json.dumps(probe()))
        return 0
    if len(argv) != 1:
        print("usage: worker.py REQUEST_DIR | --probe", file=sys.stderr)
        return 2
    try:
        run(argv[0])
    except Exception:
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
