"""Download a teacher's weights into the Hugging Face cache: progress, cancel, resume.

huggingface_hub's ``hf_hub_download`` deletes its partial file when a transfer stops, so a
cancelled 600 MB download would start again from zero. Each file is therefore fetched with
huggingface_hub's own ``http_get`` (which resumes from a byte offset with a Range request) into
``blobs/<etag>.partdistill-partial`` of the cache, checked against the size and hash the Hub
gives, and only then renamed to ``blobs/<etag>``; ``hf_hub_download`` then finds the blob and
writes the snapshot link and ``refs/main`` itself, so the cache has the Hub's own layout.

Nothing half-written is ever taken for a model: a blob exists only once whole and checked, and
``config.json`` (what marks a cached model as present) is fetched last. Requests go to
``HF_ENDPOINT`` when it is set (read at call time), else the Hub.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# What a teacher needs from a repository: configs, vocabularies and one kind of weights.
CONFIG_PATTERNS = ("*.json", "*.txt", "*.model", "*.tiktoken")
WEIGHT_SUFFIXES = (".safetensors", ".bin")
PARTIAL_SUFFIX = ".partdistill-partial"
MARKER_FILE = "config.json"  # fetched last: its presence means the model is whole
SPEED_WINDOW_S = 3.0  # the speed shown is the mean over this many seconds
# http_get reads the body in chunks of huggingface_hub's DOWNLOAD_CHUNK_SIZE (10 MB) and reports
# once per chunk: at 1 MB/s a cancel would wait 10 s. 1 MB chunks report several times a second.
CHUNK_BYTES = 1 << 20


class DownloadCancelled(Exception):
    """The user cancelled; the bytes fetched so far stay on disk for a resume."""


@dataclass(frozen=True)
class HubFile:
    name: str  # path in the repository
    size: int | None  # bytes, when the Hub lists it
    sha256: str | None  # of the content, for files stored in LFS


@dataclass(frozen=True)
class DownloadProgress:
    """One report of a download: bytes so far (on disk, resumed ones included) of the total."""

    model: str
    done_bytes: int
    total_bytes: int
    resumed_bytes: int  # found on disk from an earlier, interrupted download
    bytes_per_s: float
    file: str  # the file being fetched

    @property
    def fraction(self) -> float:
        return min(1.0, self.done_bytes / self.total_bytes) if self.total_bytes else 0.0

    @property
    def seconds_left(self) -> float | None:
        if self.bytes_per_s <= 0 or not self.total_bytes:
            return None
        return max(0.0, self.total_bytes - self.done_bytes) / self.bytes_per_s

    def describe(self) -> str:
        """ "312 MB of 599 MB · 24 s left · 12.1 MB/s" (what a narrow bar cuts off comes last)"""
        text = f"{format_bytes(self.done_bytes)} of {format_bytes(self.total_bytes)}"
        left = self.seconds_left
        if left is not None:
            text += f" · {format_seconds(left)} left"
        if self.bytes_per_s > 0:
            text += f" · {format_bytes(self.bytes_per_s)}/s"
        return text


ProgressFn = Callable[[DownloadProgress], None]


def terminal_progress(stream=None) -> ProgressFn:
    """A progress function for a terminal: one line redrawn in place ("\\r") on a TTY, a line
    per 10 % elsewhere (log files, CI)."""
    import sys

    stream = stream or sys.stderr
    tty = hasattr(stream, "isatty") and stream.isatty()
    last_tenth, last_drawn = [-1], [0.0]

    def show(p: DownloadProgress) -> None:
        bar = "#" * int(p.fraction * 30)
        line = f"{p.model} [{bar:<30}] {p.fraction:4.0%} {p.describe()}"
        if tty:
            now = time.monotonic()
            if now - last_drawn[0] < 0.1 and p.fraction < 1:
                return  # ten redraws a second are enough to read
            last_drawn[0] = now
            stream.write("\r" + line.ljust(100) + ("\n" if p.fraction >= 1 else ""))
        elif int(p.fraction * 10) > last_tenth[0]:
            last_tenth[0] = int(p.fraction * 10)
            stream.write(line + "\n")
        stream.flush()

    return show


def format_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(count) < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} GB"


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def hub_endpoint() -> str:
    """The Hub to talk to: HF_ENDPOINT when set now, else huggingface_hub's default."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def repo_folder(repo_id: str, cache_dir: str | Path) -> Path:
    """The cache folder of a model repository ("models--org--name")."""
    return Path(cache_dir) / ("models--" + repo_id.replace("/", "--"))


