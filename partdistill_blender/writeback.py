"""Write a segmentation back onto a mesh object, and clear it again (results.py reads it).

Per part: a vertex group, a material slot (appended after the user's slots) with a distinct
colour; per polygon: ``material_index`` of its part's slot, and face attributes with the part
id and confidence. The previous material indices are kept in a face attribute and the
bookkeeping in ``obj["partdistill"]`` (JSON), so ``clear_segmentation`` restores the mesh
exactly. Writing again replaces the previous result.
"""

from __future__ import annotations

import json

import bpy
import numpy as np

from .geometry import loop_arrays
from .palette import part_colors

PART_ATTRIBUTE = "partdistill_part"  # INT face attribute: part index, -1 = unlabelled
CONFIDENCE_ATTRIBUTE = "partdistill_confidence"  # FLOAT face attribute in [0, 1]
PREVIOUS_MATERIAL_ATTRIBUTE = "partdistill_previous_material"  # INT: material_index before
BOOKKEEPING_PROPERTY = "partdistill"  # object custom property, JSON string
MATERIAL_PREFIX = "PartDistill "
MATERIAL_TAG = "partdistill_part_material"  # custom property marking materials we created
OUR_ATTRIBUTES = (PART_ATTRIBUTE, CONFIDENCE_ATTRIBUTE, PREVIOUS_MATERIAL_ATTRIBUTE)


def _srgb_to_linear(value: float) -> float:
    # Material colours are scene-linear; the palette is picked as displayed (sRGB).
    return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4


def _validate(obj, parts, face_labels, face_confidence):
    if obj is None or obj.type != "MESH":
        raise ValueError(f"{getattr(obj, 'name', 'object')!r} is not a mesh object")
    if obj.mode == "EDIT":
        raise ValueError(f"{obj.name!r} is in Edit Mode: switch to Object Mode first")
    parts = [str(p) for p in parts]
    if not parts or any(not p.strip() for p in parts):
        raise ValueError("part names must be a non-empty list of non-empty names")
    if len(set(parts)) != len(parts):
        raise ValueError(f"part names must be distinct: {parts}")
    count = len(obj.data.polygons)
    labels = np.asarray(face_labels)
    confidence = np.asarray(face_confidence)
    if labels.shape != (count,):
        raise ValueError(
            f"{obj.name!r}: face_labels has shape {labels.shape}, expected ({count},): "
            "one label per polygon"
        )
    if confidence.shape != (count,):
        raise ValueError(
            f"{obj.name!r}: face_confidence has shape {confidence.shape}, expected ({count},)"
        )
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        if not np.array_equal(labels, np.rint(labels)):
            raise ValueError("face_labels must be integers")
    labels = labels.astype(np.int64)
    if labels.size and (labels.min() < -1 or labels.max() >= len(parts)):
        raise ValueError(
            f"face_labels must lie in -1..{len(parts) - 1} (-1 = unlabelled), "
            f"found {labels.min()}..{labels.max()}"
        )
    confidence = confidence.astype(np.float32)
    if not np.isfinite(confidence).all():
        raise ValueError("face_confidence must be finite numbers")
    return parts, labels, confidence


def _part_material(part: str, color) -> bpy.types.Material:
    name = MATERIAL_PREFIX + part
    material = bpy.data.materials.get(name)
    if material is None or not material.get(MATERIAL_TAG):
        material = bpy.data.materials.new(name)  # a user's same-named material gets ".001"
        material[MATERIAL_TAG] = True
    linear = tuple(_srgb_to_linear(c) for c in color[:3]) + (1.0,)
    material.diffuse_color = linear
    material.use_nodes = True
    principled = next((n for n in material.node_tree.nodes if n.type == "BSDF_PRINCIPLED"), None)
    if principled is not None:
        principled.inputs["Base Color"].default_value = linear
    return material


def _group_name(obj, part: str) -> str:
    name = part
    if name in obj.vertex_groups:
        name = f"{part} (PartDistill)"
        suffix = 2
        while name in obj.vertex_groups:
            name = f"{part} (PartDistill {suffix})"
            suffix += 1
    return name


def _face_attribute(mesh, name: str, data_type: str):
    existing = mesh.attributes.get(name)
    if existing is not None:
        mesh.attributes.remove(existing)
    return mesh.attributes.new(name, data_type, "FACE")


