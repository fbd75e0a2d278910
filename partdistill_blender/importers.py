"""Mesh file importers: a robust numpy OFF reader, and Blender's own importers for the rest.

Polygon order is preserved (the file's face order) so per-face labels stored beside a mesh
file (e.g. the Princeton Segmentation Benchmark's) index the imported polygons directly.
"""

from __future__ import annotations

import os

import bpy
import numpy as np

SUPPORTED_EXTENSIONS = (".off", ".obj", ".ply", ".stl", ".gltf", ".glb")


def _off_error(path, why: str) -> ValueError:
    return ValueError(f"{path}: not a valid OFF file: {why}")


def _content_lines(text: str) -> list[str]:
    """Non-empty lines with '#' comments removed."""
    lines = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            lines.append(line)
    return lines


def _parse_vertices(path, lines: list[str], count: int) -> np.ndarray:
    # Fast path: exactly three numbers per line; otherwise (colours, normals) take the first 3.
    tokens = " ".join(lines).split()
    if len(tokens) == 3 * count:
        try:
            return np.array(tokens, dtype=np.float64).reshape(count, 3)
        except ValueError as error:
            raise _off_error(path, f"bad vertex coordinate ({error})") from None
    rows = [line.split()[:3] for line in lines]
    if any(len(row) < 3 for row in rows):
        raise _off_error(path, "a vertex line has fewer than 3 coordinates")
    try:
        return np.array(rows, dtype=np.float64)
    except ValueError as error:
        raise _off_error(path, f"bad vertex coordinate ({error})") from None


def _parse_faces(path, lines: list[str]):
    try:
        rows = [np.array(line.split(), dtype=np.int64) for line in lines]
    except ValueError:
        # Face lines may carry float colours after the indices: parse the leading count only.
        rows = []
        for line in lines:
            tokens = line.split()
            try:
                size = int(tokens[0])
                rows.append(np.array([size, *map(int, tokens[1 : 1 + size])], dtype=np.int64))
            except (ValueError, IndexError):
                raise _off_error(path, f"bad face line {line!r}") from None
    faces = []
    for row in rows:
        size = int(row[0])
        if size < 3:
            raise _off_error(path, f"a face has {size} vertices (at least 3 are needed)")
        if len(row) < size + 1:
            raise _off_error(path, f"a face lists {len(row) - 1} of its {size} vertices")
        faces.append(row[1 : 1 + size])
    return faces


def read_off(path) -> tuple[np.ndarray, np.ndarray | list[np.ndarray]]:
    """Read an OFF file.

    Returns ``vertices`` (V, 3) float64 and ``faces``: an (F, k) int64 array when every face
    has k vertices, else a list of F int64 arrays. Faces keep the file's order. Accepts
    comments, a header on its own line or merged with the counts ("OFF 8 6 0"), and extra
    per-vertex / per-face values (colours). Raises ValueError("<path>: not a valid OFF file:
    <why>") on anything malformed or truncated.
    """
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError as error:
        raise ValueError(f"{path}: cannot read the file ({error.strerror})") from None
    lines = _content_lines(text)
    if not lines:
        raise _off_error(path, "the file is empty")
    header = lines[0].split()
    if not header[0].upper().endswith("OFF"):
        raise _off_error(path, f"it does not start with 'OFF' (found {header[0][:20]!r})")
    counts = header[1:]
    body = lines[1:]
    if not counts:
        if not body:
            raise _off_error(path, "the vertex and face counts are missing")
        counts, body = body[0].split(), body[1:]
    try:
        num_vertices, num_faces = int(counts[0]), int(counts[1])
    except (ValueError, IndexError):
        raise _off_error(path, f"bad counts line {' '.join(counts)!r}") from None
    if num_vertices < 0 or num_faces < 0:
        raise _off_error(path, "negative vertex or face count")
    if len(body) < num_vertices + num_faces:
        raise _off_error(
            path,
            f"truncated: {num_vertices} vertices and {num_faces} faces announced, "
            f"{len(body)} lines found",
        )
    vertices = _parse_vertices(path, body[:num_vertices], num_vertices)
    if not np.isfinite(vertices).all():
        raise _off_error(path, "a vertex coordinate is not a finite number")
    faces = _parse_faces(path, body[num_vertices : num_vertices + num_faces])
    sizes = {len(face) for face in faces}
    if faces:
        flat = np.concatenate(faces)
        if flat.min() < 0 or flat.max() >= num_vertices:
            raise _off_error(path, f"a face index is outside 0..{num_vertices - 1}")
    if len(sizes) <= 1:
        size = sizes.pop() if sizes else 3
        return vertices, np.array(faces, dtype=np.int64).reshape(len(faces), size)
    return vertices, faces


