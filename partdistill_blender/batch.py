"""Segment meshes headless: mesh files, or mesh objects of an open .blend.

    blender --background [scene.blend] --python partdistill_blender/batch.py -- FLAGS
    python partdistill_blender/batch.py FLAGS          (with the bpy module from PyPI)

Run with --help for the flags. Exit status 0 when every object was segmented, 1 when some
failed (each is reported, the rest go on), 2 when nothing could start (bad flags, no teacher).
Input files and the open .blend are never modified.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import pathlib
import sys
import time

if __package__ in (None, ""):
    # Run as a script: load the repository as the package "partdistill" and run from there.
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    import load_repo

    load_repo.load()
    from partdistill.partdistill_blender.batch import main as _main

    if __name__ == "__main__":
        sys.exit(_main())
else:
    import bpy

    from ..backend.atomic_write import write_atomically
    from ..backend.config import MODES, PartDistillConfig, parse_part_names
    from ..backend.contracts import TeacherUnavailable
    from ..backend.log import file_sink, get_logger
    from ..backend.run_stages import RunRequest
    from ..backend.teachers import check_teacher_available
    from . import compute_process
    from .demo import build_demo_chair, render_preview_png
    from .importers import SUPPORTED_EXTENSIONS, import_mesh_file
    from .staged_run import StagedRun

def build_parser() -> argparse.ArgumentParser:
    d = PartDistillConfig()
    p = argparse.ArgumentParser(
        prog="batch.py",
        description="Segment meshes into named parts with PartDistill (no labelled data).",
    )
    src = p.add_argument_group("what to segment")
    src.add_argument(
        "--input", nargs="+", metavar="FILE", help="mesh files: " + " ".join(SUPPORTED_EXTENSIONS)
    )
    src.add_argument(
        "--objects", nargs="+", metavar="NAME",
        help="mesh objects of the open .blend (or 'all'); default: the selected ones",
    )  # fmt: skip
    src.add_argument("--demo", choices=["chair"], help="segment a demo chair built from primitives")
    src.add_argument("--parts", required=True, help='part names, e.g. "back, seat, leg, arm"')
    src.add_argument("--category", default="", help='object name used in prompts, e.g. "chair"')

    t = p.add_argument_group("teacher")
    t.add_argument("--teacher", default=d.teacher, help="clip | owlv2 | grounding-dino | "
                   "simulated | package.module:factory (default: %(default)s)")  # fmt: skip
    t.add_argument("--model", default=d.model, help="model id or folder (default: %(default)s)")
    t.add_argument("--teacher-option", action="append", default=[], metavar="KEY=VALUE",
                   help="extra keyword for the teacher factory (repeatable)")  # fmt: skip
    t.add_argument("--ground-truth", default="",
                   help="simulated teacher only: attribute:NAME (INT face attribute) or psb "
                        "(NAME_labels.txt beside an OFF file), with optional renames "
                        "psb:backsupport=back,support=seat")  # fmt: skip
    t.add_argument("--allow-downloads", action="store_true", help="let the teacher fetch weights")
    t.add_argument("--cache-dir", default=d.cache_dir, help="Hugging Face cache for weights")

    m = p.add_argument_group("method")
    m.add_argument("--mode", choices=MODES, default=d.mode, help="(default: %(default)s)")
    m.add_argument("--collection", action="store_true",
                   help="one student over all objects (pre-alignment), not one each")  # fmt: skip
    m.add_argument("--views", type=int, default=d.num_views, help="(default: %(default)s)")
    m.add_argument("--resolution", type=int, default=d.resolution, help="(default: %(default)s)")
    m.add_argument("--points", type=int, default=d.num_points, help="(default: %(default)s)")
    m.add_argument("--engine", default=d.render_engine, help="(default: %(default)s)")
    m.add_argument("--epochs", type=int, default=d.epochs, help="(default: %(default)s)")
    m.add_argument("--encoder", default=d.encoder, help="geometric | edgeconv")
    m.add_argument("--seed", type=int, default=d.seed)
    m.add_argument("--refine", action=argparse.BooleanOptionalAction, default=d.refine,
                   help="labels follow the mesh: diffusion and a CRF over the polygon "
                   "adjacency graph (default: %(default)s)")
    m.add_argument("--vote-fusion", action=argparse.BooleanOptionalAction, default=d.vote_fusion,
                   help="blend the student with each polygon's own votes (default: %(default)s)")
    m.add_argument("--device", default=d.device, help="auto | cpu | cuda | mps")

    o = p.add_argument_group("output")
    o.add_argument("--labels-out", metavar="FILE.json", help="labels of every polygon, as JSON")
    o.add_argument("--output", metavar="FILE.blend|DIR",
                   help="the scene as one .blend, or a .blend per object in DIR")  # fmt: skip
    o.add_argument("--preview", metavar="FILE.png|DIR", help="a picture of each coloured result")
    o.add_argument("--log-file", metavar="FILE", help="every message also appended to FILE")
    return p


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.input and (args.objects or args.demo):
        parser.error("--input cannot be combined with --objects or --demo")
    try:
        args.part_names = parse_part_names(args.parts)
        args.config = PartDistillConfig(
            num_views=args.views, resolution=args.resolution, num_points=args.points,
            render_engine=args.engine, mode=args.mode, teacher=args.teacher, model=args.model,
            encoder=args.encoder, epochs=args.epochs, collection=args.collection,
            device=args.device, seed=args.seed, allow_downloads=args.allow_downloads,
            cache_dir=args.cache_dir, refine=args.refine, vote_fusion=args.vote_fusion,
        )  # fmt: skip
        args.teacher_options = _parse_options(args.teacher_option)
        # Teacher options that name configuration fields (cache_dir, clip_dense_mode, ...) are
        # settings of the run: the early weights check must see them too.
        fields = {f.name for f in dataclasses.fields(PartDistillConfig)}
        args.config = args.config.replace(
            **{k: v for k, v in args.teacher_options.items() if k in fields}
        )
        args.config.validate()
    except ValueError as exc:
        parser.error(str(exc))
    return args


def _parse_options(items: list[str]) -> dict:
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--teacher-option {item!r}: expected KEY=VALUE")
        try:
            options[key.strip()] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            options[key.strip()] = value
    return options


def log(message: str) -> None:
    get_logger().info(message)


def log_error(message: str) -> None:
    get_logger().error(message)


# --- objects ----------------------------------------------------------------------------------


def _mesh_objects_of_open_file(names: list[str] | None) -> list:
    if names == ["all"]:
        return [o for o in bpy.context.scene.objects if o.type == "MESH"]
    if names:
        missing = [n for n in names if bpy.data.objects.get(n) is None]
        if missing:
            raise ValueError(f"no object named {', '.join(map(repr, missing))} in the open file")
        objects = [bpy.data.objects[n] for n in names]
        not_mesh = [o.name for o in objects if o.type != "MESH"]
        if not_mesh:
            raise ValueError(f"not mesh objects: {', '.join(not_mesh)}")
        return objects
    return [o for o in bpy.context.selected_objects if o.type == "MESH"]


def _jobs(args) -> list[tuple[str, callable]]:
    """(label, load) pairs; load() returns the mesh objects to segment and their source path."""
    if args.input:

        def loader(path):
            return lambda: (import_mesh_file(path), path)

        return [(path, loader(path)) for path in args.input]
    if args.demo:
        return [("demo chair", lambda: ([build_demo_chair("Chair")], ""))]

    def from_open_file():
        objects = _mesh_objects_of_open_file(args.objects)
        if not objects:
            raise ValueError("nothing to segment: give --input files, --demo chair, or select "
                             "mesh objects (--objects NAME ... / all)")  # fmt: skip
        return objects, bpy.data.filepath

    return [("open file", from_open_file)]


# --- the run ----------------------------------------------------------------------------------


class Run:
    """One batch run: the staged runs of its objects, their writeback, reports and tallies."""

    def __init__(self, args):
        self.args = args
        self.config = args.config
        self.parts = args.part_names
        self.results = []  # label records for --labels-out
        self.failed: list[str] = []
        self.done = 0

    def load_teacher(self) -> None:
        """Build the teacher before anything is rendered (when it runs in this process)."""
        compute_process.load_teacher(RunRequest([], self.parts, self.config,
                                                self.args.teacher_options))  # fmt: skip

    def stages(self, objects: list, source: str) -> StagedRun:
        """The staged run of one input's objects (ground truth is read here), not yet rendered."""
        return StagedRun(objects, self.parts, self.config, self.args.category,
                         self.args.teacher_options, sources=[source] * len(objects),
                         ground_truth=self.args.ground_truth)  # fmt: skip

    def compute_and_write(self, staged: StagedRun, label: str) -> None:
        last = {"stage": None}

        def listener(stage, fraction):
            if stage != last["stage"] and stage != "render":
                last["stage"] = stage
                log(f"  {label}: {stage}")

        staged.listener = listener
        staged.compute()
        staged.write_results({obj.name: obj for obj in staged.objects}, keep_evidence=False)
        for obj, result in zip(staged.objects, staged.results, strict=True):
            labelled = int((result.face_labels >= 0).sum())
            stages = ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items())
            log(f"  {obj.name}: {labelled}/{len(result.face_labels)} polygons labelled ({stages})")
            self.results.append(
                {
                    "name": obj.name,
                    "parts": list(self.parts),
                    "face_labels": result.face_labels.astype(int).tolist(),
                    "face_confidence": [round(float(c), 4) for c in result.face_confidence],
                }
            )
            self.done += 1
            if self.args.preview:
                path = _per_object_path(self.args.preview, obj.name, ".png")
                render_preview_png(obj, str(path))
                log(f"  {obj.name}: preview {path}")


