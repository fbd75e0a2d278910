"""The evaluated mesh of an object, in world space, with each face's original polygon index.

Modifiers (Array, Subdivision, Mirror, ...) create faces the object's mesh does not have.
A temporary FLOAT face attribute holding ``polygon index + 1`` on the user's mesh rides through
the modifier stack, so every evaluated face knows the polygon it came from (0 = none).
"""

from __future__ import annotations

import bpy
import numpy as np

from ..backend.contracts import MeshGeometry

# Name of the face attribute that carries ``original polygon index + 1`` on baked meshes.
POLYGON_INDEX_ATTRIBUTE = "partdistill_polygon_index_plus_one"


def _require_mesh_object(obj) -> None:
    if obj is None or obj.type != "MESH":
        kind = "nothing" if obj is None else f"a {obj.type.lower()} object"
        raise ValueError(f"{getattr(obj, 'name', 'object')!r} is {kind}, not a mesh object")
    if obj.mode == "EDIT":
        raise ValueError(f"{obj.name!r} is in Edit Mode: switch to Object Mode first")
    if len(obj.data.polygons) == 0:
        raise ValueError(f"{obj.name!r} has no faces")


def baked_evaluated_mesh(obj, depsgraph=None) -> bpy.types.Mesh:
    """A NEW mesh datablock: ``obj`` evaluated (modifiers applied), in world space.

    Its FLOAT face attribute ``POLYGON_INDEX_ATTRIBUTE`` holds, per face, the index + 1 of the
    polygon of ``obj.data`` it came from (0 for faces a modifier created from nothing). The
    temporary attribute on ``obj.data`` is removed before returning, also on error, so the
    user's mesh ends as it was. The caller removes the returned mesh
    (``bpy.data.meshes.remove``).
    """
    _require_mesh_object(obj)
    if depsgraph is None:
        depsgraph = bpy.context.evaluated_depsgraph_get()
    mesh = obj.data
    if POLYGON_INDEX_ATTRIBUTE in mesh.attributes:  # left over from a crash: not the user's
        mesh.attributes.remove(mesh.attributes[POLYGON_INDEX_ATTRIBUTE])
    attribute = mesh.attributes.new(POLYGON_INDEX_ATTRIBUTE, "FLOAT", "FACE")
    try:
        values = np.arange(1, len(mesh.polygons) + 1, dtype=np.float32)
        attribute.data.foreach_set("value", values)
        mesh.update()
        depsgraph.update()
        evaluated = obj.evaluated_get(depsgraph)
        baked = bpy.data.meshes.new_from_object(
            evaluated, preserve_all_data_layers=True, depsgraph=depsgraph
        )
        matrix = evaluated.matrix_world.copy()
        baked.transform(matrix)
        if matrix.is_negative:  # a mirroring transform turns faces inside out
            baked.flip_normals()
        baked.update()
        if POLYGON_INDEX_ATTRIBUTE not in baked.attributes:
            bpy.data.meshes.remove(baked)
            raise ValueError(
                f"{obj.name!r}: its modifiers drop face attributes, so faces cannot be traced "
                "back to the object's polygons: apply them (Object > Apply > Visual Geometry "
                "to Mesh) or turn them off in the viewport, and run again"
            )
        if len(baked.polygons) == 0:  # a Mask or Weld modifier can leave nothing to see
            bpy.data.meshes.remove(baked)
            raise ValueError(
                f"{obj.name!r}: its modifiers leave no faces to render: turn off the modifier "
                "that removes them and run again"
            )
        return baked
    finally:
        leftover = mesh.attributes.get(POLYGON_INDEX_ATTRIBUTE)
        if leftover is not None:
            mesh.attributes.remove(leftover)
        mesh.update()
        depsgraph.update()


def evaluated_polygon_origin(mesh) -> np.ndarray:
    """(F,) int32: for each face of ``mesh``, its original polygon index (-1 = none).

    Reads ``POLYGON_INDEX_ATTRIBUTE`` (see ``baked_evaluated_mesh``); a mesh without it maps
    each face to itself.
    """
    count = len(mesh.polygons)
    attribute = mesh.attributes.get(POLYGON_INDEX_ATTRIBUTE)
    if attribute is None:
        return np.arange(count, dtype=np.int32)
    values = np.empty(count, dtype=np.float32)
    attribute.data.foreach_get("value", values)
    return (np.rint(values) - 1).astype(np.int32)


def mesh_geometry(mesh, num_polygons: int) -> MeshGeometry:
    """Triangulated plain-data geometry of a (baked) mesh.

    vertices (V, 3) float32 in the mesh's coordinates (world space for a baked mesh);
    triangles (T, 3) int32 from the loop triangles; triangle_polygons (T,) int32 original
    polygon index in [0, num_polygons). Triangles with no original polygon (created by a
    modifier from nothing) are left out.
    """
    mesh.calc_loop_triangles()
    vertices = np.empty(len(mesh.vertices) * 3, dtype=np.float32)
    mesh.vertices.foreach_get("co", vertices)
    count = len(mesh.loop_triangles)
    triangles = np.empty(count * 3, dtype=np.int32)
    mesh.loop_triangles.foreach_get("vertices", triangles)
    triangle_faces = np.empty(count, dtype=np.int32)
    mesh.loop_triangles.foreach_get("polygon_index", triangle_faces)
    triangle_polygons = evaluated_polygon_origin(mesh)[triangle_faces]
    keep = (triangle_polygons >= 0) & (triangle_polygons < num_polygons)
    geometry = MeshGeometry(
        vertices=vertices.reshape(-1, 3),
        triangles=triangles.reshape(-1, 3)[keep],
        triangle_polygons=triangle_polygons[keep],
        num_polygons=int(num_polygons),
    )
    geometry.validate()
    return geometry


def loop_arrays(mesh) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(loop polygon, loop vertex, loop edge) of every loop of ``mesh``, each (L,) int64.

    A polygon's loops are contiguous and polygons list them in order (Blender's face offsets),
    so the polygon of each loop follows from the polygons' loop counts.
    """
    totals = np.empty(len(mesh.polygons), np.int64)
    mesh.polygons.foreach_get("loop_total", totals)
    loop_vertex = np.empty(len(mesh.loops), np.int64)
    loop_edge = np.empty(len(mesh.loops), np.int64)
    mesh.loops.foreach_get("vertex_index", loop_vertex)
    mesh.loops.foreach_get("edge_index", loop_edge)
    return np.repeat(np.arange(len(totals)), totals), loop_vertex, loop_edge
