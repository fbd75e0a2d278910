"""The Segment Parts run in progress, one at a time, for the operators that start, step and
cancel it and for the panels that show its progress."""

from __future__ import annotations

_running: dict[str, object] = {}  # "job" -> the run in progress (a staged_run.StagedRun)


def running_job():
    """The run in progress (a staged_run.StagedRun), or None."""
    return _running.get("job")


def set_running_job(job) -> None:
    """Make ``job`` the run in progress."""
    _running["job"] = job


def forget_running_job() -> None:
    """No run is in progress any more (it finished, failed or was cancelled)."""
    _running.pop("job", None)


def abort_running_job() -> None:
    """Stop the run in progress and forget it (add-on disabled, another file loaded: the modal
    handler goes away with the window, so nothing else would)."""
    job = _running.pop("job", None)
    if job is not None:
        job.abort()