def list_model_files(repo_id: str, endpoint: str | None = None) -> list[HubFile]:
    """The files of ``repo_id`` a teacher needs, weights first and config.json last.

    Safetensors weights when the repository has them, else PyTorch .bin files. Raises the
    Hub's own errors (RepositoryNotFoundError, a connection error) unchanged.
    """
    from huggingface_hub import HfApi

    info = HfApi(endpoint=endpoint or hub_endpoint()).model_info(repo_id, files_metadata=True)
    files = [
        HubFile(s.rfilename, s.size, s.lfs.sha256 if s.lfs is not None else None)
        for s in info.siblings or []
    ]
    has_safetensors = any(f.name.endswith(".safetensors") for f in files)
    weight_suffix = ".safetensors" if has_safetensors else ".bin"
    weights = [f for f in files if "/" not in f.name and f.name.endswith(weight_suffix)]
    configs = [
        f
        for f in files
        if "/" not in f.name and any(fnmatch.fnmatch(f.name, p) for p in CONFIG_PATTERNS)
    ]
    configs.sort(key=lambda f: f.name == MARKER_FILE)  # config.json last
    return weights + configs


def download_model(
    repo_id: str,
    cache_dir: str | Path,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    endpoint: str | None = None,
) -> Path:
    """Fetch what a teacher needs of ``repo_id`` into the hub cache ``cache_dir``.

    Returns the snapshot folder. ``progress`` is called at each file's start and chunk; setting
    ``cancel`` stops the transfer at the next chunk with DownloadCancelled, keeping the bytes
    fetched so far (the next call resumes from them). A file that arrives with the wrong size
    or hash is deleted and raises ValueError naming it.
    """
    from huggingface_hub import constants, hf_hub_download

    constants.DOWNLOAD_CHUNK_SIZE = min(constants.DOWNLOAD_CHUNK_SIZE, CHUNK_BYTES)
    endpoint = endpoint or hub_endpoint()
    cache_dir = Path(cache_dir)
    files = list_model_files(repo_id, endpoint)
    if not any(f.name == MARKER_FILE for f in files):
        raise ValueError(f"{repo_id} has no {MARKER_FILE}: it is not a transformers model")
    meter = _Meter(repo_id, sum(f.size or 0 for f in files), progress, cancel)
    for hub_file in files:
        blob = _fetch_blob(repo_id, hub_file, cache_dir, endpoint, meter)
        meter.file_done(hub_file.name, blob.stat().st_size)
    snapshot = None
    for hub_file in files:  # the links and refs/main, in huggingface_hub's own layout
        snapshot = hf_hub_download(
            repo_id, hub_file.name, cache_dir=str(cache_dir), endpoint=endpoint
        )
    meter.report()
    return Path(snapshot).parent