def mesh_from_arrays(name: str, vertices: np.ndarray, faces) -> bpy.types.Mesh:
    """A new mesh datablock from (V, 3) vertices and faces ((F, k) array or list of arrays).

    Polygon i is faces[i]; built with foreach_set (no per-face Python loop over bpy data).
    """
    if isinstance(faces, np.ndarray):
        sizes = np.full(len(faces), faces.shape[1] if faces.ndim == 2 else 0, dtype=np.int64)
        flat = faces.reshape(-1)
    else:
        sizes = np.array([len(face) for face in faces], dtype=np.int64)
        flat = np.concatenate(faces) if faces else np.zeros(0, np.int64)
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(len(vertices))
    mesh.vertices.foreach_set("co", np.asarray(vertices, np.float32).reshape(-1))
    mesh.loops.add(len(flat))
    mesh.loops.foreach_set("vertex_index", flat.astype(np.int32))
    mesh.polygons.add(len(sizes))
    starts = np.zeros(len(sizes), dtype=np.int32)
    np.cumsum(sizes[:-1], out=starts[1:])
    mesh.polygons.foreach_set("loop_start", starts)
    mesh.update(calc_edges=True)
    return mesh


def _import_off(path: str, up_axis: str) -> list[bpy.types.Object]:
    vertices, faces = read_off(path)
    if up_axis == "Y":  # as Blender's OBJ importer does: file (x, y, z) -> Blender (x, -z, y)
        vertices = np.stack([vertices[:, 0], -vertices[:, 2], vertices[:, 1]], axis=1)
    if len(faces) == 0:
        return []
    name = os.path.splitext(os.path.basename(path))[0]
    mesh = mesh_from_arrays(name, vertices, faces)
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.collection.objects.link(obj)
    return [obj]


def _run_blender_importer(path: str, extension: str) -> None:
    if extension == ".obj":
        bpy.ops.wm.obj_import(filepath=path)
    elif extension == ".ply":
        bpy.ops.wm.ply_import(filepath=path)
    elif extension == ".stl":
        bpy.ops.wm.stl_import(filepath=path)
    else:
        bpy.ops.import_scene.gltf(filepath=path)


def import_mesh_file(path, off_up_axis: str = "Y") -> list[bpy.types.Object]:
    """Import a mesh file into the current scene; return the new mesh objects only.

    OFF uses ``read_off``; OBJ, PLY, STL and glTF/GLB use Blender's importers. For OFF, OBJ and
    PLY the polygon order equals the file's face order. OFF has no axis convention; most
    datasets (PSB, ShapeNet) are Y-up, so ``off_up_axis="Y"`` turns them Z-up as Blender's OBJ
    importer does ("Z" keeps coordinates as they are). Raises ValueError for a missing file,
    an unsupported extension, a malformed file or a file that yields no mesh.
    """
    path = os.fspath(path)
    extension = os.path.splitext(path)[1].lower()
    if extension not in SUPPORTED_EXTENSIONS:
        raise ValueError(
            f"{path}: unsupported file type {extension or '(none)'!r}; "
            f"supported: {', '.join(SUPPORTED_EXTENSIONS)}"
        )
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such file")
    if extension == ".off":
        if off_up_axis not in ("Y", "Z"):
            raise ValueError(f"off_up_axis must be 'Y' or 'Z', not {off_up_axis!r}")
        objects = _import_off(path, off_up_axis)
    else:
        before = set(bpy.data.objects)
        try:
            _run_blender_importer(path, extension)
        except RuntimeError as error:
            raise ValueError(f"{path}: Blender could not import it ({error})") from None
        new = [obj for obj in bpy.data.objects if obj not in before]
        objects = [obj for obj in new if obj.type == "MESH"]
        if not objects:
            for obj in new:  # empties, cameras or lights alone are not what was asked for
                bpy.data.objects.remove(obj)
    objects = [obj for obj in objects if len(obj.data.polygons) > 0]
    if not objects:
        raise ValueError(f"{path}: the file holds no mesh with faces")
    return objects
