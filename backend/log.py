"""One logger for the whole product, and its sinks.

Every message goes through the stdlib logger ``partdistill`` (``get_logger()``). Its sinks:
1. the terminal, always: ``[partdistill] message``, errors as ``PartDistill error: message``.
   The stream is looked up at each message, so a redirected ``sys.stdout`` (pytest, Blender's
   console) sees it. The worker process, whose stdout carries progress lines, writes to stderr
   (``use_terminal("stderr")``), which its caller keeps as the worker's log file;
2. a log file, for as long as asked (``file_sink(path)``, ``add_file_sink(path)``);
3. Blender's reports of the running operator (``partdistill_blender/report_log.py``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys

NAME = "partdistill"
TERMINAL_PREFIX = "[partdistill] "
ERROR_PREFIX = "PartDistill error: "
FILE_FORMAT = "%(asctime)s %(levelname)s %(message)s"


class TerminalFormatter(logging.Formatter):
    """``[partdistill] message``; an error as ``PartDistill error: message`` (CI greps it)."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = ERROR_PREFIX if record.levelno >= logging.ERROR else TERMINAL_PREFIX
        text = prefix + record.getMessage()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class TerminalHandler(logging.Handler):
    """Writes to ``sys.stdout`` or ``sys.stderr`` as they are when the message comes."""

    is_partdistill_terminal = True  # found again after the module is reloaded (add-on reload)

    def __init__(self, stream: str = "stdout"):
        super().__init__()
        self.stream = stream
        self.setFormatter(TerminalFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = getattr(sys, self.stream) or sys.__stdout__
            stream.write(self.format(record) + "\n")
            stream.flush()
        except (OSError, ValueError):  # a closed console must not stop a run
            pass


def get_logger() -> logging.Logger:
    """The product's logger, with its terminal sink (set up once per process)."""
    logger = logging.getLogger(NAME)
    if not any(getattr(h, "is_partdistill_terminal", False) for h in logger.handlers):
        logger.addHandler(TerminalHandler())
        logger.setLevel(logging.INFO)
        logger.propagate = False  # a host's root handlers would print every line twice
    return logger


def use_terminal(stream: str) -> None:
    """Send the terminal sink to ``"stdout"`` or ``"stderr"``."""
    for handler in get_logger().handlers:
        if getattr(handler, "is_partdistill_terminal", False):
            handler.stream = stream


class LogFileHandler(logging.FileHandler):
    """The log file. A line it cannot write (a full disk) is dropped without a traceback: the
    terminal still shows every message, and the run goes on."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        if not isinstance(sys.exc_info()[1], OSError):
            super().handleError(record)

    def close(self) -> None:
        try:
            super().close()
        except OSError:  # the last buffered lines, on a full disk
            pass


def add_file_sink(path: os.PathLike | str) -> logging.Handler:
    """Append every message from now on to the file ``path``; remove with ``remove_sink``."""
    handler = LogFileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FILE_FORMAT))
    get_logger().addHandler(handler)
    return handler


def remove_sink(handler: logging.Handler) -> None:
    get_logger().removeHandler(handler)
    handler.close()


@contextlib.contextmanager
def file_sink(path: os.PathLike | str | None):
    """Inside the block, messages go to the file ``path`` too (nothing when ``path`` is None)."""
    handler = add_file_sink(path) if path else None
    try:
        yield handler
    finally:
        if handler is not None:
            remove_sink(handler)
