"""Time the views of one mesh: RGB and polygon map separately.

Usage: python benchmarks/render_timing.py [MESH.off] [--views 10] [--resolution 224]
       [--engine CYCLES] [--samples 16]
Prints wall seconds for the scene set-up, all RGB renders and all polygon maps, and the
process CPU seconds (a check on whether other load on the machine slowed the run).
"""

import argparse
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import load_repo  # noqa: E402

DEFAULT_MESH = ROOT.parent / "shared" / "data" / "psb_dev" / "Chair" / "101.off"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mesh", nargs="?", default=str(DEFAULT_MESH))
    parser.add_argument("--views", type=int, default=10)
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--engine", default="CYCLES")
    parser.add_argument("--samples", type=int, default=16)
    args = parser.parse_args()

    load_repo.load()
    import bpy
    from partdistill.backend.config import PartDistillConfig
    from partdistill.partdistill_blender import importers, render

    bpy.ops.wm.read_factory_settings(use_empty=True)
    (obj,) = importers.import_mesh_file(args.mesh)
    config = PartDistillConfig(
        num_views=args.views,
        resolution=args.resolution,
        render_engine=args.engine,
        render_samples=args.samples,
    )
    start, cpu_start = time.perf_counter(), time.process_time()
    with render.ViewRenderer(obj, config) as renderer:
        setup = time.perf_counter() - start
        rgb_seconds = map_seconds = 0.0
        for index in range(len(renderer)):
            begin = time.perf_counter()
            renderer.render_rgb(index)
            middle = time.perf_counter()
            renderer.render_polygon_map(index)
            map_seconds += time.perf_counter() - middle
            rgb_seconds += middle - begin
        triangles = len(renderer.geometry.triangles)
    total = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    print(
        f"{pathlib.Path(args.mesh).name}: {triangles} triangles, {args.views} views at "
        f"{args.resolution} px, {args.engine} {args.samples} spp | set-up {setup:.2f} s, "
        f"RGB {rgb_seconds:.2f} s, polygon maps {map_seconds:.2f} s, total {total:.2f} s "
        f"(process CPU {cpu:.2f} s: other load on the machine inflates the wall times)"
    )


if __name__ == "__main__":
    main()
