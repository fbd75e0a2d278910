"""Teacher robustness: direct voting against distillation under many teacher error patterns.

    python benchmarks/bench_robustness.py                       # default matrix
    python benchmarks/bench_robustness.py --full --profiles mix  # all 38 meshes, 3 seeds, in parts
    python benchmarks/bench_robustness.py --ablate               # each choice of the method off
    python benchmarks/bench_robustness.py --candidates           # measured alternatives, not on

Renders every PSB dev mesh once with Blender (bpy module) and caches its views on disk
(``out/bench_cache``), then, for every error profile of the simulated teacher
(``backend/teachers/error_profiles.py``) and teacher seed, runs the teacher once and the
modes on its predictions: direct (the plain confidence-weighted vote), distill, and forward on
the mixes. Work is spread over ``--jobs`` processes (one torch thread each).

Prints per profile: the teacher's own 2D mIoU, mean area-weighted part mIoU per mode,
distill - direct, the worst shape's distill - direct (mean over its seeds), unlabelled polygons,
the expected calibration error of the per-face confidence, and seconds per shape. Then the
issue's checks, and the student's cost on Chair 101 against the paper's plain student.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import pathlib
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from psb_categories import CATEGORIES, DATA, shape_paths  # noqa: E402

import load_repo  # noqa: E402

CACHE = ROOT / "out" / "bench_cache"
DEFAULT_SHAPES_PER_CATEGORY, DEFAULT_SEEDS = 2, 2
FULL_SEEDS = 3
FORWARD_PROFILES = ("mix", "mix-strong")
ECE_BINS = 10


def ablations() -> dict:
    """Config changes that each turn one choice of the method off (``--ablate``)."""
    from partdistill.backend.config import METHOD_ABLATIONS

    return METHOD_ABLATIONS


# ----------------------------------------------------------------------------- rendering


def cache_path(path: pathlib.Path, config) -> pathlib.Path:
    name = f"{path.parent.name}_{path.stem}_{config.resolution}px_{config.num_views}v.npz"
    return CACHE / name


def render_to_cache(paths, config) -> None:
    """Render the meshes not in the cache yet (in this process: it imports bpy)."""
    todo = [p for p in paths if not cache_path(p, config).exists()]
    if not todo:
        return
    import bpy
    from partdistill.backend.groundtruth import map_part_names, read_psb_labels
    from partdistill.partdistill_blender.importers import import_mesh_file
    from partdistill.partdistill_blender.render import render_views

    CACHE.mkdir(parents=True, exist_ok=True)
    for path in todo:
        bpy.ops.wm.read_factory_settings(use_empty=True)
        (obj,) = import_mesh_file(str(path))
        t = time.perf_counter()
        geometry, views = render_views(obj, config)
        parts, renames = CATEGORIES[path.parent.name]
        names, labels = read_psb_labels(
            path.with_name(path.stem + "_labels.txt"), len(obj.data.polygons)
        )
        truth = map_part_names(names, labels, parts, renames)
        target = cache_path(path, config)
        partial = target.with_suffix(".partial.npz")
        np.savez_compressed(
            partial,
            vertices=geometry.vertices, triangles=geometry.triangles,
            triangle_polygons=geometry.triangle_polygons, num_polygons=geometry.num_polygons,
            truth=truth, images=np.stack([v.image for v in views]),
            face_ids=np.stack([v.face_ids for v in views]),
            K=np.stack([v.K for v in views]),
            world_to_camera=np.stack([v.world_to_camera for v in views]),
            render_seconds=time.perf_counter() - t,
        )  # fmt: skip
        os.replace(partial, target)
        print(
            f"rendered {path.parent.name} {path.stem}: {time.perf_counter() - t:.1f} s", flush=True
        )


def load_cached(file: pathlib.Path):
    from partdistill.backend.contracts import MeshGeometry, View

    with np.load(file) as z:
        geometry = MeshGeometry(
            z["vertices"], z["triangles"], z["triangle_polygons"], int(z["num_polygons"])
        )
        views = [
            View(image, ids, k, w2c)
            for image, ids, k, w2c in zip(
                z["images"], z["face_ids"], z["K"], z["world_to_camera"], strict=True
            )
        ]
        return geometry, views, z["truth"].astype(np.int64)


# ----------------------------------------------------------------------------- one task


class FixedPredictions:
    """A teacher that returns predictions made once, so every mode sees the same ones."""

    def __init__(self, kind, predictions):
        self.kind, self.predictions = kind, predictions

    def predict(self, views):
        return self.predictions


def teacher_miou(predictions, views, truth, num_parts) -> float:
    """The pixel teacher's own 2D mIoU over all views (parts in truth or prediction)."""
    inter, union = np.zeros(num_parts), np.zeros(num_parts)
    for probs, view in zip(predictions, views, strict=True):
        on = view.face_ids >= 0
        true = np.where(on, truth[np.clip(view.face_ids, 0, None)], -1)[on]
        pred = probs.argmax(axis=2)[on]
        judged = true >= 0
        true, pred = true[judged], pred[judged]
        for r in range(num_parts):
            inter[r] += np.count_nonzero((pred == r) & (true == r))
            union[r] += np.count_nonzero((pred == r) | (true == r))
    seen = union > 0
    return float(100 * np.mean(inter[seen] / union[seen]))


