"""pytest plugin for .ci/bpy_matrix.sh on a Blender module whose Python has no torch (bpy 5.3 on
Python 3.13, for which torch has no CPU wheel here): a test module or test that stops at
``import torch`` in the test's own process is reported as skipped, with that reason, instead
of failed. Everything else fails as usual; the compute half that the add-on starts runs in
another Python (PARTDISTILL_PYTHON) and is tested for real. Load with ``-p no_torch``.
"""

import pytest

REASON = (
    "needs torch in the test's process (this Python has none; "
    "the compute half runs in PARTDISTILL_PYTHON)"
)


def _stopped_at_torch(excinfo) -> bool:
    return (
        excinfo is not None
        and excinfo.errisinstance(ModuleNotFoundError)
        and (
            getattr(excinfo.value, "name", None) == "torch"
            or str(excinfo.value).startswith("No module named 'torch")
        )
    )


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    report = yield
    if report.failed and "No module named 'torch'" in str(report.longrepr):
        report.outcome = "skipped"
        report.longrepr = (str(collector.path), None, f"Skipped: {REASON}")
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed and _stopped_at_torch(call.excinfo):
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1], f"Skipped: {REASON}")
    return report
