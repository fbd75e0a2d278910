"""Model downloads in background threads, for the Models box: start, cancel, read progress.

The thread runs ``backend.teachers.hub_download.download_model`` (plain files, no bpy); the
UI reads each job's latest progress on redraw, and a timer redraws the sidebar and the
preferences while any download runs. At most one download per model at a time; a cancelled
one keeps its bytes, and the next Download of that model resumes from them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import bpy

from ..backend.teachers.hub_download import DownloadCancelled, DownloadProgress, download_model

REDRAW_INTERVAL_S = 0.25


@dataclass
class DownloadJob:
    repo_id: str
    cache_dir: str
    cancel: threading.Event = field(default_factory=threading.Event)
    progress: DownloadProgress | None = None
    state: str = "running"  # running, done, cancelled, failed
    message: str = ""  # what to tell the user once it ended
    thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def _run(self) -> None:
        try:
            download_model(self.repo_id, self.cache_dir, progress=self._set, cancel=self.cancel)
            self.state, self.message = "done", f"{self.repo_id} is installed"
        except DownloadCancelled:
            self.state = "cancelled"
            self.message = "Download cancelled: what was fetched is kept for a resume"
        except Exception as exc:  # shown in the box; the thread must not die silently
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.state, self.message = "failed", f"Download failed: {detail}"

    def _set(self, progress: DownloadProgress) -> None:
        self.progress = progress


_jobs: dict[str, DownloadJob] = {}


def job_for(repo_id: str) -> DownloadJob | None:
    return _jobs.get(repo_id)


def any_running() -> bool:
    return any(job.running for job in _jobs.values())


def start_download(repo_id: str, cache_dir: str) -> DownloadJob:
    """Start (or resume) downloading ``repo_id`` into the hub cache ``cache_dir``."""
    job = _jobs.get(repo_id)
    if job is not None and job.running:
        return job
    job = DownloadJob(repo_id, cache_dir)
    job.thread = threading.Thread(target=job._run, name=f"partdistill-download-{repo_id}",
                                  daemon=True)  # fmt: skip
    _jobs[repo_id] = job
    job.thread.start()
    if not bpy.app.timers.is_registered(_redraw_while_running):
        bpy.app.timers.register(_redraw_while_running, first_interval=REDRAW_INTERVAL_S)
    return job


def cancel_download(repo_id: str) -> bool:
    """Ask the download of ``repo_id`` to stop (at its next chunk); False when none runs."""
    job = _jobs.get(repo_id)
    if job is None or not job.running:
        return False
    job.cancel.set()
    return True


def forget(repo_id: str) -> None:
    """Drop an ended job's message (after Remove, say)."""
    job = _jobs.get(repo_id)
    if job is not None and not job.running:
        del _jobs[repo_id]


def stop_all(timeout_s: float = 5.0) -> None:
    """Cancel every download and wait a little for the threads (add-on disabled)."""
    for job in _jobs.values():
        job.cancel.set()
    for job in _jobs.values():
        if job.thread is not None:
            job.thread.join(timeout_s)
    _jobs.clear()


def _redraw_while_running():
    for window in bpy.context.window_manager.windows:
        for area in window.screen.areas:
            if area.type in ("VIEW_3D", "PREFERENCES"):
                area.tag_redraw()
    # One more redraw after the last job ended, so that its end state is drawn.
    return REDRAW_INTERVAL_S if any_running() else None
