"""Where the compute stages run: in Blender's own Python or in another one.

The compute stages themselves are one function, ``backend.run_stages.run_compute``; this module
chooses the Python it runs in (``compute(request, progress)``):
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
import shutil
import subprocess

from ..backend.contracts import ProgressFn, Segmentation, TeacherUnavailable
from ..backend.run_stages import (
    WORKER_PATH,
    RunRequest,
    cached_teacher,
    clean_environment,
    run_compute,
)
from .addon import get_preferences

PYTHON_ENV_VAR = "PARTDISTILL_PYTHON"
PROBE_TIMEOUT_S = 180  # importing torch from a cold disk can take a while
NO_TORCH_MESSAGE = (
    "PartDistill needs PyTorch, and Blender's Python has none. Set 'Python with torch' in the "
    "add-on preferences (or the environment variable PARTDISTILL_PYTHON) to the python of an "
    "environment with torch, scipy and transformers, e.g. one made with "
    "'python -m venv pd && pd/bin/pip install torch scipy transformers'."
)

_probe_cache: dict[str, dict] = {}
_torch_in_blender: bool | None = None


def compute(request: RunRequest, progress: ProgressFn | None = None) -> list[Segmentation]:
    """The compute stages of ``request``, in the Python chosen above. Raises
    TeacherUnavailable with a user-facing message when no Python with torch is found."""
    return run_compute(request, progress, python=compute_python())


def load_teacher(request: RunRequest):
    """Build the request's teacher now, when it will run in this process (it is kept for the
    run), so that a teacher that cannot be built fails before anything is rendered; None when
    the compute stages run in another Python (the teacher is built there, per run)."""
    if compute_python() is not None:
        return None
    return cached_teacher(request)


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
                env=clean_environment(),
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


__all__ = [
    "compute",
    "compute_python",
    "configured_python",
    "find_python_with_torch",
    "load_teacher",
    "torch_in_blender",
]
