"""The compute stages of one segmentation (teacher, knowledge, student, labels), in one place.

A run's state between the Blender stages (geometry, views; writeback) and these is a
``RunRequest``: plain data that saves to and loads from a folder in the worker's request format
(``backend/run_files.py``). ``run_compute(request, progress, python=...)`` answers it, here or
in another Python through ``backend/worker.py``; the panel's job, the batch and the worker all
call it (the Blender half chooses the Python in ``partdistill_blender/compute_process.py``).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import signal
import subprocess
import tempfile

import numpy as np

from . import run_files
from .config import PartDistillConfig
from .contracts import ObjectInput, ProgressFn, Segmentation
from .log import get_logger
from .oom_fallback import (
    SmallerBatches,
    cpu_fallback_message,
    free_gpu_memory,
    is_out_of_memory,
    on_the_cpu,
)
from .teachers import build_teacher, teacher_options_for

WORKER_PATH = pathlib.Path(__file__).resolve().parent / "worker.py"
WORKER_LOG = "worker.log"

# The stages of a run as users read them, and the share of the progress bar each takes
# (the views are rendered first, the labels come last, then the writeback).
STAGE_NAMES = {
    "render": "Rendering views",
    "teacher": "Teacher predicting parts",
    "knowledge": "Collecting knowledge",
    "features": "Point features",
    "student": "Training the student",
    "labels": "Labelling faces",
    "write": "Writing results",
}
STAGE_SPANS = {
    "render": (0.0, 0.3),
    "teacher": (0.3, 0.5),
    "knowledge": (0.5, 0.55),
    "features": (0.55, 0.6),
    "student": (0.6, 0.97),
    "labels": (0.97, 1.0),
}


def overall_progress(stage: str, fraction: float) -> tuple[str, float]:
    """(text for users, fraction of the whole run in [0, 1]) of a stage's own fraction."""
    low, high = STAGE_SPANS.get(stage, (1.0, 1.0))
    return STAGE_NAMES.get(stage, stage), low + (high - low) * min(max(fraction, 0.0), 1.0)


@dataclasses.dataclass
class RunRequest:
    """What the compute stages need: the rendered objects, the part names, the configuration
    and the teacher's options (a built-in teacher is given the configuration as ``config``:
    that rule is applied here, so every request carries it the same way).

    ``examples``: labelled objects without views that join the student as few-shot examples
    (no result for them). ``keep_dirs``: per object, a folder to keep its run in for Refine
    ("" = none). ``refine``: a Refine: each object (its ``labels`` the corrections, its
    geometry and views unused) is re-learnt from the run kept in its ``keep_dirs`` folder.
    """

    objects: list[ObjectInput]
    parts: list[str]
    config: PartDistillConfig
    teacher_options: dict = dataclasses.field(default_factory=dict)
    examples: list[ObjectInput] = dataclasses.field(default_factory=list)
    keep_dirs: list[str] = dataclasses.field(default_factory=list)
    refine: bool = False

    def __post_init__(self) -> None:
        self.parts = list(self.parts)
        self.teacher_options = teacher_options_for(
            self.config.teacher, self.config, self.teacher_options
        )

    def save(self, folder) -> None:
        """Write the request into ``folder`` (the worker's request files)."""
        run_files.write_request(folder, self.objects, self.parts, self.config,
                                self.teacher_options, self.examples, self.keep_dirs,
                                self.refine)  # fmt: skip

    @classmethod
    def load(cls, folder) -> RunRequest:
        return cls(**run_files.read_request(folder))

    def keep_dir(self, index: int) -> str:
        return self.keep_dirs[index] if index < len(self.keep_dirs) else ""


_teacher_cache: dict = {}


def cached_teacher(request: RunRequest):
    """The request's teacher, built once per process and reused across objects and runs."""
    options = request.teacher_options
    key = (
        request.config.teacher,
        tuple(request.parts),
        tuple(sorted((k, repr(v)) for k, v in options.items())),
    )
    if key not in _teacher_cache:
        _teacher_cache.clear()  # one model in memory at a time
        _teacher_cache[key] = build_teacher(request.config.teacher, request.parts, **options)
    return _teacher_cache[key]


