"""Segment meshes headless: mesh files, or mesh objects of an open .blend.

    blender --background [scene.blend] --python partdistill_blender/batch.py -- FLAGS
    python partdistill_blender/batch.py FLAGS          (with the bpy module from PyPI)

Run with --help for the flags. Exit status 0 when every object was segmented, 1 when some
failed (each is reported, the rest go on), 2 when nothing could start (bad flags, no teacher),
130 when interrupted (Ctrl+C; ``--resume MANIFEST`` goes on). Input files and the open .blend
are never modified. Inputs are expanded by ``batch_inputs``, each finished input is a line of
the manifest (``backend/manifest.py``), ``batch_console`` keeps the terminal readable and
``batch_jobs`` shares the files among processes (--jobs).
"""

from __future__ import annotations

import json
import pathlib
import shlex
import sys
import time

if __package__ in (None, ""):
    # Run as a script: load the repository as the package "partdistill" and run from there.
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    import load_repo

    load_repo.load()
    from partdistill.partdistill_blender.batch import main as _main

    if __name__ == "__main__":
        from partdistill.partdistill_blender.batch_ray import exit_after_ray

        exit_after_ray(code := _main())  # returns where Ray did not run
        sys.exit(code)
else:
    import bpy
    import numpy as np

    from ..backend import manifest
    from ..backend.atomic_write import write_atomically
    from ..backend.contracts import TeacherUnavailable
    from ..backend.log import file_sink, get_logger
    from ..backend.metrics import mean_part_iou
    from ..backend.run_stages import RunRequest
    from ..backend.teachers import check_teacher_available, download_missing_model
    from ..backend.teachers.hub_download import terminal_progress
    from ..backend.teachers.models import hub_cache_dir
    from . import compute_process
    from .batch_console import (
        Progress,
        interrupts,
        native_output_to,
        progress_mode,
        summary_lines,
    )
    from .batch_examples import corrections_of, describe, examples_for
    from .batch_flags import build_parser, parse_args  # noqa: F401 (the batch's flags, here too)
    from .batch_inputs import expand_inputs, read_input_list
    from .batch_jobs import run_jobs
    from .batch_outputs import per_object_path, remove_objects, save_blend
    from .batch_ray import run_ray
    from .demo import build_demo_chair, render_preview_png
    from .ground_truth import ground_truth_for
    from .importers import import_mesh_file
    from .input_checks import check_objects, check_outputs, describe_error, is_disk_full
    from .staged_run import StagedRun

INTERRUPTED = 130  # the shell's status for a process ended by SIGINT


def log(message: str) -> None:
    get_logger().info(message)


def log_error(message: str) -> None:
    get_logger().error(message)


def log_warning(message: str) -> None:
    get_logger().warning(message)


# --- objects ----------------------------------------------------------------------------------


def _mesh_objects_of_open_file(names: list[str] | None) -> list:
    if names == ["all"]:
        return [o for o in bpy.context.scene.objects if o.type == "MESH"]
    if names:
        missing = [n for n in names if bpy.data.objects.get(n) is None]
        if missing:
            raise ValueError(f"no object named {', '.join(map(repr, missing))} in the open file")
        objects = [bpy.data.objects[n] for n in names]
        check_objects(objects)
        return objects
    return [o for o in bpy.context.selected_objects if o.type == "MESH"]


def _input_files(args) -> tuple[list[str], int]:
    """(files to run, how many the resumed manifest says are done already)."""
    entries = list(args.input or [])
    if args.input_list:
        entries += read_input_list(args.input_list)
    files, warnings = expand_inputs(entries)
    for warning in warnings:
        log_warning(warning)
    if not args.resume:
        return files, 0
    records = manifest.read_records(args.resume)
    files, done = manifest.still_to_do(files if entries else manifest.planned_inputs(records),
                                       records)  # fmt: skip
    return files, len(done)


def _planned_inputs(args) -> list[str]:
    """The input files the flags name (and the open .blend): what no output may overwrite."""
    entries = list(args.input or [])
    if args.input_list and pathlib.Path(args.input_list).is_file():
        entries += read_input_list(args.input_list)
    files = expand_inputs(entries)[0]
    return [*files, bpy.data.filepath] if bpy.data.filepath else files


