"""Part mIoU and seconds per shape on the labelled PSB dev meshes, per category and mode.

    python benchmarks/bench_segmentation.py [--categories Chair Table] [--limit 2]

Renders every shape once with Blender (bpy module), runs the simulated teacher (it errs the
way VLMs do: coarse patches, blur, missed and confused parts, noisy confidence), then the three
modes of the paper's ablation on the same views: direct (no student), forward, distill.
Prints area-weighted part mIoU, seconds per shape, a breakdown by stage, and the checks of the
pipeline issue.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from psb_categories import CATEGORIES, DATA, MAN_MADE, shape_paths  # noqa: E402

import load_repo  # noqa: E402

load_repo.load()

import bpy  # noqa: E402
from partdistill.backend.config import MODES, PartDistillConfig  # noqa: E402
from partdistill.backend.contracts import ObjectInfo  # noqa: E402
from partdistill.backend.groundtruth import map_part_names, read_psb_labels  # noqa: E402
from partdistill.backend.metrics import mean_part_iou  # noqa: E402
from partdistill.backend.pipeline import segment  # noqa: E402
from partdistill.backend.sampling import polygon_areas  # noqa: E402
from partdistill.backend.teachers import build_teacher  # noqa: E402
from partdistill.partdistill_blender.importers import import_mesh_file  # noqa: E402
from partdistill.partdistill_blender.render import render_views  # noqa: E402


def evaluate_shape(path: pathlib.Path, parts, renames, config, teacher) -> dict:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    (obj,) = import_mesh_file(str(path))
    t = time.perf_counter()
    geometry, views = render_views(obj, config)
    render_seconds = time.perf_counter() - t
    names, labels = read_psb_labels(
        path.with_name(path.stem + "_labels.txt"), len(obj.data.polygons)
    )
    truth = map_part_names(names, labels, parts, renames)
    areas = polygon_areas(geometry)
    row = {"render": render_seconds, "triangles": len(geometry.triangles)}
    for mode in MODES:
        t = time.perf_counter()
        result = segment(
            geometry, views, teacher, parts, config.replace(mode=mode),
            ObjectInfo(name=path.stem, face_labels=truth),
        )  # fmt: skip
        row[mode] = {
            "miou": 100 * mean_part_iou(result.face_labels, truth, areas, len(parts)),
            "seconds": time.perf_counter() - t,
            "unlabelled": int((result.face_labels < 0).sum()),
            "timings": result.timings,
        }
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--categories", nargs="+", default=list(MAN_MADE), choices=list(CATEGORIES))
    parser.add_argument("--limit", type=int, default=0, help="shapes per category (0 = all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not DATA.exists():
        print(f"no benchmark data at {DATA}")
        return 2
    config = PartDistillConfig(teacher="simulated", seed=args.seed)
    table, rows_all = {}, []
    for category in args.categories:
        parts, renames = CATEGORIES[category]
        teacher = build_teacher("simulated", parts, config=config)
        paths = shape_paths(category, args.limit)
        rows = []
        for path in paths:
            row = evaluate_shape(path, parts, renames, config, teacher)
            rows.append(row)
            print(
                f"{category:9s} {path.stem:>4s} {row['triangles']:6d} tris  render "
                f"{row['render']:5.1f} s  "
                + "  ".join(
                    f"{m} {row[m]['miou']:5.1f} ({row[m]['seconds']:4.1f} s)" for m in MODES
                ),
                flush=True,
            )
        table[category] = rows
        rows_all += rows

    print("\nArea-weighted part mIoU (%) and seconds per shape, simulated teacher")
    print(f"{'category':10s}" + "".join(f"{m:>20s}" for m in MODES) + f"{'render s':>10s}")
    means = {m: [] for m in MODES}
    for category, rows in table.items():
        cells = ""
        for m in MODES:
            miou = np.mean([r[m]["miou"] for r in rows])
            means[m].append(miou)
            cells += f"{miou:12.1f} {np.mean([r[m]['seconds'] for r in rows]):5.1f} s "
        print(f"{category:10s}{cells}{np.mean([r['render'] for r in rows]):9.1f}")
    print(f"{'average':10s}" + "".join(f"{np.mean(means[m]):12.1f}{'':8s}" for m in MODES))

    print("\nStage breakdown, distill, mean seconds per shape")
    stages = sorted({k for r in rows_all for k in r["distill"]["timings"]})
    render = np.mean([r["render"] for r in rows_all])
    print("  render " + f"{render:.2f}  " + "  ".join(
        f"{s} {np.mean([r['distill']['timings'].get(s, 0) for r in rows_all]):.2f}" for s in stages
    ))  # fmt: skip
    big = max(rows_all, key=lambda r: r["triangles"])
    print(f"  largest shape ({big['triangles']} triangles): render {big['render']:.2f} s, "
          f"distillation {big['distill']['seconds']:.2f} s")  # fmt: skip

    gain = np.mean(means["distill"]) - np.mean(means["direct"])
    unlabelled = sum(r[m]["unlabelled"] for r in rows_all for m in ("forward", "distill"))
    checks = [
        (f"distill beats direct by {gain:.1f} mIoU points (>= 10)", gain >= 10),
        (
            f"distill {np.mean(means['distill']):.1f} >= forward {np.mean(means['forward']):.1f}",
            np.mean(means["distill"]) >= np.mean(means["forward"]),
        ),
        (f"{unlabelled} unlabelled polygons in forward/distill (0)", unlabelled == 0),
    ]
    print()
    for text, ok in checks:
        print(f"[{'PASS' if ok else 'FAIL'}] {text}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.stdout.flush()
    os._exit(main())  # bpy can hang in its atexit teardown once torch threads exist
