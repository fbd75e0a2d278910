"""1M polygons through the batch, end to end: time, peak memory and where they go.

Usage: python benchmarks/bench_million.py [--scale 18] [--views 10] [--resolution 224]
       [--mode distill]

Builds the demo chair in bpy with every box's grid divisions times ``--scale`` (18: about
0.95M quads, each with the chair's ground-truth part), then runs the batch's own entry point
(``batch.main`` with ``--objects``, the simulated teacher, ``--labels-out`` and
``--output FILE.blend``) in this process, so the figures are what a user of the batch pays.
Prints the wall seconds, the peak RSS of this process and its children
(``resource.getrusage``), the batch's stage seconds (import, render, compute, write), the
compute stages' own seconds (teacher, knowledge, features, student, refine, labels), and a
profile of the functions that cost most (the Blender half's, and inside the method's hot
spots): calls, seconds and how far each raised the peak RSS (nested calls count in both).
Last, Chair 101 by each faster path against the exact one it replaced: the polygon maps, and
the polygons' shape descriptors (interpolated above config.exact_descriptors_max_polygons).
"""

import argparse
import functools
import pathlib
import resource
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHAIR_101 = ROOT.parent / "shared" / "data" / "psb_dev" / "Chair" / "101.off"
sys.path.insert(0, str(ROOT))
import load_repo  # noqa: E402

# (module, attribute path) of the functions profiled; class methods as "Class.method".
PROFILED = (
    ("partdistill_blender.geometry", "baked_evaluated_mesh"),
    ("partdistill_blender.geometry", "mesh_geometry"),
    ("partdistill_blender.render", "ViewRenderer._build"),
    ("partdistill_blender.render", "ViewRenderer.render_rgb"),
    ("partdistill_blender.render", "ViewRenderer.render_polygon_map"),
    ("partdistill_blender.ground_truth", "simulated_teacher_truth"),
    ("partdistill_blender.input_checks", "check_objects"),
    ("partdistill_blender.writeback", "write_segmentation"),
    ("partdistill_blender.batch_local", "save_blend"),
    ("partdistill_blender.batch", "write_joint_outputs"),  # wrapped where batch calls it
    ("partdistill_blender.staged_run", "StagedRun.write_results"),
    ("backend.knowledge", "extract_knowledge_units"),
    ("backend.sampling", "sample_surface_points"),
    ("backend.pipeline", "polygon_centroids"),
    ("backend.pipeline", "compute_point_features"),
    ("backend.pipeline", "refine_probabilities"),
    ("backend.pipeline", "fuse_with_votes"),
    ("backend.pipeline", "voted_polygons"),
    # inside the method's hot spots, for whoever owns them (seconds and MB per function)
    ("backend.features", "covariance_descriptors"),
    ("backend.features", "spectral_embedding"),
    ("backend.features", "inverse_distance_weights"),
    ("backend.features", "fourier_features"),
    ("backend.refine", "polygon_edges"),
    ("backend.refine", "polygon_adjacency"),
    ("backend.refine", "crease_pieces"),
    ("backend.refine", "surface_segments"),
    ("backend.refine", "segment_average"),
    ("backend.refine", "mean_field"),
    ("backend.refine", "diffuse"),
    ("backend.refine", "polygon_clusters"),
    ("backend.refine", "solve_with_floor"),
    ("backend.distill", "_query_logits"),
    ("backend.distill", "_probabilities"),
)


