"""The third sink of the product's logger (``backend/log.py``): Blender's reports.

Inside ``reports_to(operator)``, every message of the main thread also becomes a report of that
operator (the status bar, the Info editor; an error pops up), besides the terminal line.
Messages of other threads (the compute thread) are not reported: ``Operator.report`` belongs
to the main thread.
"""

from __future__ import annotations

import contextlib
import logging
import threading

from ..backend.log import get_logger

REPORT_TYPES = ((logging.ERROR, "ERROR"), (logging.WARNING, "WARNING"), (logging.INFO, "INFO"))


class ReportHandler(logging.Handler):
    """Forwards each record to ``operator.report`` with the matching report type."""

    def __init__(self, operator):
        super().__init__()
        self.operator = operator

    def emit(self, record: logging.LogRecord) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        kind = next((name for level, name in REPORT_TYPES if record.levelno >= level), "INFO")
        try:
            self.operator.report({kind}, record.getMessage())
        except (ReferenceError, RuntimeError):  # the operator is gone: the terminal has it
            pass


@contextlib.contextmanager
def reports_to(operator):
    """Inside the block, the logger's messages are ``operator``'s reports too."""
    logger = get_logger()
    handler = ReportHandler(operator)
    logger.addHandler(handler)
    try:
        yield logger
    finally:
        logger.removeHandler(handler)


def report_error(operator, message: str) -> None:
    """An error through the product's logger: a Blender error report of ``operator`` and a
    terminal line (a report's popup is cut at the window's width and gone with the next one;
    a terminal, or a bug report, keeps it whole)."""
    with reports_to(operator) as logger:
        logger.error(message)