def expected_calibration_error(confidence, correct, areas) -> float:
    """Area-weighted ECE over ``ECE_BINS`` equal-width confidence bins, in %."""
    bins = np.minimum((confidence * ECE_BINS).astype(int), ECE_BINS - 1)
    total = areas.sum()
    ece = 0.0
    for b in range(ECE_BINS):
        inside = bins == b
        weight = areas[inside].sum()
        if weight > 0:
            accuracy = (areas[inside] * correct[inside]).sum() / weight
            mean_conf = (areas[inside] * confidence[inside]).sum() / weight
            ece += weight / total * abs(accuracy - mean_conf)
    return 100 * ece


def run_task(task: dict) -> dict:
    """One mesh, one profile, one seed: every requested mode on the same teacher predictions."""
    from partdistill.backend.config import PartDistillConfig
    from partdistill.backend.contracts import ObjectInfo
    from partdistill.backend.metrics import mean_part_iou
    from partdistill.backend.pipeline import segment
    from partdistill.backend.sampling import polygon_areas
    from partdistill.backend.teachers.error_profiles import PROFILES

    geometry, views, truth = load_cached(pathlib.Path(task["cache"]))
    profile = PROFILES[task["profile"]]
    parts = list(CATEGORIES[task["category"]][0])
    parts += [f"distractor {k + 1}" for k in range(profile.distractor_parts)]
    teacher = profile.teacher(parts, task["seed"])
    teacher.bind(ObjectInfo(face_labels=truth))
    t = time.perf_counter()
    predictions = teacher.predict(views)
    row = {**task, "teacher_seconds": time.perf_counter() - t}
    row["teacher_miou"] = (
        teacher_miou(predictions, views, truth, len(parts)) if profile.kind == "pixel" else np.nan
    )
    fixed = FixedPredictions(profile.kind, predictions)
    areas = polygon_areas(geometry)
    judged = truth >= 0
    for name, (mode, overrides) in task["runs"].items():
        config = PartDistillConfig(teacher="simulated", seed=task["seed"], mode=mode, **overrides)
        t = time.perf_counter()
        result = segment(geometry, views, fixed, parts, config, ObjectInfo(face_labels=truth))
        labels = result.face_labels
        row[name] = {
            "miou": 100 * mean_part_iou(labels, truth, areas, len(parts)),
            "seconds": time.perf_counter() - t,
            "unlabelled": int((labels < 0).sum()),
            "ece": expected_calibration_error(
                result.face_confidence[judged], labels[judged] == truth[judged], areas[judged]
            ),
            "timings": result.timings,
        }
    return row


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)
    load_repo.load()


# ----------------------------------------------------------------------------- report