def _loaders(args, files: list[str]) -> list[tuple[str, callable]]:
    """(label, load) pairs; load() returns the mesh objects to segment and their source path."""
    if args.files:

        def loader(path):
            return lambda: (import_mesh_file(path), path)

        return [(path, loader(path)) for path in files]
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
    """One batch run: the staged runs of its inputs, their writeback, outputs and records."""

    def __init__(self, args):
        self.args = args
        self.config = args.config
        self.parts = args.part_names
        self.progress = self.interrupts = None  # set while the inputs are segmented
        self.results = []  # label records for --labels-out
        self.records: list[dict] = []  # this run's manifest records
        self.sources: dict[str, str] = {}  # object name -> the file it came from
        self.examples = examples_for(args)  # few-shot examples (--examples), loaded once
        if self.examples:
            log(f"examples: {describe(self.examples, self.parts)}")
        self.corrected: dict[str, int] = {}  # object name -> corrected faces (--corrections)

    def load_teacher(self) -> None:
        """Build the teacher before anything is rendered (when it runs in this process)."""
        compute_process.load_teacher(RunRequest([], self.parts, self.config,
                                                self.args.teacher_options))  # fmt: skip

    def stages(self, objects: list, source: str, label: str) -> StagedRun:
        """The staged run of one input's objects (ground truth is read here), not yet rendered;
        ``label`` names the input in messages."""
        self.sources.update((obj.name, source) for obj in objects)
        labels = None
        if self.args.corrections_attribute:
            labels = corrections_of(objects, self.parts, self.args.corrections_attribute)
            for obj, known in zip(objects, labels, strict=True):
                self.corrected[obj.name] = 0 if known is None else int((known >= 0).sum())
        return StagedRun(objects, self.parts, self.config, self.args.category,
                         self.args.teacher_options, sources=[source] * len(objects),
                         ground_truth=self.args.ground_truth, listener=self.listener(label),
                         labels=labels, examples=self.examples)  # fmt: skip

    def listener(self, label: str):
        """A staged run's listener: logs each new stage, shows it, and is where a Ctrl+C that
        Blender swallowed during a render is raised again."""
        last = {"stage": None}

        def listener(stage, fraction):
            self.interrupts.check()
            if stage != last["stage"]:
                last["stage"] = stage
                if stage != "render":
                    log(f"  {label}: {stage}")
                self.progress.stage(label, stage)

        return listener

    def record(self, label: str, objects: list, error: str = "", stages=None, scores=(),
               cause: BaseException | None = None) -> None:  # fmt: skip
        """Append the manifest record of an input that has ended, and count it. Raises
        ``cause`` (the input's failure) again after recording when it is a full disk: every
        later input would fail alike, so the batch stops."""
        # Ctrl+C reaches a compute worker too, which then fails the input: not a failure of
        # the input, which stays unrecorded and runs again on --resume.
        self.interrupts.check()
        status = manifest.FAILED if error else manifest.DONE
        if error:
            log_error(_naming(label, error))
        miou = float(np.mean(scores)) if len(scores) else None
        names = [getattr(o, "name", o) for o in objects]
        record = manifest.input_record(label, names, status, error, stages, miou)
        if self.examples:  # what the result was made with, beside it
            record["examples"] = len(self.examples)
        if self.args.corrections_attribute:
            record["corrected_faces"] = sum(self.corrected.get(n, 0) for n in names)
        self.records.append(record)
        self.progress.finished(label, status)
        if self.args.manifest:
            manifest.append_record(self.args.manifest, record)
        if is_disk_full(cause):
            raise cause

    def compute_and_write(self, staged: StagedRun, label: str) -> dict[str, float]:
        """Compute and write back ``staged``; returns each object's mIoU (with ground truth)."""
        staged.compute()
        self.interrupts.check()
        staged.write_results({obj.name: obj for obj in staged.objects}, keep_evidence=False)
        scores = {}
        for obj, result in zip(staged.objects, staged.results, strict=True):
            labelled = int((result.face_labels >= 0).sum())
            stages = ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items())
            log(f"  {obj.name}: {labelled}/{len(result.face_labels)} polygons labelled ({stages})")
            if self.args.ground_truth:
                scores[obj.name] = self._miou(obj, result.face_labels)
                log(f"  {obj.name}: mIoU {100 * scores[obj.name]:.1f}")
            labels = {
                "name": obj.name,
                "parts": list(self.parts),
                "face_labels": result.face_labels.astype(int).tolist(),
                # Rounded in numpy: a Python loop over a million faces takes a second.
                "face_confidence": np.round(
                    result.face_confidence.astype(np.float64), 4
                ).tolist(),  # fmt: skip
            }
            if self.args.labels_out:
                self.results.append(labels)
            if self.args.labels_dir:
                path = per_object_path(self.args.labels_dir, obj.name, ".json")
                write_atomically(path, lambda p, labels=labels: p.write_text(json.dumps(labels)))
            if self.args.preview:
                path = per_object_path(self.args.preview, obj.name, ".png")
                render_preview_png(obj, str(path))
                log(f"  {obj.name}: preview {path}")
        return scores

    def _miou(self, obj, predicted) -> float:
        truth = ground_truth_for(obj, self.sources.get(obj.name, ""), self.args.ground_truth,
                                 self.parts)  # fmt: skip
        areas = np.empty(len(obj.data.polygons), np.float64)
        obj.data.polygons.foreach_get("area", areas)
        return mean_part_iou(predicted, truth, areas, len(self.parts))


