"""What a person sees of a batch run: the native output moved to the log file, one progress
bar (or a line per input where the terminal is not one), and the summary at the end."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
import threading
import time

import numpy as np

from ..backend.log import TerminalFormatter, get_logger
from ..backend.manifest import DONE, FAILED

# The terminal sink's level while the batch runs: errors and warnings only; the rest goes to
# the log file.
TERMINAL_LEVEL = logging.WARNING
SILENT = logging.CRITICAL + 1


def _flush_c_streams() -> None:
    """Flush C's stdio buffers: Blender's C code printf()s, and what sits in its buffer when
    fd 1 is switched would land on the other side of the switch."""
    with contextlib.suppress(OSError, AttributeError, TypeError):
        ctypes.CDLL(None).fflush(None)


def _on_fd(stream, fd: int) -> bool:
    try:
        return stream.fileno() == fd
    except (AttributeError, OSError, ValueError):  # pytest's capture, Blender's console
        return False


@contextlib.contextmanager
def native_output_to(log_path):
    """Inside the block, whatever writes to file descriptors 1 and 2 directly (Blender's and
    Cycles' ``Fra:1 Mem:`` lines, from C) is appended to ``log_path``. Python's
    ``sys.stdout``/``sys.stderr``, when they were those descriptors, keep writing to the
    terminal through copies of them; yields nothing."""
    if log_path is None:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    _flush_c_streams()
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    swapped = []
    for name, fd in (("stdout", 1), ("stderr", 2)):
        stream = getattr(sys, name)
        if _on_fd(stream, fd):
            copy = os.fdopen(os.dup(saved[fd]), "w", buffering=1, encoding=stream.encoding,
                             errors="replace")  # fmt: skip
            setattr(sys, name, copy)
            swapped.append((name, stream, copy))
    for fd in saved:
        os.dup2(log_fd, fd)
    try:
        yield
    finally:
        _flush_c_streams()
        for name, original, copy in swapped:
            copy.flush()
            setattr(sys, name, original)
            copy.close()
        for fd, copy_fd in saved.items():
            os.dup2(copy_fd, fd)
            os.close(copy_fd)
        os.close(log_fd)


class Interrupts:
    """Ctrl+C that Blender cannot swallow: Cycles renders through a Python callback, and
    Blender catches (and prints) a KeyboardInterrupt raised inside it, then goes on. So the
    first Ctrl+C is remembered and ``check`` raises it at the batch's next step (the next view,
    epoch or input); a second one raises at once."""

    def __init__(self):
        self.requested = False

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def check(self) -> None:
        """Raise KeyboardInterrupt if Ctrl+C came since the run started."""
        if self.requested:
            raise KeyboardInterrupt


@contextlib.contextmanager
def interrupts():
    """Inside the block, SIGINT is remembered (``Interrupts``); an ignored SIGINT (nohup, a
    background job) stays ignored. Python's handler is replaced, and so is none at all (a host
    that started Python without its signal handlers would otherwise end at once)."""
    state = Interrupts()
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if main else None
    install = main and (previous is signal.default_int_handler or previous == signal.SIG_DFL)
    if install:
        signal.signal(signal.SIGINT, state._handler)
    try:
        yield state
    finally:
        if install:
            signal.signal(signal.SIGINT, previous)


class _BarHandler(logging.Handler):
    """Terminal messages printed above the bar, which then redraws below them."""

    def __init__(self, bar):
        super().__init__(TERMINAL_LEVEL)
        self.bar = bar
        self.setFormatter(TerminalFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.bar.write(self.format(record), file=sys.stderr)


class Progress:
    """Objects done / failed / left, the current stage and an ETA.

    ``mode``: "bar" (a tqdm bar on stderr), "lines" (a line per finished input, for logs and
    pipes), "none" (--quiet) or "verbose" (no bar: every message shows). Except in "verbose",
    the terminal sink shows warnings and errors only while it is open; everything still goes
    to the log file.
    """

    def __init__(self, total: int, mode: str):
        self.total, self.mode = total, mode
        self.done = self.failed = 0
        self.started = time.perf_counter()
        self.bar = None
        self._terminal = [h for h in get_logger().handlers
                          if getattr(h, "is_partdistill_terminal", False)]  # fmt: skip
        self._levels = [h.level for h in self._terminal]
        self._bar_handler = None
        if mode == "bar":
            try:
                from tqdm import tqdm
            except ImportError:  # a Blender Python without tqdm: plain lines still tell
                self.mode = "lines"
            else:
                self.bar = tqdm(total=total, unit="object", file=sys.stderr, dynamic_ncols=True)
                self._bar_handler = _BarHandler(self.bar)
                get_logger().addHandler(self._bar_handler)
        if mode != "verbose":  # --verbose: every message on the terminal, as before
            for handler in self._terminal:
                handler.setLevel(SILENT if self.bar is not None else TERMINAL_LEVEL)
        self._postfix()

    def _postfix(self, stage: str = "") -> None:
        if self.bar is not None:
            left = self.total - self.done - self.failed
            text = f"{self.done} done, {self.failed} failed, {left} left"
            self.bar.set_postfix_str(text + (f" | {stage}" if stage else ""), refresh=True)

    def stage(self, label: str, stage: str) -> None:
        """The stage the current input is in."""
        self._postfix(f"{os.path.basename(label)}: {stage}")

    def finished(self, label: str, status: str) -> None:
        """One input is over (``done`` or ``failed``)."""
        self.done += status == DONE
        self.failed += status == FAILED
        if self.bar is not None:
            self._postfix()
            self.bar.update(1)
        elif self.mode == "lines":
            count = self.done + self.failed
            elapsed = time.perf_counter() - self.started
            eta = elapsed / count * (self.total - count)
            print(f"[{count}/{self.total}] {status} {label} ({self.done} done, {self.failed} "
                  f"failed, {self.total - count} left, ETA {eta:.0f} s)", file=sys.stderr,
                  flush=True)  # fmt: skip

    def close(self) -> None:
        """Put the terminal sink back as it was."""
        if self.bar is not None:
            self.bar.close()
            get_logger().removeHandler(self._bar_handler)
            self.bar = None
        for handler, level in zip(self._terminal, self._levels, strict=True):
            handler.setLevel(level)


def progress_mode(quiet: bool, verbose: bool) -> str:
    """The ``Progress`` mode for the flags and the terminal the run has."""
    if verbose:
        return "verbose"
    if quiet:
        return "none"
    try:  # a terminal of no width (a pty nobody sized) would show an empty bar
        terminal = sys.stderr.isatty() and os.get_terminal_size(sys.stderr.fileno()).columns > 0
    except (OSError, ValueError, AttributeError):
        terminal = False
    return "bar" if terminal else "lines"


def summary_lines(records: list[dict], skipped: int, seconds: float) -> list[str]:
    """The end-of-run summary of this run's input records: counts, failures with their
    reasons, and mean and worst seconds per stage over the inputs that were segmented."""
    done = [r for r in records if r["status"] == DONE]
    failed = [r for r in records if r["status"] == FAILED]
    objects = sum(len(r["objects"]) for r in done)
    lines = [f"done: {objects} segmented, {len(failed)} failed, {seconds:.1f} s"
             + (f" ({skipped} inputs done before, skipped)" if skipped else "")]  # fmt: skip
    for record in failed:
        error, file = record["error"], record["file"]
        lines.append(f"  failed: {error if error.startswith(file) else f'{file}: {error}'}")
    stages = list(dict.fromkeys(s for r in done for s in r["stages"]))
    if done and stages:
        width = max(len(s) for s in [*stages, "total"])
        lines.append(f"  {'stage':<{width}}  {'mean s':>8}  {'worst s':>8}  worst input")
        for stage in [*stages, "total"]:
            values = np.array([r["seconds"] if stage == "total" else r["stages"].get(stage, 0.0)
                               for r in done])  # fmt: skip
            worst = int(values.argmax())
            lines.append(f"  {stage:<{width}}  {values.mean():>8.2f}  {values[worst]:>8.2f}  "
                         f"{os.path.basename(done[worst]['file'])}")  # fmt: skip
    mious = np.array([r["miou"] for r in done if r.get("miou") is not None], float)
    if mious.size:
        lines.append(f"  mean part mIoU {100 * mious.mean():.1f} over {mious.size} inputs")
    return lines
