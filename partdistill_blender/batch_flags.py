"""The batch's command line: its flags, checked, and the run's configuration built from them."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import pathlib

from ..backend.config import MODES, PartDistillConfig, parse_part_names
from .batch_examples import corrections_attribute, example_renames
from .batch_ray import import_ray
from .importers import SUPPORTED_EXTENSIONS
from .input_checks import check_part_names

MANIFEST_NAME, LOG_NAME = "manifest.jsonl", "batch.log"


def build_parser() -> argparse.ArgumentParser:
    d = PartDistillConfig()
    p = argparse.ArgumentParser(
        prog="batch.py",
        description="Segment meshes into named parts with PartDistill (no labelled data).",
    )
    src = p.add_argument_group("what to segment")
    src.add_argument("--input", nargs="+", metavar="PATH",
                     help="mesh files, folders (searched recursively) or quoted globs; mesh "
                          "files are " + " ".join(SUPPORTED_EXTENSIONS))  # fmt: skip
    src.add_argument("--input-list", metavar="FILE",
                     help="a file of inputs, one a line (# comments; relative to its folder)"
                     )  # fmt: skip
    src.add_argument("--resume", metavar="MANIFEST",
                     help="skip the inputs this manifest says are done, retry the rest "
                          "(without --input: every input it planned)")  # fmt: skip
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
                   help="labels the simulated teacher is made from, and each object's mIoU in "
                        "the manifest: attribute:NAME (INT face attribute) or psb "
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
                   "adjacency graph (default: %(default)s)")  # fmt: skip
    m.add_argument("--vote-fusion", action=argparse.BooleanOptionalAction, default=d.vote_fusion,
                   help="blend the student with each polygon's own votes (default: %(default)s)"
                   )  # fmt: skip
    m.add_argument("--device", default=d.device, help="auto | cpu | cuda | mps")

    k = p.add_argument_group("known labels")
    k.add_argument("--examples", nargs="+", metavar="FILE",
                   help="labelled meshes the student also learns from (few-shot, not with "
                        "--mode direct): a .blend segmented by PartDistill, or a mesh file "
                        "with NAME_labels.txt (PSB) beside it")  # fmt: skip
    k.add_argument("--example-renames", metavar="OLD=NEW,...",
                   help="part names of the examples' labels files -> --parts (default: the "
                        "renames of --ground-truth psb:old=new,...)")  # fmt: skip
    k.add_argument("--corrections", metavar="attribute:NAME",
                   help="an INT face attribute of each input with the right part of some "
                        "faces (an index into --parts, -1 = none); the result keeps them"
                   )  # fmt: skip

    o = p.add_argument_group("output")
    o.add_argument("--labels-out", metavar="FILE.json", help="labels of every polygon, as JSON")
    o.add_argument("--labels-dir", metavar="DIR", help="the labels as one NAME.json per object")
    o.add_argument("--output", metavar="FILE.blend|DIR",
                   help="the scene as one .blend, or a .blend per object in DIR")  # fmt: skip
    o.add_argument("--preview", metavar="FILE.png|DIR", help="a picture of each coloured result")
    o.add_argument("--manifest", metavar="FILE.jsonl",
                   help="a line per finished input (default with file inputs: "
                        f"{MANIFEST_NAME} in the output folder or here; else none)")  # fmt: skip
    o.add_argument("--log", "--log-file", dest="log_file", metavar="FILE",
                   help="every message and Blender's render output, appended (default: "
                        f"{LOG_NAME} beside the manifest)")  # fmt: skip
    o.add_argument("--jobs", type=int, metavar="N",
                   help="segment the input files in N processes, each with its own teacher "
                        "(default: 1; with --executor ray one per CPU of the cluster)"
                   )  # fmt: skip
    o.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="where the jobs run: processes here, or the workers of a Ray cluster "
                        "(pip install -r requirements-batch.txt) (default: %(default)s)"
                   )  # fmt: skip
    o.add_argument("--address", metavar="HOST:PORT",
                   help="with --executor ray: the cluster's head node (default: a Ray "
                        "cluster on this machine, started for the run)")  # fmt: skip
    o.add_argument("--quiet", action="store_true", help="no progress bar")
    o.add_argument("--verbose", action="store_true",
                   help="every message on the terminal too (no progress bar)")  # fmt: skip
    return p


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.files = bool(args.input or args.input_list or args.resume)
    if args.files and (args.objects or args.demo):
        parser.error("--input, --input-list and --resume cannot be combined with --objects or "
                     "--demo")  # fmt: skip
    if args.jobs is not None and args.jobs < 1:
        parser.error("--jobs takes a number of processes, 1 or more")
    ray = args.executor == "ray"
    if args.address and not ray:
        parser.error("--address is the Ray cluster's: it goes with --executor ray")
    if not ray:
        args.jobs = args.jobs or 1
    gathered = args.collection or args.labels_out or str(args.output).lower().endswith(".blend")
    if (ray or args.jobs > 1) and (not args.files or gathered):
        parser.error("--jobs and --executor ray work on input files, each object on its own: "
                     "not with --objects, --demo, --collection, --labels-out or --output "
                     "FILE.blend")  # fmt: skip
    if ray:
        try:
            import_ray()
        except ImportError as exc:
            parser.error(str(exc))
    if args.resume and not pathlib.Path(args.resume).is_file():
        parser.error(f"--resume {args.resume}: no such manifest")
    args.manifest = args.manifest or args.resume
    if args.manifest is None and args.files:
        output = pathlib.Path(args.output or ".")
        folder = output.parent if output.suffix.lower() == ".blend" else output
        args.manifest = str(folder / MANIFEST_NAME)
    if args.log_file is None and args.manifest:
        args.log_file = str(pathlib.Path(args.manifest).with_name(LOG_NAME))
    try:
        args.part_names = parse_part_names(args.parts)
        check_part_names(args.part_names)
        args.config = PartDistillConfig(
            num_views=args.views, resolution=args.resolution, num_points=args.points,
            render_engine=args.engine, mode=args.mode, teacher=args.teacher, model=args.model,
            encoder=args.encoder, epochs=args.epochs, collection=args.collection,
            device=args.device, seed=args.seed, allow_downloads=args.allow_downloads,
            cache_dir=args.cache_dir, refine=args.refine, vote_fusion=args.vote_fusion,
        )  # fmt: skip
        args.teacher_options = _parse_options(args.teacher_option)
        args.corrections_attribute = (corrections_attribute(args.corrections)
                                      if args.corrections is not None else None)  # fmt: skip
        args.example_renames_map = example_renames(args.example_renames, args.ground_truth)
        if args.examples and args.mode == "direct":
            raise ValueError("--examples teach the student, and --mode direct has none: use "
                             "--mode distill (or forward)")  # fmt: skip
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
