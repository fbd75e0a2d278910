"""Segment meshes headless: mesh files, or mesh objects of an open .blend.

    blender --background [scene.blend] --python partdistill_blender/batch.py -- FLAGS
    python partdistill_blender/batch.py FLAGS          (with the bpy module from PyPI)

Run with --help for the flags. Exit status 0 when every object was segmented, 1 when some
failed (each is reported, the rest go on), 2 when nothing could start (bad flags, no teacher),
130 when interrupted (Ctrl+C; ``--resume MANIFEST`` goes on). Input files and the open .blend
are never modified. Inputs are expanded by ``batch_inputs``, each finished input is a line of
the manifest (``backend/manifest.py``), ``batch_console`` keeps the terminal readable. The
inputs run here one after another (``batch_local``), or are shared among processes
(``batch_jobs``, --jobs) or Ray workers (``batch_ray``).
"""

from __future__ import annotations

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

    from ..backend import manifest
    from ..backend.contracts import TeacherUnavailable
    from ..backend.log import file_sink
    from ..backend.teachers import check_teacher_available, download_missing_model
    from ..backend.teachers.hub_download import terminal_progress
    from ..backend.teachers.models import hub_cache_dir
    from .batch_console import (
        Progress,
        interrupts,
        native_output_to,
        progress_mode,
        summary_lines,
    )
    from .batch_examples import examples_for
    from .batch_flags import build_parser, parse_args  # noqa: F401 (the batch's flags, here too)
    from .batch_inputs import expand_inputs, read_input_list
    from .batch_jobs import run_jobs
    from .batch_local import (
        Run,
        input_loaders,
        log,
        log_error,
        log_warning,
        segment_inputs,
        write_joint_outputs,
    )
    from .batch_ray import run_ray
    from .input_checks import check_outputs, describe_error, is_disk_full

INTERRUPTED = 130  # the shell's status for a process ended by SIGINT


# --- the plan -------------------------------------------------------------------------------


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
    loaders = input_loaders(args, files)
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
                segment_inputs(run, loaders)
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
        write_joint_outputs(run)
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