def _reason(exc: Exception) -> str:
    """An exception in words; never empty, since an empty error would read as success."""
    return describe_error(exc)


def _naming(label: str, error: str) -> str:
    """The error, naming its input once (importers' messages start with the file already)."""
    return error if error.startswith(label) else f"{label}: {error}"


def main(argv: list[str] | None = None) -> int:
    from_command_line = argv is None
    if from_command_line:
        argv = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else sys.argv[1:]
    # The command that resumes an interrupted run is this one with --resume.
    command = sys.argv if from_command_line else ["batch.py", *argv]
    if command[0].endswith(".py"):  # python batch.py, not blender ... --python batch.py
        command = [sys.executable, *command]
    args = parse_args(argv)
    args.command, args.argv = list(command), list(argv)
    try:  # before the log and manifest open: an output that cannot be written writes nothing
        check_outputs(args, _planned_inputs(args))
        examples_for(args)  # an unusable example stops the run here too
    except ValueError as exc:
        log_error(str(exc))
        return 2
    for path in (args.manifest, args.log_file):
        if path:
            pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    with file_sink(args.log_file):
        return _run(args)


def _run(args) -> int:
    opened = pathlib.Path(bpy.data.filepath).resolve() if bpy.data.filepath else None
    if args.output and opened and pathlib.Path(args.output).resolve() == opened:
        log_error(f"--output {args.output} is the open file; inputs are never overwritten")
        return 2
    run = Run(args)
    try:
        # Before any rendering: a missing model is fetched (--allow-downloads, with a progress
        # bar) or stops the run here, and nothing is written.
        fetched = download_missing_model(args.teacher, args.config, terminal_progress())
        if fetched:
            log(f"model {fetched} downloaded into {hub_cache_dir(args.config)}")
        check_teacher_available(args.teacher, args.config)
        if args.jobs == 1 and args.executor == "local":  # else each job loads its own
            run.load_teacher()
        files, skipped = _input_files(args) if args.files else ([], 0)
    except (TeacherUnavailable, ValueError, TypeError) as exc:
        log_error(str(exc))
        return 2
    loaders = _loaders(args, files)
    if args.manifest:
        try:
            manifest.append_record(args.manifest, manifest.start_record(files))
        except OSError as exc:  # a full disk: nothing has run, nothing is half-written
            log_error(f"--manifest {args.manifest}: {describe_error(exc)}")
            return 2
        log(f"manifest {args.manifest}: {len(loaders)} inputs to run, {skipped} done before")
    started = time.perf_counter()
    interrupted, unfinished = False, []
    mode = progress_mode(args.quiet, args.verbose)
    # The render chatter goes to the log file; without one, it stays where it always was.
    with native_output_to(args.log_file), interrupts() as run.interrupts:
        run.progress = Progress(len(loaders), mode)
        try:
            if args.executor == "ray":
                unfinished = run_ray(args, files, run.records, run.progress, run.interrupts)
            elif args.jobs > 1:
                unfinished = run_jobs(args, files, run.records, run.progress, run.interrupts)
            else:
                _segment(run, loaders)
        except KeyboardInterrupt:
            interrupted = True
        except OSError as exc:  # a full disk: the inputs not yet run stay unrecorded
            if not is_disk_full(exc):
                raise
            unfinished.append(f"stopped after {len(run.records)} of {len(loaders)} inputs: "
                              f"{describe_error(exc)}")  # fmt: skip
        finally:
            run.progress.close()
    try:
        _write_joint_outputs(run)
    except OSError as exc:  # a full disk: said in words, and the run did not succeed
        log_error(f"could not write the gathered outputs: {describe_error(exc)}")
        unfinished.append("the gathered outputs (--labels-out, --output FILE.blend) were not "
                          "written")  # fmt: skip
    for line in summary_lines(run.records, skipped, time.perf_counter() - started):
        log(line)
    for line in unfinished:
        log_error(line)
    if interrupted or unfinished:
        left = len(loaders) - len(run.records)
        if interrupted:
            log_error(f"interrupted: {len(run.records)} inputs ended, {left} left")
        if args.manifest:
            again = args.command
            if "--resume" not in again:
                again = [*again, "--resume", args.manifest]
            log(f"to go on: {shlex.join(again)}")
        if interrupted:
            return INTERRUPTED
    done = [r for r in run.records if r["status"] == manifest.DONE]
    return 1 if unfinished or len(done) < len(run.records) or not (done or skipped) else 0


