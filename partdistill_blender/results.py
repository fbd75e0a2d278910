"""Reading a written segmentation back (its labels, its run record, the Results panel's rows),
and face masks for selecting, hiding and isolating parts. All mesh I/O is vectorised
(foreach_get / foreach_set)."""

from __future__ import annotations

from dataclasses import dataclass

import bmesh
import bpy
import numpy as np

from .geometry import loop_arrays
from .writeback import CONFIDENCE_ATTRIBUTE, PART_ATTRIBUTE, bookkeeping


def run_summary(run: dict) -> list[str]:
    """Short lines for the Results panel: ["clip-vit-base-patch16, 10 views",
    "One student for 2 objects"]; [] for a result written without a record."""
    if not run:
        return []
    teacher = (run.get("model") or run.get("teacher", "?")).rstrip("/").rsplit("/", 1)[-1]
    lines = [f"{teacher}, {run.get('views', '?')} views"]
    shared = run.get("student_shared_by") or []
    if run.get("mode") == "direct":
        lines.append("Teacher votes only, no student")
    elif len(shared) > 1:
        lines.append(f"One student for {len(shared)} objects")
    return lines


def read_run(obj) -> dict:
    """The ``run`` record of ``obj``'s segmentation ({} when none); readable in edit mode."""
    info = bookkeeping(obj)
    return dict(info.get("run", {})) if info is not None else {}


def has_segmentation(obj) -> bool:
    """Whether ``obj`` holds a segmentation; readable in edit mode too (an object property)."""
    return bookkeeping(obj) is not None


def read_segmentation(obj, mesh=None) -> dict | None:
    """The segmentation written on ``obj``, or None. Object mode only: in edit mode the face
    attributes live in the BMesh and read as empty, unless ``mesh`` is a copy of the edit mesh
    to read them from (``edit_mesh_copy``).

    Returns {"parts": [str], "face_labels": (P,) int32, "face_confidence": (P,) float32,
    "groups": [vertex group name per part], "materials": [material name per part]}; the run
    record is read by ``read_run``.
    """
    info = bookkeeping(obj)
    if info is not None and obj.mode == "EDIT" and mesh is None:
        raise ValueError(f"{obj.name!r} is in edit mode: part labels are read in object mode")
    mesh = (mesh or obj.data) if info is not None else None
    if info is None or PART_ATTRIBUTE not in mesh.attributes:
        return None
    count = len(mesh.polygons)
    labels = np.empty(count, dtype=np.int32)
    mesh.attributes[PART_ATTRIBUTE].data.foreach_get("value", labels)
    confidence = np.zeros(count, dtype=np.float32)
    if CONFIDENCE_ATTRIBUTE in mesh.attributes:
        mesh.attributes[CONFIDENCE_ATTRIBUTE].data.foreach_get("value", confidence)
    return {
        "parts": list(info["parts"]),
        "face_labels": labels,
        "face_confidence": confidence,
        "groups": list(info["groups"]),
        "materials": list(info["materials"]),
    }


@dataclass
class PartRow:
    """One line of the Results panel."""

    index: int
    name: str
    face_count: int
    mean_confidence: float  # over the part's faces; 0 when it has none
    material_name: str | None  # the material in the part's slot, or None


# Rows last read in object mode, per object (session_uid). In edit mode face attributes are not
# readable (they live in the BMesh), so the panel shows these; names only, no bpy references,
# which undo could free.
_ROWS_READ: dict[int, list[PartRow]] = {}


def _face_array(mesh, prop: str, dtype) -> np.ndarray:
    values = np.empty(len(mesh.polygons), dtype)
    mesh.polygons.foreach_get(prop, values)
    return values


def result_rows(obj, mesh=None) -> list[PartRow] | None:
    """The Results panel's rows for ``obj``, or None when it has no segmentation. In edit mode:
    the rows read last in object mode or after an undo (``known_labels.refresh_after_undo``;
    None when there are none), unless ``mesh`` (see ``read_segmentation``)."""
    if obj is None or obj.type != "MESH":
        return None
    if obj.mode == "EDIT" and mesh is None:
        return _ROWS_READ.get(obj.session_uid)
    result = read_segmentation(obj, mesh)
    if result is None:
        _ROWS_READ.pop(obj.session_uid, None)
        return None
    labels = np.asarray(result["face_labels"])
    confidence = np.asarray(result["face_confidence"], np.float32)
    parts = list(result["parts"])
    counts = np.bincount(labels[labels >= 0], minlength=len(parts))[: len(parts)]
    sums = np.bincount(labels[labels >= 0], weights=confidence[labels >= 0],
                       minlength=len(parts))[: len(parts)]  # fmt: skip
    material_index = _face_array(mesh or obj.data, "material_index", np.int32)
    rows = []
    for i, name in enumerate(parts):
        material = None
        if counts[i]:
            # The slot of the part's first face: whatever the slot is called, it is the part's.
            slot = int(material_index[np.argmax(labels == i)])
            if slot < len(obj.material_slots) and obj.material_slots[slot].material:
                material = obj.material_slots[slot].material.name
        mean = float(sums[i] / counts[i]) if counts[i] else 0.0
        rows.append(PartRow(i, name, int(counts[i]), mean, material))
    _ROWS_READ[obj.session_uid] = rows
    return rows


