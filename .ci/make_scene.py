"""Build a chair of boxes (seat, back, four legs) with its true part per face, and save it.

    blender --background --python .ci/make_scene.py -- OUT.blend
Writes OUT.blend and, beside it, scene_truth.json {"object", "parts", "labels"}: labels come
from an INT face attribute "partdistill_ground_truth" that the simulated teacher reads.
"""

import json
import pathlib
import sys

import bmesh
import bpy
import numpy as np
from mathutils import Matrix

PARTS = ["seat", "back", "leg"]
# (part, centre, size) of each box, in metres.
BOXES = [
    (0, (0.0, 0.0, 0.45), (0.5, 0.5, 0.06)),
    (1, (0.0, 0.22, 0.8), (0.5, 0.06, 0.64)),
    (2, (-0.21, -0.21, 0.21), (0.06, 0.06, 0.42)),
    (2, (0.21, -0.21, 0.21), (0.06, 0.06, 0.42)),
    (2, (-0.21, 0.21, 0.21), (0.06, 0.06, 0.42)),
    (2, (0.21, 0.21, 0.21), (0.06, 0.06, 0.42)),
]

out = pathlib.Path(sys.argv[sys.argv.index("--") + 1])
bpy.ops.wm.read_factory_settings(use_empty=True)
bm = bmesh.new()
labels = []
for part, centre, size in BOXES:
    before = len(bm.faces)
    matrix = Matrix.Translation(centre) @ Matrix.Diagonal((*size, 1.0))
    result = bmesh.ops.create_cube(bm, size=1.0, matrix=matrix)
    edges = list({e for v in result["verts"] for e in v.link_edges})
    bmesh.ops.subdivide_edges(bm, edges=edges, cuts=3, use_grid_fill=True)
    bm.faces.ensure_lookup_table()
    labels += [part] * (len(bm.faces) - before)
mesh = bpy.data.meshes.new("Chair")
bm.to_mesh(mesh)
bm.free()
truth = np.asarray(labels, dtype=np.int32)
assert len(truth) == len(mesh.polygons)
attribute = mesh.attributes.new("partdistill_ground_truth", "INT", "FACE")
attribute.data.foreach_set("value", truth)
obj = bpy.data.objects.new("Chair", mesh)
bpy.context.scene.collection.objects.link(obj)
bpy.context.view_layer.objects.active = obj
obj.select_set(True)
bpy.ops.wm.save_as_mainfile(filepath=str(out))
truth_path = out.with_name("scene_truth.json")
truth_path.write_text(json.dumps({"object": obj.name, "parts": PARTS, "labels": truth.tolist()}))
print(f"saved {out}: {len(mesh.polygons)} faces, parts {PARTS}")