def run_compute(
    request: RunRequest, progress: ProgressFn | None = None, python: str | None = None
) -> list[Segmentation]:
    """Teacher, knowledge, student and labels for every object of ``request``.

    In this process when ``python`` is None, else in that Python (``run_in_worker``).
    ``progress(stage, fraction)`` is called as the stages go; raising from it (a cancel)
    stops the run.
    """
    if python is not None:
        return run_in_worker(python, request, progress)
    if request.refine:
        return _refine(request, progress)
    try:
        return _segment(request, progress)
    except Exception as exc:
        if not is_out_of_memory(exc) or on_the_cpu(request.config.device):
            raise
        get_logger().warning(cpu_fallback_message(exc))
    # Out of GPU memory in the teacher (even one view at a time) or the student: all again on
    # the CPU, with a teacher built for it (built-in teachers read the device from config).
    _teacher_cache.clear()
    free_gpu_memory()
    on_cpu = dataclasses.replace(
        request,
        config=request.config.replace(device="cpu"),
        teacher_options={k: v for k, v in request.teacher_options.items() if k != "config"},
    )
    return _segment(on_cpu, progress)


def _segment(request: RunRequest, progress) -> list[Segmentation]:
    """Segment Parts' compute stages; each object's run is kept where ``keep_dirs`` says."""
    from .kept_runs import save_kept_run
    from .pipeline import segment_collection

    teacher = SmallerBatches(cached_teacher(request))
    kept = [] if any(request.keep_dirs) else None  # nothing collected that no folder keeps
    results = segment_collection(request.objects, teacher, request.parts, request.config,
                                 progress, request.examples, kept)  # fmt: skip
    for i, run in enumerate(kept or []):
        if request.keep_dir(i):
            save_kept_run(request.keep_dir(i), run)
    return results


def _refine(request: RunRequest, progress) -> list[Segmentation]:
    """Refine each object from its kept run and its corrections (``labels``)."""
    from .kept_runs import load_kept_run
    from .relearn import refine_kept_run

    results = []
    for i, obj in enumerate(request.objects):
        kept = load_kept_run(request.keep_dir(i), obj.info.name)
        labels = obj.labels
        if labels is None:
            labels = np.full(kept.geometry.num_polygons, -1, np.int64)
        results.append(refine_kept_run(kept, labels, request.parts, request.config,
                                       obj.info.name, progress))  # fmt: skip
    return results


def _signal_name(process) -> str:
    number = -process.returncode
    try:
        return f"signal {number} ({signal.Signals(number).name})"
    except ValueError:
        return f"signal {number}"


def clean_environment() -> dict:
    """This process's environment for another Python: Blender may set PYTHONHOME and PYTHONPATH
    for its own, which another interpreter must not inherit."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONPATH")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_in_worker(
    python: str, request: RunRequest, progress: ProgressFn | None = None
) -> list[Segmentation]:
    """Answer ``request`` with backend/worker.py in ``python``: progress lines are relayed, an
    exception from ``progress`` (a cancel) kills the worker, and the worker's log (its stderr)
    is shown when it stops without a result."""
    with tempfile.TemporaryDirectory(prefix="partdistill-") as folder:
        request.save(folder)
        log_path = pathlib.Path(folder) / WORKER_LOG
        with open(log_path, "w") as log:
            process = subprocess.Popen(
                [python, str(WORKER_PATH), folder],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=clean_environment(),
            )
            try:
                for line in process.stdout:
                    update = run_files.parse_progress_line(line.strip())
                    if update is not None and progress is not None:
                        progress(*update)
                process.wait()
            except BaseException:  # cancel (SegmentationCancelled), Ctrl-C: stop the worker
                process.kill()
                process.wait()
                raise
        if not (pathlib.Path(folder) / run_files.RESULT_JSON).exists():
            tail = log_path.read_text()[-2000:]
            if process.returncode is not None and process.returncode < 0:  # killed by a signal
                raise RuntimeError(
                    f"the compute process ({python}) was killed by {_signal_name(process)} "
                    "before it finished (the system may have run out of memory, or someone "
                    "ended it): run the input again (--resume); if it happens again, use fewer "
                    f"--jobs or --points\n{tail}"
                )
            raise RuntimeError(
                f"the compute process ({python}) stopped with code {process.returncode} "
                f"and no result:\n{tail}"
            )
        return run_files.read_result(folder)
