"""One Segment Parts run, in the stages the modal operator steps through.

1. render (main thread, one view per ``step()``): geometry and views of every object;
2. compute (worker thread): teacher, knowledge, student, labels via
   ``compute_process.segment_objects``;
3. write back (main thread): only after everything succeeded, so a cancel or an error at any
   stage leaves every object exactly as it was.

The same job runs synchronously (``run_to_end``) for the non-modal path (background mode).
"""

from __future__ import annotations

import threading

from ..backend.config import PartDistillConfig
from ..backend.contracts import ObjectInfo, SegmentationCancelled
from ..backend.teachers import teacher_options_for
from .evidence import EVIDENCE, Evidence
from .ground_truth import ground_truth_labels

# Share of the progress bar each stage takes (rendering runs first, labels last).
STAGE_SPANS = {
    "render": (0.0, 0.3),
    "teacher": (0.3, 0.5),
    "knowledge": (0.5, 0.55),
    "features": (0.55, 0.6),
    "student": (0.6, 0.97),
    "labels": (0.97, 1.0),
}
STAGE_NAMES = {
    "render": "Rendering views",
    "teacher": "Teacher predicting parts",
    "knowledge": "Collecting knowledge",
    "features": "Point features",
    "student": "Training the student",
    "labels": "Labelling faces",
    "write": "Writing results",
}


class SegmentJob:
    """Segment ``objects`` (mesh objects) into ``parts``; see the module docstring."""

    def __init__(self, objects, parts: list[str], config: PartDistillConfig, category: str = "",
                 teacher_options: dict | None = None):  # fmt: skip
        self.object_names = [obj.name for obj in objects]
        self.parts = list(parts)
        self.config = config
        self.category = category.strip()
        if teacher_options is None:
            teacher_options = teacher_options_for(config.teacher, config)
        self.teacher_options = dict(teacher_options)
        self.inputs = []  # ObjectInput per object, filled by rendering
        self.results = None  # list[Segmentation] once compute is done
        self.error: BaseException | None = None
        self.cancelled = False
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._stage, self._fraction = "render", 0.0
        self._infos = [self._object_info(obj) for obj in objects]
        self._renderer_steps = self._render(objects)
        self._worker: threading.Thread | None = None
        self._state = "render"  # then "compute", then "done"

    # --- progress, shared between threads ---
    def cancel(self) -> None:
        self._cancel.set()

    @property
    def is_cancelling(self) -> bool:
        return self._cancel.is_set()

    def report(self, stage: str, fraction: float) -> None:
        """The progress callback of the compute stages; raises SegmentationCancelled on cancel."""
        with self._lock:
            self._stage, self._fraction = stage, float(fraction)
        if self._cancel.is_set():
            raise SegmentationCancelled()

    @property
    def progress(self) -> tuple[str, float]:
        """(text for users, overall fraction in [0, 1])."""
        with self._lock:
            stage, fraction = self._stage, self._fraction
        low, high = STAGE_SPANS.get(stage, (1.0, 1.0))
        return STAGE_NAMES.get(stage, stage), low + (high - low) * min(max(fraction, 0.0), 1.0)

    # --- stages ---
    def _object_info(self, obj) -> ObjectInfo:
        labels = ground_truth_labels(obj) if self.config.teacher == "simulated" else None
        return ObjectInfo(name=obj.name, category=self.category, face_labels=labels)

    def _render(self, objects):
        """Generator: renders one view per next(); closing it closes the open renderer."""
        from ..backend.contracts import ObjectInput
        from .render import ViewRenderer

        total = len(objects) * self.config.num_views
        done = 0
        for obj, info in zip(objects, self._infos, strict=True):
            with ViewRenderer(obj, self.config) as renderer:
                views = []
                for i in range(len(renderer)):
                    if self._cancel.is_set():
                        raise SegmentationCancelled()
                    views.append(renderer.render_view(i))
                    done += 1
                    self.report("render", done / max(total, len(objects) * len(renderer)))
                    yield
                self.inputs.append(ObjectInput(renderer.geometry, views, info))

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
                self._worker = threading.Thread(target=self._compute, name="PartDistill")
                self._worker.daemon = True
                self._worker.start()
            else:
                self._compute()
            return False
        if self._state == "compute":
            if self._worker is not None and self._worker.is_alive():
                return False
            self._state = "done"
        return True

    def _compute(self) -> None:
        from .compute_process import segment_objects

        try:
            results = segment_objects(
                self.inputs, self.parts, self.config, self.teacher_options, progress=self.report
            )
            if self._cancel.is_set():  # cancelled after the last progress call
                raise SegmentationCancelled()
            self.results = results
        except SegmentationCancelled:
            self.cancelled = True
        except Exception as exc:  # reported to the user on the main thread
            self.error = exc

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

    def run_to_end(self) -> None:
        """Run every stage in this thread: no window, no timer (background mode, scripts).

        No worker thread here on purpose: besides having nothing to keep responsive, a thread
        started inside an operator makes the bpy 4.5 module hang at process exit.
        """
        while not self.step(threaded=False):
            pass

    # --- write back ---
    def write_results(self, objects_by_name) -> list[str]:
        """Main thread, after success: write each object's labels; returns the names written."""
        from .writeback import run_record, write_segmentation

        run = run_record(self.config, self.object_names)
        written = []
        for name, result, obj_input in zip(self.object_names, self.results, self.inputs,
                                           strict=True):  # fmt: skip
            obj = objects_by_name.get(name)
            if obj is None:  # deleted while the worker ran
                continue
            write_segmentation(obj, result.parts, result.face_labels, result.face_confidence,
                               run)  # fmt: skip
            EVIDENCE[name] = Evidence(
                parts=list(result.parts),
                views=obj_input.views,
                predictions=list(result.teacher_predictions or []),
            )
            written.append(name)
        return written