def summarise(rows: list[dict], run_names: list[str], profiles: list[str]) -> tuple[list, bool]:
    """Print the table per profile; return the checks (text, passed)."""
    header = (
        f"{'profile':14s}{'2D':>6s}"
        + "".join(f"{n:>{max(9, len(n) + 2)}s}" for n in run_names)
        + f"{'gain':>7s}{'worst':>7s} {'worst shape':14s}{'unlab':>6s}"
        + f"{'ECE dir':>8s}{'ECE dis':>8s}{'s/shape':>8s}"
    )
    print("\nArea-weighted part mIoU (%) per profile; gain = distill - direct; worst = the worst "
          "shape's gain, mean over its seeds")  # fmt: skip
    print(header)
    checks = []
    for profile in profiles:
        mine = [r for r in rows if r["profile"] == profile]
        if not mine:
            continue
        names = [n for n in run_names if n in mine[0]]
        means = {n: np.mean([r[n]["miou"] for r in mine]) for n in names}
        shapes = sorted({(r["category"], r["shape"]) for r in mine})
        per_shape = {
            s: np.mean(
                [r["distill"]["miou"] - r["direct"]["miou"] for r in mine
                 if (r["category"], r["shape"]) == s]
            )
            for s in shapes
        }  # fmt: skip
        worst_shape = min(per_shape, key=per_shape.get)
        gain = means["distill"] - means["direct"]
        unlabelled = sum(r["distill"]["unlabelled"] for r in mine)
        cells = "".join(
            f"{means[n]:>{max(9, len(n) + 2)}.1f}" if n in means else f"{'':>{max(9, len(n) + 2)}s}"
            for n in run_names
        )
        teacher_2d = [r["teacher_miou"] for r in mine if not np.isnan(r["teacher_miou"])]
        teacher_cell = f"{np.mean(teacher_2d):6.1f}" if teacher_2d else f"{'-':>6s}"
        print(
            f"{profile:14s}{teacher_cell}{cells}"
            f"{gain:+7.1f}{per_shape[worst_shape]:+7.1f} {' '.join(worst_shape):14s}"
            f"{unlabelled:6d}{np.mean([r['direct']['ece'] for r in mine]):8.1f}"
            f"{np.mean([r['distill']['ece'] for r in mine]):8.1f}"
            f"{np.mean([r['distill']['seconds'] for r in mine]):8.1f}",
            flush=True,
        )
        checks.append((f"{profile}: distill - direct {gain:+.1f} (>= +10)", gain >= 10))
        checks.append((
            f"{profile}: worst shape {' '.join(worst_shape)} {per_shape[worst_shape]:+.1f} (>= -3)",
            per_shape[worst_shape] >= -3,
        ))  # fmt: skip
        checks.append((f"{profile}: {unlabelled} unlabelled polygons in distill (0)",
                       unlabelled == 0))  # fmt: skip
    return checks, all(ok for _, ok in checks)


def per_category(rows, run_names) -> None:
    print("\nPer category, mean over profiles and seeds")
    print(f"{'category':10s}" + "".join(f"{n:>{max(9, len(n) + 2)}s}" for n in run_names))
    for category in CATEGORIES:
        mine = [r for r in rows if r["category"] == category]
        if mine:
            cells = "".join(
                f"{np.mean([r[n]['miou'] for r in mine if n in r]):>{max(9, len(n) + 2)}.1f}"
                if any(n in r for r in mine) else f"{'':>{max(9, len(n) + 2)}s}"
                for n in run_names
            )  # fmt: skip
            print(f"{category:10s}{cells}")