def _segment(run: Run, loaders) -> None:
    """Segment every input in turn; a failure is recorded and the rest go on."""
    args = run.args
    per_object_blend = args.output and not args.output.lower().endswith(".blend")
    pending: list = []  # (label, staged run, stage seconds) for one joint student (--collection)
    for i, (label, load) in enumerate(loaders, 1):
        run.interrupts.check()
        log(f"[{i}/{len(loaders)}] {label}")
        run.progress.stage(label, "import")
        seconds, objects, clock = {}, [], time.perf_counter()
        try:
            objects, source = load()
            seconds["import"] = time.perf_counter() - clock
            run.progress.stage(label, "render")
            clock = time.perf_counter()
            staged = run.stages(objects, source, label)
            staged.render()
            run.interrupts.check()  # a Ctrl+C during the last view is not a failed input
            seconds["render"] = time.perf_counter() - clock
        except Exception as exc:  # a bad file is reported and skipped; the rest go on
            run.record(label, objects, _reason(exc), cause=exc)
            continue
        if args.collection:
            pending.append((label, staged, seconds))
            continue
        try:
            clock = time.perf_counter()
            scores = run.compute_and_write(staged, label)
            seconds["compute"] = time.perf_counter() - clock
            clock = time.perf_counter()
            run.progress.stage(label, "write")
            if per_object_blend:
                for obj in objects:
                    save_blend(per_object_path(args.output, obj.name, ".blend"), [obj])
            seconds["write"] = time.perf_counter() - clock
            run.record(label, objects, stages=seconds, scores=list(scores.values()))
        except Exception as exc:
            run.record(label, objects, _reason(exc), seconds, cause=exc)
        if args.files and not (args.output and not per_object_blend):
            remove_objects(objects)  # thousands of files: keep memory flat

    if pending:
        staged = StagedRun.joined([s for _, s, _ in pending], run.listener("collection"))
        log(f"one student over {len(staged.objects)} objects")
        try:
            clock = time.perf_counter()
            scores = run.compute_and_write(staged, "collection")
            if per_object_blend:
                for obj in staged.objects:
                    save_blend(per_object_path(args.output, obj.name, ".blend"), [obj])
            joint = time.perf_counter() - clock
            for label, part, seconds in pending:
                mine = [scores[n] for n in part.object_names if n in scores]
                run.record(label, part.objects, stages={**seconds, "compute": joint},
                           scores=mine)  # fmt: skip
        except Exception as exc:
            for label, part, seconds in pending:
                run.record(label, part.objects, f"collection: {_reason(exc)}", seconds)


def _write_joint_outputs(run: Run) -> None:
    """The outputs that gather every object: one .blend, one labels file (also after Ctrl+C:
    they hold what was done, written whole or not at all)."""
    args = run.args
    done = any(r["status"] == manifest.DONE for r in run.records)
    if args.output and args.output.lower().endswith(".blend") and done:
        save_blend(pathlib.Path(args.output))
        log(f"wrote {args.output}")
    if args.labels_out and run.results:  # nothing done: an earlier file stays as it was
        text = json.dumps({"objects": run.results})
        write_atomically(args.labels_out, lambda p: p.write_text(text))
        log(f"wrote {args.labels_out} ({len(run.results)} objects)")
