"""The batch's in-process executor: each input in turn, imported, rendered, computed, written
back and recorded. ``batch.py`` runs it for a plain run; each ``--jobs`` process is a batch.py
too, and each Ray worker calls ``segment_inputs`` on one input at a time.
"""

from __future__ import annotations

import json
import pathlib
import time

import bpy
import numpy as np

from ..backend import manifest
from ..backend.atomic_write import write_atomically
from ..backend.log import get_logger
from ..backend.metrics import mean_part_iou
from ..backend.run_stages import RunRequest
from . import compute_process
from .batch_examples import corrections_of, describe, examples_for
from .batch_outputs import per_object_path, remove_objects, save_blend
from .demo import build_demo_chair, render_preview_png
from .ground_truth import ground_truth_for
from .importers import import_mesh_file
from .input_checks import check_objects, describe_error, is_disk_full
from .staged_run import StagedRun


def log(message: str) -> None:
    get_logger().info(message)


def log_error(message: str) -> None:
    get_logger().error(message)


def log_warning(message: str) -> None:
    get_logger().warning(message)


# --- inputs -----------------------------------------------------------------------------------


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


def input_loaders(args, files: list[str]) -> list[tuple[str, callable]]:
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


def _naming(label: str, error: str) -> str:
    """The error, naming its input once (importers' messages start with the file already)."""
    return error if error.startswith(label) else f"{label}: {error}"


def segment_inputs(run: Run, loaders) -> None:
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
            run.record(label, objects, describe_error(exc), cause=exc)
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
            run.record(label, objects, describe_error(exc), seconds, cause=exc)
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
                run.record(label, part.objects, f"collection: {describe_error(exc)}", seconds)


def write_joint_outputs(run: Run) -> None:
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
