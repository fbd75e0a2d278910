"""Labels a user gives: corrections on faces, and labelled objects used as few-shot examples.

Corrections are an INT face attribute (``CORRECTION_ATTRIBUTE``: an index into the part names
kept beside it in ``obj[CORRECTION_PARTS_PROPERTY]``, -1 = not corrected), so they stay in the
.blend and survive a Clear or a run with other part names: they are matched to the parts of
a run by name. An example is any object with a segmentation (corrected or not); its part
labels become the few-shot labels of ``example_input``. Plain arrays out, no tensor maths.
"""

from __future__ import annotations

import json

import bpy
import numpy as np

from ..backend.contracts import ObjectInfo, ObjectInput
from ..backend.groundtruth import map_part_names
from .geometry import baked_evaluated_mesh, mesh_geometry
from .ground_truth import read_int_face_attribute
from .results import edit_mesh_copy, has_segmentation, read_segmentation, result_rows

CORRECTION_ATTRIBUTE = "partdistill_correction"  # INT face attribute, -1 = not corrected
CORRECTION_PARTS_PROPERTY = "partdistill_correction_parts"  # JSON list of part names
EXAMPLE_PROPERTY = "partdistill_example"  # bpy.types.Object BoolProperty "Use as Example"

# Corrected-face counts last read in object mode, per object (session_uid): in edit mode the
# attribute lives in the BMesh, so the panel shows these (as results._ROWS_READ does).
_COUNTS_READ: dict[int, int] = {}


def relabel(labels: np.ndarray, names: list[str], parts: list[str]) -> np.ndarray:
    """(P,) indices into ``names`` -> indices into ``parts`` (matched by name, case-insensitive;
    -1 where a name is not among ``parts``, or the index is not one of ``names``)."""
    known = np.where((labels >= 0) & (labels < len(names)), labels, -1)
    lowered = [p.lower() for p in parts]  # part names are distinct case-insensitively
    return map_part_names([n.lower() for n in names], known, lowered, {}).astype(np.int32)


def correction_names(obj) -> list[str]:
    try:
        return list(json.loads(obj.get(CORRECTION_PARTS_PROPERTY, "[]")))
    except (TypeError, ValueError):
        return []


def read_corrections(obj, parts: list[str], attribute: str = CORRECTION_ATTRIBUTE):
    """(P,) int32 corrections of ``obj`` as indices into ``parts`` (-1 = none), or None when
    it has none. Object mode only (in edit mode the attribute lives in the BMesh).

    ``attribute`` other than ours (the batch's ``--corrections attribute:NAME``) holds part
    indices into ``parts`` directly.
    """
    values = read_int_face_attribute(obj, attribute)
    if values is None:
        return None
    if attribute == CORRECTION_ATTRIBUTE:
        values = relabel(values, correction_names(obj), parts)
    values = np.where((values >= 0) & (values < len(parts)), values, -1).astype(np.int32)
    return values if (values >= 0).any() else None


def write_corrections(obj, faces: np.ndarray, part: str) -> None:
    """Mark the faces where ``faces`` (P,) bool is True as corrected to ``part``. Object mode."""
    mesh = obj.data
    names = correction_names(obj)
    if part not in names:
        names.append(part)
    count = len(mesh.polygons)
    values = read_int_face_attribute(obj, CORRECTION_ATTRIBUTE)
    if values is None:
        if CORRECTION_ATTRIBUTE in mesh.attributes:  # same name, other type: ours replaces it
            mesh.attributes.remove(mesh.attributes[CORRECTION_ATTRIBUTE])
        mesh.attributes.new(CORRECTION_ATTRIBUTE, "INT", "FACE")
        values = np.full(count, -1, np.int32)
    values[faces] = names.index(part)
    mesh.attributes[CORRECTION_ATTRIBUTE].data.foreach_set("value", values)
    obj[CORRECTION_PARTS_PROPERTY] = json.dumps(names)
    mesh.update()