def edit_mesh_copy(obj) -> bpy.types.Mesh:
    """A NEW mesh with what ``obj``'s edit mesh holds now (attributes too), to read with
    foreach_get in edit mode; the caller removes it (``bpy.data.meshes.remove``)."""
    copy = bpy.data.meshes.new("PartDistill edit mesh reading")
    bmesh.from_edit_mesh(obj.data).to_mesh(copy)
    return copy


def part_face_mask(obj, part_index: int) -> np.ndarray:
    """(P,) bool: the faces labelled ``part_index`` -> ValueError when there is no result."""
    result = _require_result(obj)
    if not 0 <= part_index < len(result["parts"]):
        raise ValueError(f"there is no part number {part_index} on {obj.name!r}")
    return np.asarray(result["face_labels"]) == part_index


def low_confidence_mask(obj, threshold: float) -> np.ndarray:
    """(P,) bool: the faces whose confidence is below ``threshold``."""
    result = _require_result(obj)
    return np.asarray(result["face_confidence"]) < threshold


def _require_result(obj) -> dict:
    # read_segmentation refuses edit mode, where the labels cannot be read, in plain words.
    result = read_segmentation(obj) if obj is not None and obj.type == "MESH" else None
    if result is None:
        name = obj.name if obj is not None else "nothing"
        raise ValueError(f"{name!r} has no segmentation: run Segment Parts first")
    return result


def _elements_of(mesh, face_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(vertex mask, edge mask) of the vertices and edges of the faces in ``face_mask``."""
    loop_polygon, loop_vertex, loop_edge = loop_arrays(mesh)
    in_mask = face_mask[loop_polygon]
    vertices = np.zeros(len(mesh.vertices), bool)
    edges = np.zeros(len(mesh.edges), bool)
    vertices[loop_vertex[in_mask]] = True
    edges[loop_edge[in_mask]] = True
    return vertices, edges


def _repair_edge_selection(mesh) -> None:
    """Blender 5.0.1 makes a mesh built through the API (``update(calc_edges=True)``,
    ``from_pydata``) with an edge selection ".select_edge" of type INT32_2D instead of
    BOOLEAN, and writing edges' "select" then crashes Blender. Such a layer holds no real
    selection: remove it, and the next write makes a boolean one."""
    layer = mesh.attributes.get(".select_edge")
    if layer is not None and layer.data_type != "BOOLEAN":
        mesh.attributes.remove(layer)


def select_faces(mesh, face_mask: np.ndarray) -> None:
    """Select exactly the faces in ``face_mask`` (and their vertices and edges). Object mode."""
    face_mask = np.asarray(face_mask, bool)
    _repair_edge_selection(mesh)
    vertices, edges = _elements_of(mesh, face_mask)
    mesh.polygons.foreach_set("select", face_mask)
    mesh.edges.foreach_set("select", edges)
    mesh.vertices.foreach_set("select", vertices)
    mesh.update()


def hide_faces(mesh, hidden: np.ndarray) -> None:
    """Hide exactly the faces in ``hidden``; a vertex or edge is hidden when every face using
    it is hidden, so the visible faces stay whole. Object mode; shows in edit mode."""
    hidden = np.asarray(hidden, bool)
    _repair_edge_selection(mesh)
    visible_vertices, visible_edges = _elements_of(mesh, ~hidden)
    any_vertices, any_edges = _elements_of(mesh, np.ones_like(hidden))
    mesh.polygons.foreach_set("hide", hidden)
    mesh.edges.foreach_set("hide", any_edges & ~visible_edges)
    mesh.vertices.foreach_set("hide", any_vertices & ~visible_vertices)
    # Hidden elements must not stay selected (edit mode would otherwise act on them).
    for elements, mask in ((mesh.polygons, hidden), (mesh.edges, any_edges & ~visible_edges),
                           (mesh.vertices, any_vertices & ~visible_vertices)):  # fmt: skip
        selected = np.empty(len(elements), bool)
        elements.foreach_get("select", selected)
        elements.foreach_set("select", selected & ~mask)
    mesh.update()


def reveal_all(mesh) -> None:
    """Show every face, edge and vertex again."""
    for elements in (mesh.polygons, mesh.edges, mesh.vertices):
        elements.foreach_set("hide", np.zeros(len(elements), bool))
    mesh.update()