def _fetch_blob(repo_id: str, hub_file: HubFile, cache_dir: Path, endpoint: str, meter) -> Path:
    """The whole, checked blob of one file, fetched or resumed from its partial file."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.file_download import http_get

    meter.start_file(hub_file.name)
    url = hf_hub_url(repo_id, hub_file.name, endpoint=endpoint)
    meta = get_hf_file_metadata(url)
    blobs = repo_folder(repo_id, cache_dir) / "blobs"
    blob = blobs / meta.etag
    if blob.is_file():
        return blob
    blobs.mkdir(parents=True, exist_ok=True)
    partial = blobs / (meta.etag + PARTIAL_SUFFIX)
    resume = partial.stat().st_size if partial.is_file() else 0
    if meta.size is not None and resume > meta.size:  # not a prefix of this file: start again
        partial.unlink()
        resume = 0
    meter.resumed(resume)
    if meta.size is None or resume < meta.size:
        with open(partial, "ab") as out:
            http_get(
                meta.location or url,
                out,
                resume_size=resume,
                expected_size=meta.size,
                tqdm_class=meter.bar_class(),
            )
    problem = _content_problem(partial, meta.etag, meta.size)
    if problem:
        partial.unlink(missing_ok=True)
        raise ValueError(f"{hub_file.name} of {repo_id} arrived damaged: {problem}")
    os.replace(partial, blob)
    return blob


def _content_problem(path: Path, etag: str, size: int | None) -> str | None:
    """Why the file at ``path`` is not the content the Hub named ``etag``, or None."""
    actual = path.stat().st_size
    if size is not None and actual != size:
        return f"{actual} bytes, the Hub lists {size}"
    found = content_hash(path, etag)
    if found is not None and found != etag:
        return f"its hash is {found[:12]}…, the Hub's is {etag[:12]}…"
    return None


def content_hash(path: Path, etag: str) -> str | None:
    """The hash of ``path`` in the scheme of ``etag``: sha256 for LFS files (64 hex digits),
    git's blob sha1 for the others (40); None for an etag of neither kind."""
    if len(etag) == 64:
        digest = hashlib.sha256()
    elif len(etag) == 40:
        digest = hashlib.sha1()
        digest.update(b"blob %d\0" % path.stat().st_size)
    else:
        return None
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class _Meter:
    """Adds up the bytes of every file, measures the speed, reports and honours cancel."""

    def __init__(self, model: str, total: int, progress: ProgressFn | None, cancel):
        self.model, self.total = model, total
        self.progress, self.cancel = progress, cancel
        self.done = 0  # bytes of the files finished
        self.current = 0  # bytes of the file being fetched, on disk
        self.resumed_total = 0
        self.file = ""
        self.samples: list[tuple[float, int]] = []  # (time, bytes transferred so far)
        self.transferred = 0

    def start_file(self, name: str) -> None:
        self.file, self.current = name, 0
        self._check_cancel()

    def resumed(self, count: int) -> None:
        self.current = count
        self.resumed_total += count
        self.report()

    def file_done(self, name: str, size: int) -> None:
        self.done += size
        self.current = 0

    def transfer(self, count: int) -> None:
        self._check_cancel()
        self.current += count
        self.transferred += count
        self.report()

    def _check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise DownloadCancelled(f"download of {self.model} cancelled")

    def speed(self, now: float) -> float:
        self.samples.append((now, self.transferred))
        while len(self.samples) > 2 and now - self.samples[1][0] > SPEED_WINDOW_S:
            self.samples.pop(0)
        (t0, b0), (t1, b1) = self.samples[0], self.samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0

    def report(self) -> None:
        # Every chunk (CHUNK_BYTES) is reported: a time throttle here would hold back the last
        # bytes before a stall, and the UI would show less than is on disk.
        if self.progress is None:
            return
        now = time.monotonic()
        done = self.done + self.current
        self.progress(
            DownloadProgress(
                self.model,
                done,
                max(self.total, done),
                self.resumed_total,
                self.speed(now),
                self.file,
            )  # fmt: skip
        )

    def bar_class(self):
        """A tqdm class for http_get: its updates feed this meter (and raise on cancel)."""
        from tqdm.auto import tqdm

        meter = self

        class MeterBar(tqdm):
            def __init__(self, *args, **kwargs):
                kwargs["disable"] = True  # the meter shows progress, not tqdm
                super().__init__(*args, **kwargs)

            def update(self, n=1):
                meter.transfer(int(n or 0))

        return MeterBar
