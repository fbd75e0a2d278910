"""Ground-truth part labels on a mesh, which the simulated teacher is built from.

The labels are an INT face attribute (``GROUND_TRUTH_ATTRIBUTE`` unless the batch names
another), or, for a mesh file of the Princeton Segmentation Benchmark, its labels file.
"""

from __future__ import annotations

import pathlib

import numpy as np

from ..backend.groundtruth import map_part_names, read_psb_labels

GROUND_TRUTH_ATTRIBUTE = "partdistill_ground_truth"


def read_int_face_attribute(obj, name: str, mesh=None) -> np.ndarray | None:
    """(P,) int32 values of the INT face attribute ``name`` of ``obj`` (of ``mesh`` when given),
    None when it has none."""
    mesh = mesh or obj.data
    attribute = mesh.attributes.get(name)
    if attribute is None or attribute.domain != "FACE" or attribute.data_type != "INT":
        return None
    values = np.empty(len(mesh.polygons), np.int32)
    attribute.data.foreach_get("value", values)
    return values


def ground_truth_for(obj, source: str, spec: str, parts: list[str]) -> np.ndarray | None:
    """Ground-truth labels (P,) for the simulated teacher, or None when none are asked for."""
    if not spec:
        return read_int_face_attribute(obj, GROUND_TRUTH_ATTRIBUTE)
    kind, _, rest = spec.partition(":")
    if kind == "attribute":
        labels = read_int_face_attribute(obj, rest)
        if labels is None:
            raise ValueError(f"object {obj.name!r} has no INT face attribute {rest!r}")
        return labels
    if kind == "psb":
        path = pathlib.Path(source).with_name(pathlib.Path(source).stem + "_labels.txt")
        if not path.exists():
            raise ValueError(f"no ground-truth labels file {path}")
        renames = dict(pair.split("=", 1) for pair in rest.split(",") if "=" in pair)
        names, labels = read_psb_labels(path, len(obj.data.polygons))
        return map_part_names(names, labels, parts, renames)
    raise ValueError(f"--ground-truth {spec!r}: expected attribute:NAME or psb[:old=new,...]")


def simulated_teacher_truth(obj, source: str = "", spec: str = "", parts=(), options=None):
    """The ground truth the simulated teacher is built from, for ``obj``: ``ground_truth_for``,
    and a ValueError in plain words when the mesh has none and the teacher's options give none
    (``face_labels``) either."""
    labels = ground_truth_for(obj, source, spec, list(parts))
    if labels is None and "face_labels" not in (options or {}):
        raise ValueError(
            f"the simulated teacher needs ground-truth labels on {obj.name!r}: an integer face "
            f"attribute named {GROUND_TRUTH_ATTRIBUTE!r}"
        )
    return labels