def _per_object_path(target: str, name: str, suffix: str) -> pathlib.Path:
    target = pathlib.Path(target)
    if target.suffix.lower() == suffix:
        target.parent.mkdir(parents=True, exist_ok=True)
        return target
    target.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return target / f"{safe}{suffix}"


def _save_blend(path: pathlib.Path, objects=None) -> None:
    """The whole open file as a copy (objects=None), or a file holding just these objects."""
    if objects is None:
        write_atomically(path, lambda p: bpy.ops.wm.save_as_mainfile(filepath=str(p), copy=True))
        return
    scene = bpy.data.scenes.new(f"PartDistill {objects[0].name}")
    try:
        for obj in objects:
            scene.collection.objects.link(obj)
        write_atomically(path, lambda p: bpy.data.libraries.write(str(p), {scene}, compress=True))
    finally:
        bpy.data.scenes.remove(scene)


def _remove_objects(objects) -> None:
    meshes = [o.data for o in objects]
    for obj in objects:
        bpy.data.objects.remove(obj)
    for mesh in meshes:
        if mesh.users == 0:
            bpy.data.meshes.remove(mesh)


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else sys.argv[1:]
    args = parse_args(argv)
    with file_sink(args.log_file):
        return _run(args)


def _run(args) -> int:
    run = Run(args)
    opened = pathlib.Path(bpy.data.filepath).resolve() if bpy.data.filepath else None
    if args.output and opened and pathlib.Path(args.output).resolve() == opened:
        log_error(f"--output {args.output} is the open file; inputs are never overwritten")
        return 2
    try:
        # Before any rendering: a missing model stops here and nothing is written.
        check_teacher_available(args.teacher, args.config)
        run.load_teacher()
    except (TeacherUnavailable, ValueError, TypeError) as exc:
        log_error(str(exc))
        return 2

    per_object_blend = args.output and not args.output.lower().endswith(".blend")
    jobs = _jobs(args)
    pending: list = []  # (label, staged run) kept for one joint student (--collection)
    started = time.perf_counter()
    for i, (label, load) in enumerate(jobs, 1):
        log(f"[{i}/{len(jobs)}] {label}")
        try:
            objects, source = load()
            staged = run.stages(objects, source)
            staged.render()
        except Exception as exc:  # a bad file is reported and skipped; the rest go on
            log_error(f"{label}: {exc}")
            run.failed.append(label)
            continue
        if args.collection:
            pending.append((label, staged))
            continue
        try:
            run.compute_and_write(staged, label)
            if per_object_blend:
                for obj in objects:
                    _save_blend(_per_object_path(args.output, obj.name, ".blend"), [obj])
        except Exception as exc:
            log_error(f"{label}: {exc}")
            run.failed.append(label)
        if args.input and not (args.output and not per_object_blend):
            _remove_objects(objects)  # thousands of files: keep memory flat

    if pending:
        staged = StagedRun.joined([s for _, s in pending])
        log(f"one student over {len(staged.objects)} objects")
        try:
            run.compute_and_write(staged, "collection")
            if per_object_blend:
                for obj in staged.objects:
                    _save_blend(_per_object_path(args.output, obj.name, ".blend"), [obj])
        except Exception as exc:
            log_error(f"collection: {exc}")
            run.failed.extend(label for label, _ in pending)

    if args.output and not per_object_blend and run.done:
        _save_blend(pathlib.Path(args.output))
        log(f"wrote {args.output}")
    if args.labels_out:
        write_atomically(
            args.labels_out, lambda p: p.write_text(json.dumps({"objects": run.results}))
        )
        log(f"wrote {args.labels_out} ({len(run.results)} objects)")
    seconds = time.perf_counter() - started
    log(f"done: {run.done} segmented, {len(run.failed)} failed, {seconds:.1f} s")
    for label in run.failed:
        log(f"  failed: {label}")
    return 1 if run.failed or not run.done else 0