def peak_rss_mb() -> float:
    """Peak resident set of this process plus its (waited-for) children, MB (Linux: KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + children) / 1024.0


def profile(table: dict):
    """Wrap the PROFILED functions: seconds and peak-RSS rise per call, summed in ``table``."""
    import importlib

    for module_name, path in PROFILED:
        try:
            module = importlib.import_module(f"partdistill.{module_name}")
        except ImportError:
            continue
        owner, _, name = path.rpartition(".")
        holder = getattr(module, owner) if owner else module
        original = getattr(holder, name, None)
        if original is None:
            continue

        def wrapped(*args, __original=original, __key=f"{module_name}.{path}", **kwargs):
            before, clock = peak_rss_mb(), time.perf_counter()
            try:
                return __original(*args, **kwargs)
            finally:
                entry = table.setdefault(__key, [0, 0.0, 0.0])
                entry[0] += 1
                entry[1] += time.perf_counter() - clock
                entry[2] += peak_rss_mb() - before

        setattr(holder, name, functools.wraps(original)(wrapped))


def build_chair(scale: int):
    """The demo chair with every grid ``scale`` times finer: same parts, ~2.9k x scale^2 quads."""
    import bpy
    import numpy as np
    from partdistill.partdistill_blender import demo
    from partdistill.partdistill_blender.importers import mesh_from_arrays

    vertices, faces, labels, offset = [], [], [], 0
    for part, centre, size, divisions in demo._CHAIR_BOXES:
        box_vertices, box_faces = demo.subdivided_box(centre, size,
                                                      [d * scale for d in divisions])  # fmt: skip
        vertices.append(box_vertices)
        faces.append(box_faces + offset)
        labels.append(np.full(len(box_faces), demo.DEMO_CHAIR_PARTS.index(part), np.int32))
        offset += len(box_vertices)
    mesh = mesh_from_arrays("Chair", np.concatenate(vertices), np.concatenate(faces))
    attribute = mesh.attributes.new(demo.GROUND_TRUTH_ATTRIBUTE, "INT", "FACE")
    attribute.data.foreach_set("value", np.concatenate(labels))
    obj = bpy.data.objects.new("Chair", mesh)
    bpy.context.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    obj.select_set(True)
    return obj


def chair_101_agreement(views: int, resolution: int) -> None:
    """The one faster path of the Blender half against the exact one it replaced, on Chair 101:
    polygon maps with the index material as no light to sample (emission_sampling NONE, now)
    and as one (AUTO, before). Equal maps give equal labels, so equal pixels are the check."""
    import bpy
    import numpy as np
    from partdistill.backend.config import PartDistillConfig
    from partdistill.partdistill_blender import importers
    from partdistill.partdistill_blender.render import ViewRenderer

    if not CHAIR_101.is_file():
        print(f"Chair 101 agreement: skipped ({CHAIR_101} is not here)")
        return
    bpy.ops.wm.read_factory_settings(use_empty=True)
    (obj,) = importers.import_mesh_file(str(CHAIR_101))
    config = PartDistillConfig(num_views=views, resolution=resolution)
    maps, seconds = {}, {}
    for sampling in ("NONE", "AUTO"):
        with ViewRenderer(obj, config) as renderer:
            material = renderer._id_scene.view_layers[0].material_override
            material.cycles.emission_sampling = sampling
            clock = time.perf_counter()
            maps[sampling] = np.stack([renderer.render_polygon_map(i)
                                       for i in range(len(renderer))])  # fmt: skip
            seconds[sampling] = time.perf_counter() - clock
    areas = np.empty(len(obj.data.polygons), np.float64)
    obj.data.polygons.foreach_get("area", areas)
    fast, exact = maps["NONE"], maps["AUTO"]
    seen_fast, seen_exact = np.unique(fast[fast >= 0]), np.unique(exact[exact >= 0])
    same = np.intersect1d(seen_fast, seen_exact)
    print(f"Chair 101 polygon maps, fast ({seconds['NONE']:.2f} s) against exact "
          f"({seconds['AUTO']:.2f} s): {100 * np.mean(fast == exact):.2f} % of pixels equal; "
          f"polygons seen by both: {100 * areas[same].sum() / areas[seen_exact].sum():.2f} % "
          "of the area the exact maps see")  # fmt: skip


def chair_101_descriptor_agreement(views: int, resolution: int) -> None:
    """The one faster path of the compute half against the exact one, on Chair 101: the
    polygons' local-shape descriptors interpolated from the sampled points' (used above
    config.exact_descriptors_max_polygons) or computed from their own neighbourhoods. Same
    views and teacher predictions (simulated, default profile, seed 0) for both."""
    import numpy as np
    from bench_robustness import FixedPredictions, cache_path, load_cached, render_to_cache
    from partdistill.backend.config import PartDistillConfig
    from partdistill.backend.contracts import ObjectInfo
    from partdistill.backend.metrics import mean_part_iou
    from partdistill.backend.pipeline import segment
    from partdistill.backend.sampling import polygon_areas
    from partdistill.backend.teachers.error_profiles import PROFILES
    from psb_categories import CATEGORIES

    if not CHAIR_101.is_file():
        print(f"Chair 101 descriptor agreement: skipped ({CHAIR_101} is not here)")
        return
    config = PartDistillConfig(teacher="simulated", num_views=views, resolution=resolution)
    render_to_cache([CHAIR_101], config)
    geometry, rendered, truth = load_cached(cache_path(CHAIR_101, config))
    parts = list(CATEGORIES["Chair"][0])
    teacher = PROFILES["default"].teacher(parts, 0)
    teacher.bind(ObjectInfo(face_labels=truth))
    fixed = FixedPredictions(teacher.kind, teacher.predict(rendered))
    areas = polygon_areas(geometry)
    labels, line = {}, []
    for name, limit in (("exact", np.iinfo(np.int64).max), ("interpolated", 0)):
        run = config.replace(exact_descriptors_max_polygons=limit)
        clock = time.perf_counter()
        result = segment(geometry, rendered, fixed, parts, run, ObjectInfo(face_labels=truth))
        labels[name] = result.face_labels
        miou = 100 * mean_part_iou(result.face_labels, truth, areas, len(parts))
        line.append(f"{name} mIoU {miou:.1f} ({time.perf_counter() - clock:.1f} s)")
    same = areas[labels["exact"] == labels["interpolated"]].sum() / areas.sum()
    print(f"Chair 101 polygon descriptors, {', '.join(line)}: labels agree on "
          f"{100 * same:.2f} % of the area (target >= 99 %)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=int, default=18)
    parser.add_argument("--views", type=int, default=10)
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--mode", default="distill")
    args = parser.parse_args()

    started = time.perf_counter()
    load_repo.load()
    import bpy
    from partdistill.backend import manifest
    from partdistill.partdistill_blender import batch, batch_local
    from partdistill.partdistill_blender.demo import DEMO_CHAIR_PARTS

    bpy.ops.wm.read_factory_settings(use_empty=True)
    clock = time.perf_counter()
    obj = build_chair(args.scale)
    built = time.perf_counter() - clock
    polygons = len(obj.data.polygons)
    print(f"mesh: {polygons} polygons, {len(obj.data.vertices)} vertices, built in {built:.1f} s")
    table: dict = {}
    profile(table)
    compute_timings: dict = {}
    original = batch_local.Run.compute_and_write

    def keep_timings(self, staged, label):
        scores = original(self, staged, label)
        for result in staged.results:
            compute_timings.update(result.timings)
        return scores

    batch_local.Run.compute_and_write = keep_timings
    with tempfile.TemporaryDirectory(prefix="bench-million-") as folder:
        folder = pathlib.Path(folder)
        clock = time.perf_counter()
        status = batch.main([
            "--objects", "Chair", "--parts", ", ".join(DEMO_CHAIR_PARTS),
            "--teacher", "simulated", "--ground-truth", "attribute:partdistill_ground_truth",
            "--views", str(args.views), "--resolution", str(args.resolution), "--mode", args.mode,
            "--labels-out", str(folder / "labels.json"), "--output", str(folder / "out.blend"),
            "--manifest", str(folder / "manifest.jsonl"), "--quiet",
        ])  # fmt: skip
        batch_seconds = time.perf_counter() - clock
        records = [r for r in manifest.read_records(folder / "manifest.jsonl")
                   if r["event"] == manifest.INPUT]  # fmt: skip
    total = time.perf_counter() - started
    print(f"batch exit status {status}; {polygons} polygons, {args.views} views at "
          f"{args.resolution} px, mode {args.mode}")  # fmt: skip
    print(f"end to end {total:.1f} s (batch.main {batch_seconds:.1f} s, mesh build {built:.1f} s)")
    print(f"peak RSS (self + children): {peak_rss_mb():.0f} MB")
    if records:
        stages = records[-1].get("stages") or {}
        print("batch stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in stages.items()))
        if records[-1].get("miou") is not None:
            print(f"mIoU against the chair's parts: {100 * records[-1]['miou']:.1f}")
    print("compute stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in compute_timings.items()))
    print("profile (calls, seconds, peak-RSS rise MB):")
    for key, (calls, seconds, rise) in sorted(table.items(), key=lambda kv: -kv[1][1]):
        print(f"  {key:60s} {calls:3d} {seconds:7.2f} s {rise:7.0f} MB")
    print(f"CPU seconds (user + system): {_cpu_seconds():.1f}")
    chair_101_agreement(args.views, args.resolution)
    chair_101_descriptor_agreement(args.views, args.resolution)


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


if __name__ == "__main__":
    main()
