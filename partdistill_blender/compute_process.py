"""Which process computes: the one door from the Blender half to the compute half.

Batch and UI call ``segment_objects``, which chooses where the compute half runs:
1. A Python named by the user (the add-on preference "Python with torch", or the environment
   variable ``PARTDISTILL_PYTHON``): out of process, in that Python. This is how a CUDA user
   points at the environment whose torch sees the GPU.
2. Otherwise in Blender's own Python, when it can import torch.
3. Otherwise out of process in a Python found on this machine that has torch (the active
   conda or virtual environment, then ``python3``/``python`` on PATH), preferring one whose
   torch sees a CUDA GPU.
Out of process, the request and result cross as files (see ``backend/worker.py``), progress
comes back as lines on the worker's stdout, and a cancel kills the worker.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import tempfile

from ..backend.config import PartDistillConfig
from ..backend.contracts import ProgressFn, Segmentation, SegmentationCancelled, TeacherUnavailable
from .preferences import get_preferences

PYTHON_ENV_VAR = "PARTDISTILL_PYTHON"
WORKER_PATH = pathlib.Path(__file__).resolve().parents[1] / "backend" / "worker.py"
PROBE_TIMEOUT_S = 180  # importing torch from a cold disk can take a while
NO_TORCH_MESSAGE = (
    "PartDistill needs PyTorch, and Blender's Python has none. Set 'Python with torch' in the "
    "add-on preferences (or the environment variable PARTDISTILL_PYTHON) to the python of an "
    "environment with torch, scipy and transformers, e.g. one made with "
    "'python -m venv pd && pd/bin/pip install torch scipy transformers'."
)

_teacher_cache: dict = {}
_probe_cache: dict[str, dict] = {}
_torch_in_blender: bool | None = None


def get_teacher(spec: str, parts: list[str], options: dict):
    """The teacher for these part names, built once per process and reused across objects.

    None when the compute half runs in another Python (the teacher is built there, per run);
    raises TeacherUnavailable at once when there is no Python with torch at all.
    """
    if compute_python() is not None:
        return None
    from ..backend.teachers import build_teacher

    key = (spec, tuple(parts), tuple(sorted((k, repr(v)) for k, v in options.items())))
    if key not in _teacher_cache:
        _teacher_cache.clear()  # one model in memory at a time
        _teacher_cache[key] = build_teacher(spec, parts, **options)
    return _teacher_cache[key]


def segment_objects(
    objects: list,
    parts: list[str],
    config: PartDistillConfig,
    teacher_options: dict | None = None,
    progress: ProgressFn | None = None,
    teacher=None,
) -> list[Segmentation]:
    """Segment objects (backend.pipeline.ObjectInput, already rendered).

    A ``teacher`` object given here runs in this process (it cannot cross to another one).
    Raises TeacherUnavailable with a user-facing message when no Python with torch is found.
    """
    options = dict(teacher_options or {})
    if teacher is None:
        python = compute_python()
        if python is not None:
            return segment_out_of_process(python, objects, parts, config, options, progress)
    from ..backend.pipeline import segment_collection

    if teacher is None:
        teacher = get_teacher(config.teacher, parts, options)
    return segment_collection(objects, teacher, parts, config, progress)


def compute_python() -> str | None:
    """The Python to run the compute half in, or None to run it in this one (see above)."""
    python = configured_python()
    if python is None and not torch_in_blender():
        python = find_python_with_torch()
        if python is None:
            raise TeacherUnavailable(NO_TORCH_MESSAGE)
    return python


def configured_python() -> str | None:
    """The Python the user named: environment variable first, then the add-on preference."""
    path = os.environ.get(PYTHON_ENV_VAR, "").strip()
    if not path:
        path = _preference_python()
    if not path:
        return None
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        raise TeacherUnavailable(f"'Python with torch' is set to {path!r}, which is not a program")
    return path


def _preference_python() -> str:
    preferences = get_preferences()
    return str(getattr(preferences, "python_path", "") or "")


def torch_in_blender() -> bool:
    """Whether this Python imports torch (checked once; the import is the real test)."""
    global _torch_in_blender
    if _torch_in_blender is None:
        try:
            import torch  # noqa: F401

            _torch_in_blender = True
        except Exception:  # a broken torch install is as good as none
            _torch_in_blender = False
    return _torch_in_blender


def probe_python(python: str) -> dict:
    """What ``python`` offers (backend/worker.py --probe), cached; {"missing": [...]} on failure."""
    if python not in _probe_cache:
        try:
            done = subprocess.run(
                [python, str(WORKER_PATH), "--probe"],
                capture_output=True,
                text=True,
                timeout=PROBE_TIMEOUT_S,
                env=_clean_environment(),
            )
            report = json.loads(done.stdout.strip().splitlines()[-1])
        except (OSError, subprocess.SubprocessError, ValueError, IndexError):
            report = {"missing": ["python"]}
        _probe_cache[python] = report
    return _probe_cache[python]


def candidate_pythons() -> list[str]:
    """Pythons on this machine that may have torch, most specific first."""
    names = []
    for variable in ("CONDA_PREFIX", "VIRTUAL_ENV"):
        prefix = os.environ.get(variable)
        if prefix:
            names += [os.path.join(prefix, "bin", "python"), os.path.join(prefix, "python.exe")]
    names += [shutil.which(n) or "" for n in ("python3", "python")]
    seen, found = set(), []
    for name in names:
        if name and os.path.isfile(name) and os.path.realpath(name) not in seen:
            seen.add(os.path.realpath(name))
            found.append(name)
    return found


def find_python_with_torch() -> str | None:
    """The first candidate with every package the compute half needs, a CUDA one preferred."""
    usable = [p for p in candidate_pythons() if not probe_python(p).get("missing", ["?"])]
    with_cuda = [p for p in usable if probe_python(p).get("cuda")]
    return (with_cuda or usable or [None])[0]


def _clean_environment() -> dict:
    # Blender may set these for its own Python; another interpreter must not inherit them.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONPATH")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def segment_out_of_process(
    python: str,
    objects: list,
    parts: list[str],
    config: PartDistillConfig,
    teacher_options: dict,
    progress: ProgressFn | None = None,
) -> list[Segmentation]:
    """Run backend/worker.py in ``python``; progress lines are relayed, a cancel kills it."""
    from ..backend import worker

    with tempfile.TemporaryDirectory(prefix="partdistill-") as folder:
        worker.write_request(folder, objects, parts, config, teacher_options)
        log_path = pathlib.Path(folder) / "worker.log"
        with open(log_path, "w") as log:
            process = subprocess.Popen(
                [python, str(WORKER_PATH), folder],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=_clean_environment(),
            )
            try:
                for line in process.stdout:
                    update = worker.parse_progress_line(line.strip())
                    if update is not None and progress is not None:
                        progress(*update)
                process.wait()
            except BaseException:  # cancel (SegmentationCancelled), Ctrl-C: stop the worker
                process.kill()
                process.wait()
                raise
        if not (pathlib.Path(folder) / worker.RESULT_JSON).exists():
            tail = log_path.read_text()[-2000:]
            raise RuntimeError(
                f"the compute process ({python}) stopped with code {process.returncode} "
                f"and no result:\n{tail}"
            )
        return worker.read_result(folder)


__all__ = [
    "SegmentationCancelled",
    "compute_python",
    "configured_python",
    "find_python_with_torch",
    "get_teacher",
    "segment_objects",
    "segment_out_of_process",
    "torch_in_blender",
]