def student_cost(config) -> None:
    """Student (+ refinement) seconds on Chair 101, default profile, against the paper's plain
    student (every choice of ``METHOD_ABLATIONS`` off), one process, the machine's threads."""
    from partdistill.backend.config import PAPER_STUDENT

    path = DATA / "Chair" / "101.off"
    task = {
        "cache": str(cache_path(path, config)), "category": "Chair", "shape": "101",
        "profile": "default", "seed": 0,
        "runs": {"paper": ("distill", PAPER_STUDENT), "distill": ("distill", {})},
    }  # fmt: skip
    load_repo.load()
    run_task(task)  # warm-up: imports and first-call costs
    row = run_task(task)

    def cost(name):
        timings = row[name]["timings"]
        return timings.get("student", 0.0) + timings.get("refine", 0.0)

    ratio = cost("distill") / max(cost("paper"), 1e-9)
    print(
        f"\nChair 101, student + refinement: {cost('distill'):.2f} s against the paper's plain "
        f"student {cost('paper'):.2f} s: {ratio:.2f}x (target <= 1.3x)"
    )


def main() -> int:
    load_repo.load()
    from partdistill.backend.config import PartDistillConfig
    from partdistill.backend.teachers.error_profiles import PROFILES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="all meshes, 3 seeds")
    parser.add_argument("--profiles", nargs="+", default=list(PROFILES), choices=list(PROFILES))
    parser.add_argument("--categories", nargs="+", default=list(CATEGORIES),
                        choices=list(CATEGORIES))  # fmt: skip
    parser.add_argument("--shapes", type=int, default=0, help="meshes per category")
    parser.add_argument("--seeds", type=int, default=0, help="teacher seeds (0, 1, ...)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--ablate", action="store_true", help="also run each ablation")
    parser.add_argument("--candidates", action="store_true",
                        help="also run each measured alternative not on by default")  # fmt: skip
    parser.add_argument("--no-speed", action="store_true", help="skip the Chair 101 timing")
    parser.add_argument("--render-only", action="store_true", help="fill the view cache, stop")
    args = parser.parse_args()
    if not DATA.exists():
        print(f"no benchmark data at {DATA}")
        return 2
    shapes = args.shapes or (0 if args.full else DEFAULT_SHAPES_PER_CATEGORY)
    seeds = args.seeds or (FULL_SEEDS if args.full else DEFAULT_SEEDS)
    config = PartDistillConfig(teacher="simulated")
    paths = [p for c in args.categories for p in shape_paths(c, shapes)]
    started = time.perf_counter()
    render_to_cache(paths + [DATA / "Chair" / "101.off"], config)
    if args.render_only:
        return 0

    extra = ablations() if args.ablate else {}
    if args.candidates:
        from partdistill.backend.config import METHOD_CANDIDATES

        extra.update(METHOD_CANDIDATES)
    run_names = ["direct", "forward", "distill", *extra]
    tasks = []
    for path in paths:
        for profile in args.profiles:
            for seed in range(seeds):
                runs = {"direct": ("direct", {}), "distill": ("distill", {})}
                if profile in FORWARD_PROFILES:
                    runs["forward"] = ("forward", {})
                runs.update({name: ("distill", changes) for name, changes in extra.items()})
                tasks.append({
                    "cache": str(cache_path(path, config)), "category": path.parent.name,
                    "shape": path.stem, "profile": profile, "seed": seed, "runs": runs,
                })  # fmt: skip
    print(f"{len(paths)} meshes x {len(args.profiles)} profiles x {seeds} seeds = "
          f"{len(tasks)} runs on {args.jobs} processes", flush=True)  # fmt: skip
    rows = []
    context = multiprocessing.get_context("spawn")
    with context.Pool(args.jobs, initializer=_init_worker) as pool:
        for i, row in enumerate(pool.imap_unordered(run_task, tasks)):
            rows.append(row)
            if (i + 1) % 20 == 0 or i + 1 == len(tasks):
                print(f"  {i + 1}/{len(tasks)} runs, {time.perf_counter() - started:.0f} s",
                      flush=True)  # fmt: skip

    checks, passed = summarise(rows, run_names, args.profiles)
    per_category(rows, run_names)
    if not args.no_speed:
        student_cost(config)
    print(f"\n{len(tasks)} runs in {time.perf_counter() - started:.0f} s")
    print()
    for text, ok in checks:
        print(f"[{'PASS' if ok else 'FAIL'}] {text}")
    return 0 if passed else 1


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)  # bpy can hang in its atexit teardown once torch threads exist
