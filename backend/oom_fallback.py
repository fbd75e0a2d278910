"""Running out of GPU memory: the teacher retries one view at a time, then the whole compute
stage runs again on the CPU; each step is said in the run's log (batch log, terminal).

A GPU that is too small for one object is not a failed run: it is a slower one.
"""

from __future__ import annotations

from .log import get_logger


def is_out_of_memory(exc: BaseException) -> bool:
    """True for CUDA's (and MPS's) out-of-memory errors, whatever torch version raised them."""
    try:
        import torch

        if isinstance(exc, torch.cuda.OutOfMemoryError):
            return True
    except (ImportError, AttributeError):
        pass
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def free_gpu_memory() -> None:
    """Give the cached blocks back, so that a retry starts from what is really free."""
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


class SmallerBatches:
    """A teacher that, when predicting all views at once runs out of GPU memory, predicts them
    one view at a time. Everything else is the wrapped teacher's."""

    def __init__(self, teacher):
        self._teacher = teacher

    def __getattr__(self, name):  # kind, bind, and whatever else callers look for
        return getattr(self._teacher, name)

    def predict(self, views: list) -> list:
        try:
            return self._teacher.predict(views)
        except Exception as exc:
            if not is_out_of_memory(exc) or len(views) <= 1:
                raise
        free_gpu_memory()
        get_logger().warning(
            f"the teacher ran out of GPU memory on {len(views)} views at once: predicting "
            "them one view at a time (slower, same result)"
        )
        predictions = []
        for view in views:
            predictions += self._teacher.predict([view])
        return predictions


def on_the_cpu(device: str) -> bool:
    return str(device).lower() == "cpu"


def cpu_fallback_message(exc: BaseException) -> str:
    return (f"out of GPU memory ({str(exc).strip() or type(exc).__name__}): running the "
            "teacher and the student again on the CPU (slower); set the device to cpu to "
            "start there")  # fmt: skip
