"""One segmentation of some mesh objects, stage by stage: the only road from objects to labels.

1. geometry and views (main thread, ``render_steps``: one view per step) -> a
   ``backend.run_stages.RunRequest``, plain data that saves and loads (``request``);
2. teacher, knowledge, student, labels (``compute``): ``backend.run_stages.run_compute``, in
   Blender's Python or in a worker process (``compute_process`` chooses);
3. writeback (main thread, ``write_results``): only after everything succeeded, so a cancel or
   an error at any stage leaves every object exactly as it was.

The panel's modal operator steps a run from its timer (``step``: a view per tick, the compute
on a thread); the operator without a window and the batch run the stages in sequence
(``run_to_end``, or ``render``, ``compute``, ``write_results``).
"""

from __future__ import annotations

import threading
import time

from ..backend.config import PartDistillConfig
from ..backend.contracts import ObjectInfo, ObjectInput, SegmentationCancelled
from ..backend.log import get_logger
from ..backend.run_stages import RunRequest, overall_progress
from .ground_truth import simulated_teacher_truth
from .input_checks import check_objects, check_part_names
from .kept_run_folders import commit, discard, staging_dir


class StagedRun:
    """Segment ``objects`` (mesh objects) into ``parts``; see the module docstring.

    ``sources`` (one per object: the file it came from) and ``ground_truth`` (the batch's
    ``--ground-truth``) say where the simulated teacher's labels are; ``listener(stage,
    fraction)`` hears the progress too. Ground truth is read here, before anything is
    rendered: a mesh without it fails at once (ValueError), as do the objects and the part
    names that ``input_checks`` refuses.

    ``labels`` (one per object, (P,) int32 or None): known labels (a user's corrections) the
    student learns beside the teacher and the result keeps. ``examples``: labelled
    ``ObjectInput``s without views (``known_labels.example_input``), few-shot examples.
    ``keep_dirs`` (one folder per object, or ""): where each object's run is kept for Refine.
    The compute stages write it into a staging folder beside it (``kept_run_folders``), moved
    into place by ``write_results``: a cancelled or failed run keeps the last good one.
    """

    def __init__(self, objects, parts: list[str], config: PartDistillConfig, category: str = "",
                 teacher_options: dict | None = None, *, sources=None, ground_truth: str = "",
                 listener=None, labels=None, examples=(), keep_dirs=()):  # fmt: skip
        self.objects = list(objects)
        # Unusable objects and part names are refused here, before anything is rendered.
        check_objects(self.objects)
        check_part_names(list(parts))
        self.object_names = [obj.name for obj in self.objects]
        self.keep_dirs = list(keep_dirs)  # the final folders; the request gets staging ones
        staged = [staging_dir(folder) if folder else "" for folder in self.keep_dirs]
        self.request = RunRequest([], parts, config, teacher_options or {},
                                  examples=list(examples), keep_dirs=staged)  # fmt: skip
        self.labels = list(labels) if labels is not None else [None] * len(self.objects)
        self.parts, self.config = self.request.parts, config
        self.teacher_options = self.request.teacher_options
        self.category = category.strip()
        self.listener = listener
        sources = list(sources) if sources is not None else [""] * len(self.objects)
        self.infos = [self._object_info(obj, source, ground_truth)
                      for obj, source in zip(self.objects, sources, strict=True)]  # fmt: skip
        self.results = None  # list[Segmentation] once compute is done
        self.error: BaseException | None = None
        self.cancelled = False
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._stage, self._fraction = "render", 0.0
        self._renderer_steps = self.render_steps()
        self._worker: threading.Thread | None = None
        self._state = "render"  # then "compute", then "done"

    @classmethod
    def joined(cls, runs: list[StagedRun], listener=None) -> StagedRun:
        """One run over the rendered objects of ``runs`` (one student for all: --collection)."""
        first = runs[0]
        joined = cls([], first.parts, first.config, first.category, first.teacher_options,
                     listener=listener)  # fmt: skip
        for run in runs:
            joined.request.examples = run.request.examples  # the same for every run
            joined.request.keep_dirs += run.request.keep_dirs
            joined.keep_dirs += run.keep_dirs
            joined.objects += run.objects
            joined.object_names += run.object_names
            joined.infos += run.infos
            joined.inputs.extend(run.inputs)
        joined._state = "compute"
        return joined

    @property
    def inputs(self) -> list[ObjectInput]:
        """The rendered objects (geometry + views + info), as the compute stages get them."""
        return self.request.objects

    def _object_info(self, obj, source: str, ground_truth: str) -> ObjectInfo:
        labels = None
        if self.config.teacher == "simulated":
            labels = simulated_teacher_truth(obj, source, ground_truth, self.parts,
                                             self.teacher_options)  # fmt: skip
        return ObjectInfo(name=obj.name, category=self.category, face_labels=labels)

    # --- progress, shared between threads ---
    def cancel(self) -> None:
        self._cancel.set()

    @property
    def is_cancelling(self) -> bool:
        return self._cancel.is_set()

    def report(self, stage: str, fraction: float) -> None:
        """The progress callback of every stage; raises SegmentationCancelled on cancel."""
        with self._lock:
            self._stage, self._fraction = stage, float(fraction)
        if self.listener is not None:
            self.listener(stage, fraction)
        if self._cancel.is_set():
            raise SegmentationCancelled()

    @property
    def progress(self) -> tuple[str, float]:
        """(text for users, overall fraction in [0, 1])."""
        with self._lock:
            stage, fraction = self._stage, self._fraction
        return overall_progress(stage, fraction)

    # --- stage 1: geometry and views ---
    def render_steps(self):
        """Generator: renders one view per next(); closing it closes the open renderer."""
        from .render import iter_views

        total = len(self.objects) * self.config.num_views
        done = 0
        for obj, info, labels in zip(self.objects, self.infos, self.labels, strict=True):
            started, views = time.perf_counter(), []
            for renderer, view in iter_views(obj, self.config):
                views.append(view)
                done += 1
                self.report("render", done / max(total, len(self.objects) * len(renderer)))
                yield
            geometry = renderer.geometry
            self.inputs.append(ObjectInput(geometry, views, info, labels))
            seconds = time.perf_counter() - started
            get_logger().info(f"  {obj.name}: rendered {len(views)} views in {seconds:.1f} s "
                              f"({geometry.num_polygons} polygons)")  # fmt: skip

    def render(self) -> None:
        """Render every view of every object now (raises what rendering raised)."""
        for _ in self._renderer_steps:
            pass
        self._state = "compute"

    # --- stage 2: the compute stages ---
    def compute(self) -> list:
        """Teacher, knowledge, student, labels for every rendered object; raises on failure."""
        from .compute_process import compute

        results = compute(self.request, self.report)
        if self._cancel.is_set():  # cancelled after the last progress call
            raise SegmentationCancelled()
        self.results = results
        return results

    def _compute_and_keep_the_outcome(self) -> None:
        try:
            self.compute()
        except SegmentationCancelled:
            self.cancelled = True
        except Exception as exc:  # reported to the user on the main thread
            self.error = exc

    # --- the modal's steps ---
    def step(self, threaded: bool = True) -> bool:
        """Main thread: render the next view, or start / poll the compute stage. True when the
        run is over (successfully, cancelled or failed: see ``results``, ``cancelled``,
        ``error``). With ``threaded`` False the compute stage runs here, in this call."""
        if self._state == "render":
            if self._cancel.is_set():
                return self._stop(SegmentationCancelled())
            try:
                next(self._renderer_steps)
                return False
            except StopIteration:
                self._state = "compute"
            except Exception as exc:  # any failure ends the run and is reported
                return self._stop(exc)
            if threaded:
                self._worker = threading.Thread(
                    target=self._compute_and_keep_the_outcome, name="PartDistill"
                )
                self._worker.daemon = True
                self._worker.start()
            else:
                self._compute_and_keep_the_outcome()
            return False
        if self._state == "compute":
            if self._worker is not None and self._worker.is_alive():
                return False
            self._state = "done"
        return True

    def _stop(self, exc: BaseException) -> bool:
        self._state = "done"
        self._renderer_steps.close()  # removes the renderer's scenes if one was open
        if isinstance(exc, SegmentationCancelled):
            self.cancelled = True
        else:
            self.error = exc
        return True

    def abort(self) -> None:
        """Cancel and wait until nothing runs any more (add-on disabled, file closed)."""
        self.cancel()
        if self._state == "render":
            self._stop(SegmentationCancelled())
        elif self._worker is not None:
            self._worker.join()
        self._state = "done"
        self.discard_kept_runs()

    def discard_kept_runs(self) -> None:
        """Remove the kept runs this run staged (after a cancel or a failure)."""
        for folder in self.keep_dirs:
            if folder:
                discard(folder)

    def run_to_end(self) -> None:
        """Run every stage in this thread: no window, no timer (background mode, scripts).

        No worker thread here on purpose: besides having nothing to keep responsive, a thread
        started inside an operator makes the bpy 4.5 module hang at process exit.
        """
        while not self.step(threaded=False):
            pass

    # --- stage 3: write back ---
    def write_results(self, objects_by_name, keep_evidence: bool = True) -> list[str]:
        """Main thread, after success: write each object's labels; returns the names written.
        ``keep_evidence`` keeps the views and the teacher's predictions for Show Evidence."""
        from .evidence import EVIDENCE, Evidence
        from .writeback import run_record, write_segmentation

        run = run_record(self.config, self.object_names)
        written = []
        keep_dirs = self.keep_dirs + [""] * (len(self.object_names) - len(self.keep_dirs))
        for name, result, obj_input, folder in zip(self.object_names, self.results, self.inputs,
                                                   keep_dirs, strict=True):  # fmt: skip
            obj = objects_by_name.get(name)
            if obj is None:  # deleted while the worker ran
                if folder:
                    discard(folder)
                continue
            write_segmentation(obj, result.parts, result.face_labels, result.face_confidence,
                               run)  # fmt: skip
            if folder:  # the kept run now matches the labels just written
                commit(folder)
            if keep_evidence:
                EVIDENCE[name] = Evidence(
                    parts=list(result.parts),
                    views=obj_input.views,
                    predictions=list(result.teacher_predictions or []),
                )
            written.append(name)
        return written