def corrected_face_count(obj, mesh=None) -> int:
    """How many faces of ``obj`` carry a correction (whatever its part). In edit mode: the
    count read last in object mode or after an undo (0 when none was read), unless ``mesh``
    is a copy of the edit mesh to read it from (``results.edit_mesh_copy``)."""
    if obj is None or obj.type != "MESH":
        return 0
    if obj.mode == "EDIT" and mesh is None:
        return _COUNTS_READ.get(obj.session_uid, 0)
    values = read_int_face_attribute(obj, CORRECTION_ATTRIBUTE, mesh)
    count = 0
    if values is not None:
        count = int(((values >= 0) & (values < len(correction_names(obj)))).sum())
    _COUNTS_READ[obj.session_uid] = count
    return count


def clear_corrections(obj) -> bool:
    """Remove the corrections of ``obj``; False when it had none."""
    mesh = obj.data
    had = CORRECTION_ATTRIBUTE in mesh.attributes
    if had:
        mesh.attributes.remove(mesh.attributes[CORRECTION_ATTRIBUTE])
    if CORRECTION_PARTS_PROPERTY in obj:
        del obj[CORRECTION_PARTS_PROPERTY]
    _COUNTS_READ.pop(obj.session_uid, None)
    mesh.update()
    return had


def example_labels(obj, parts: list[str]) -> np.ndarray | None:
    """(P,) int32 labels of an example object as indices into ``parts``: its segmentation
    with its corrections on top; None when it has no segmentation."""
    segmentation = read_segmentation(obj)
    if segmentation is None:
        return None
    labels = relabel(segmentation["face_labels"], segmentation["parts"], parts)
    corrected = read_corrections(obj, parts)
    if corrected is not None:
        labels = np.where(corrected >= 0, corrected, labels).astype(np.int32)
    return labels


def example_input(obj, labels: np.ndarray, depsgraph=None) -> ObjectInput:
    """An example for the compute stages: the evaluated geometry (no views are rendered) and
    ``labels`` (P,) as its known labels."""
    baked = baked_evaluated_mesh(obj, depsgraph)
    try:
        geometry = mesh_geometry(baked, len(obj.data.polygons))
    finally:
        bpy.data.meshes.remove(baked)
    return ObjectInput(geometry, [], ObjectInfo(name=obj.name), np.asarray(labels, np.int32))


def example_objects(scene, exclude=()) -> list:
    """The mesh objects of ``scene`` marked "Use as Example", less those in ``exclude``."""
    excluded = {obj.name for obj in exclude}
    return [obj for obj in scene.objects
            if obj.type == "MESH" and getattr(obj, EXAMPLE_PROPERTY, False)
            and obj.name not in excluded]  # fmt: skip


def scene_examples(scene, exclude, parts: list[str], depsgraph=None):
    """(examples, warnings): an ``example_input`` for every usable example object of ``scene``
    (``example_objects``), and a sentence for each one left out, naming it and saying why.
    Object mode (the labels are face attributes)."""
    examples, warnings = [], []
    for obj in example_objects(scene, exclude):
        labels = example_labels(obj, parts)
        if labels is None:
            warnings.append(f"{obj.name!r} is marked Use as Example but has no segmentation: "
                            "segment it (and correct it) first; it was left out")  # fmt: skip
            continue
        if not (labels >= 0).any():
            names = read_segmentation(obj)["parts"]
            warnings.append(f"{obj.name!r} is marked Use as Example but none of its parts "
                            f"({', '.join(names)}) is among this run's ({', '.join(parts)}); "
                            "it was left out")  # fmt: skip
            continue
        examples.append(example_input(obj, labels, depsgraph))
    return examples, warnings


def refresh_after_undo() -> None:
    """Read the rows and the corrected counts of the objects in edit mode again: an undo (of a
    Refine, an Assign) changed their labels, and the panel shows what was read last."""
    for obj in bpy.data.objects:
        if obj.type == "MESH" and obj.mode == "EDIT" and has_segmentation(obj):
            copy = edit_mesh_copy(obj)
            try:
                result_rows(obj, copy)
                corrected_face_count(obj, copy)
            finally:
                bpy.data.meshes.remove(copy)
