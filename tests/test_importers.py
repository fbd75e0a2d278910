"""Importers: the OFF reader, and face order through Blender's OBJ/PLY importers."""

import bpy
import numpy as np
import pytest
from conftest import SHARED_DATA
from partdistill.partdistill_blender import importers

CHAIR = SHARED_DATA / "psb_dev" / "Chair" / "101.off"


def _reset():
    bpy.ops.wm.read_factory_settings(use_empty=True)


def _polygons(mesh):
    """List of per-polygon vertex index arrays, in Blender's polygon order."""
    loop_vertices = np.empty(len(mesh.loops), dtype=np.int32)
    mesh.loops.foreach_get("vertex_index", loop_vertices)
    starts = np.empty(len(mesh.polygons), dtype=np.int32)
    mesh.polygons.foreach_get("loop_start", starts)
    totals = np.empty(len(mesh.polygons), dtype=np.int32)
    mesh.polygons.foreach_get("loop_total", totals)
    return [loop_vertices[s : s + t] for s, t in zip(starts, totals, strict=True)]


def _scripted_mesh():
    """Vertices with distinct distances from the origin (so any axis convention keeps them
    identifiable) and faces of sizes 3, 4 and 5 in a scrambled order."""
    rng = np.random.default_rng(7)
    directions = rng.normal(size=(12, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    vertices = directions * (1.0 + 0.25 * np.arange(12))[:, None]
    faces = [[0, 1, 2], [3, 4, 5, 6], [7, 8, 9, 10, 11], [2, 5, 9], [11, 0, 6, 3], [1, 8, 4]]
    return vertices, faces


def _file_faces_from_blender(mesh, file_vertices):
    """Blender polygons as lists of FILE vertex indices, matched by distance from the origin."""
    coordinates = np.empty(len(mesh.vertices) * 3, dtype=np.float32)
    mesh.vertices.foreach_get("co", coordinates)
    norms = np.linalg.norm(coordinates.reshape(-1, 3), axis=1)
    file_norms = np.linalg.norm(file_vertices, axis=1)
    to_file = np.abs(norms[:, None] - file_norms[None, :]).argmin(axis=1)
    return [to_file[polygon].tolist() for polygon in _polygons(mesh)]


def test_off_reader_handles_comments_merged_header_and_mixed_polygons(tmp_path):
    path = tmp_path / "mixed.off"
    path.write_text(
        "# a comment before the header\n"
        "OFF 5 3 0  # counts on the header line\n"
        "0 0 0\n1 0 0\n1 1 0\n\n0 1 0   # a vertex with a comment\n0.5 0.5 1\n"
        "4 0 1 2 3\n3 0 1 4 255 0 0\n3 2 3 4\n"
    )
    vertices, faces = importers.read_off(path)
    assert vertices.shape == (5, 3)
    assert [list(f) for f in faces] == [[0, 1, 2, 3], [0, 1, 4], [2, 3, 4]]


@pytest.mark.parametrize(
    "text, why",
    [
        ("", "empty"),
        ("PLY\n3 1 0\n", "does not start with 'OFF'"),
        ("OFF\n3 1 0\n0 0 0\n1 0 0\n", "truncated"),
        ("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n", "outside 0..2"),
        ("OFF\n3 1 0\n0 0 0\n1 zero 0\n0 1 0\n3 0 1 2\n", "bad vertex coordinate"),
        ("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n4 0 1 2\n", "lists 3 of its 4"),
        ("OFF\nthree 1 0\n", "bad counts"),
    ],
)
def test_corrupt_off_raises_clear_message(tmp_path, text, why):
    path = tmp_path / "bad.off"
    path.write_text(text)
    with pytest.raises(ValueError, match=f"bad.off: not a valid OFF file: .*{why}"):
        importers.read_off(path)
    _reset()
    with pytest.raises(ValueError, match="not a valid OFF file"):
        importers.import_mesh_file(path)
    assert len(bpy.data.objects) == 0 and len(bpy.data.meshes) == 0


@pytest.mark.skipif(not CHAIR.exists(), reason=f"dev meshes not present at {CHAIR}")
def test_off_import_keeps_file_face_order():
    _reset()
    vertices, faces = importers.read_off(CHAIR)
    header_faces = int(CHAIR.read_text().split("\n")[1].split()[1])
    assert faces.shape == (header_faces, 3)
    (obj,) = importers.import_mesh_file(CHAIR)
    assert obj.name in bpy.context.scene.objects
    assert np.array_equal(np.stack(_polygons(obj.data)), faces)
    coordinates = np.empty(len(obj.data.vertices) * 3, dtype=np.float32)
    obj.data.vertices.foreach_get("co", coordinates)
    # Y-up file turned Z-up: (x, y, z) -> (x, -z, y).
    expected = np.stack([vertices[:, 0], -vertices[:, 2], vertices[:, 1]], axis=1)
    assert np.allclose(coordinates.reshape(-1, 3), expected, atol=1e-5)


def test_obj_import_keeps_file_face_order(tmp_path):
    vertices, faces = _scripted_mesh()
    path = tmp_path / "scrambled.obj"
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in vertices]
    lines += ["f " + " ".join(str(i + 1) for i in face) for face in faces]
    path.write_text("\n".join(lines) + "\n")
    _reset()
    (obj,) = importers.import_mesh_file(path)
    assert _file_faces_from_blender(obj.data, vertices) == faces


def test_ply_import_keeps_file_face_order(tmp_path):
    vertices, faces = _scripted_mesh()
    path = tmp_path / "scrambled.ply"
    header = [
        "ply",
        "format ascii 1.0",
        f"element vertex {len(vertices)}",
        "property float x",
        "property float y",
        "property float z",
        f"element face {len(faces)}",
        "property list uchar int vertex_indices",
        "end_header",
    ]
    body = [f"{x:.6f} {y:.6f} {z:.6f}" for x, y, z in vertices]
    body += [f"{len(face)} " + " ".join(map(str, face)) for face in faces]
    path.write_text("\n".join(header + body) + "\n")
    _reset()
    (obj,) = importers.import_mesh_file(path)
    assert _file_faces_from_blender(obj.data, vertices) == faces


def test_stl_import_and_only_new_meshes_returned(tmp_path):
    path = tmp_path / "tetra.stl"
    corners = [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1)]
    triangles = [(0, 2, 1), (0, 1, 3), (0, 3, 2), (1, 2, 3)]
    text = ["solid tetra"]
    for triangle in triangles:
        text += ["facet normal 0 0 0", "outer loop"]
        text += [f"vertex {' '.join(map(str, corners[i]))}" for i in triangle]
        text += ["endloop", "endfacet"]
    path.write_text("\n".join(text + ["endsolid tetra"]) + "\n")
    _reset()
    existing = bpy.data.objects.new("Existing", bpy.data.meshes.new("Existing"))
    bpy.context.collection.objects.link(existing)
    (obj,) = importers.import_mesh_file(path)
    assert obj is not existing and len(obj.data.polygons) == 4


def test_gltf_round_trip(tmp_path):
    _reset()
    bpy.ops.mesh.primitive_cube_add()
    path = tmp_path / "cube.glb"
    bpy.ops.export_scene.gltf(filepath=str(path), export_format="GLB")
    _reset()
    objects = importers.import_mesh_file(path)
    assert len(objects) == 1 and objects[0].type == "MESH"
    assert len(objects[0].data.polygons) > 0


def test_bad_paths_raise_clear_messages(tmp_path):
    with pytest.raises(ValueError, match=r"unsupported file type '\.fbx'"):
        importers.import_mesh_file(tmp_path / "model.fbx")
    with pytest.raises(ValueError, match="no such file"):
        importers.import_mesh_file(tmp_path / "missing.obj")
    empty = tmp_path / "empty.obj"
    empty.write_text("# nothing here\n")
    _reset()
    with pytest.raises(ValueError, match="holds no mesh with faces"):
        importers.import_mesh_file(empty)