def write_segmentation(obj, parts, face_labels, face_confidence, run: dict | None = None) -> None:
    """Write a segmentation onto ``obj`` (replacing an earlier one).

    parts: R part names; face_labels: (P,) int part index per polygon, -1 = unlabelled;
    face_confidence: (P,) float in [0, 1]; run: how it was made (see ``run_record``), kept with
    the result. Validates everything (ValueError) before changing anything.
    """
    parts, labels, confidence = _validate(obj, parts, face_labels, face_confidence)
    clear_segmentation(obj)
    mesh = obj.data
    count = len(mesh.polygons)

    previous = np.empty(count, dtype=np.int32)
    mesh.polygons.foreach_get("material_index", previous)
    previous_slot_count = len(mesh.materials)
    # Blender stores no material_index attribute while every index is 0; setting indices
    # creates it, so clearing must remove it again for the mesh to be exactly as before.
    had_material_index = "material_index" in mesh.attributes
    previous_active_group = obj.vertex_groups.active_index

    colors = part_colors(len(parts))
    for part, color in zip(parts, colors, strict=True):
        mesh.materials.append(_part_material(part, color))
    new_indices = np.where(labels >= 0, previous_slot_count + labels, previous).astype(np.int32)
    mesh.polygons.foreach_set("material_index", new_indices)

    loop_polygons, loop_vertices, _ = loop_arrays(mesh)
    loop_labels = labels[loop_polygons]
    group_names = []
    for index, part in enumerate(parts):
        name = _group_name(obj, part)
        group = obj.vertex_groups.new(name=name)
        vertices = np.unique(loop_vertices[loop_labels == index])
        if len(vertices):
            group.add(vertices.tolist(), 1.0, "REPLACE")
        group_names.append(group.name)
    obj.vertex_groups.active_index = previous_active_group

    _face_attribute(mesh, PART_ATTRIBUTE, "INT").data.foreach_set("value", labels.astype(np.int32))
    _face_attribute(mesh, CONFIDENCE_ATTRIBUTE, "FLOAT").data.foreach_set("value", confidence)
    _face_attribute(mesh, PREVIOUS_MATERIAL_ATTRIBUTE, "INT").data.foreach_set("value", previous)

    obj[BOOKKEEPING_PROPERTY] = json.dumps(
        {
            "parts": parts,
            "groups": group_names,
            "materials": [m.name for m in mesh.materials[previous_slot_count:]],
            "first_slot": previous_slot_count,
            "previous_slot_count": previous_slot_count,
            "previous_active_group": previous_active_group,
            "had_material_index": had_material_index,
            "run": dict(run or {}),
        }
    )
    mesh.update()


def bookkeeping(obj) -> dict | None:
    """What ``write_segmentation`` kept on ``obj`` (parts, groups, materials, run), or None."""
    if obj is None or obj.type != "MESH":
        return None
    raw = obj.get(BOOKKEEPING_PROPERTY)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        return None


def run_record(config, objects: list[str]) -> dict:
    """How a segmentation was made, kept on the object: teacher (and model), mode, views, and
    the objects whose student it shared (just itself when each had its own)."""
    record = {"teacher": config.teacher, "mode": config.mode, "views": config.num_views,
              "student_shared_by": list(objects) if config.collection else []}  # fmt: skip
    if config.teacher != "simulated":
        record["model"] = config.model
    return record


def clear_segmentation(obj) -> bool:
    """Remove what ``write_segmentation`` added and restore the previous material indices.

    Returns False when ``obj`` holds no segmentation. Our materials are deleted once no other
    datablock uses them.
    """
    info = bookkeeping(obj)
    if info is None:
        return False
    mesh = obj.data
    count = len(mesh.polygons)
    previous = None
    attribute = mesh.attributes.get(PREVIOUS_MATERIAL_ATTRIBUTE)
    if attribute is not None:
        previous = np.empty(count, dtype=np.int32)
        attribute.data.foreach_get("value", previous)

    # Pop our slots (highest first) before restoring indices: popping shifts indices above it.
    first = int(info["first_slot"])
    ours = set(info["materials"])
    removed = []
    for slot in reversed(range(first, min(first + len(info["materials"]), len(mesh.materials)))):
        material = mesh.materials[slot]
        if material is not None and material.name in ours and material.get(MATERIAL_TAG):
            removed.append(mesh.materials.pop(index=slot))
    if len(mesh.materials) == 0:
        # Popping a mesh's last material leaves the object one empty slot (Blender 4.3-4.5);
        # clear() also resets the object's slot count.
        mesh.materials.clear()
    if previous is not None:
        mesh.polygons.foreach_set("material_index", previous)
        stored = mesh.attributes.get("material_index")
        if not info.get("had_material_index", True) and stored is not None and not previous.any():
            mesh.attributes.remove(stored)

    for name in info["groups"]:
        group = obj.vertex_groups.get(name)
        if group is not None:
            obj.vertex_groups.remove(group)
    active = int(info.get("previous_active_group", -1))
    if active < len(obj.vertex_groups):
        obj.vertex_groups.active_index = active

    for name in OUR_ATTRIBUTES:
        existing = mesh.attributes.get(name)
        if existing is not None:
            mesh.attributes.remove(existing)
    del obj[BOOKKEEPING_PROPERTY]

    for material in removed:
        if material is not None and material.users == 0:
            bpy.data.materials.remove(material)
    mesh.update()
    return True
