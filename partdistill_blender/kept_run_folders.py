"""Where an object's kept run lives (what Refine re-learns from), and how it gets there.

One folder per object under the extension's user folder ``kept_runs/``, named by an id kept on
the object (``obj[RUN_ID_PROPERTY]``, made on its first Segment Parts), so that renaming the
object does not lose its run. The compute stages write into a staging folder beside it
(``staging_dir``); ``commit`` moves that into place only once the run's labels were written,
so a cancelled or failed run leaves the last good kept run as it was (``discard`` removes the
staging folder).

The folder's contents belong to ``backend.kept_runs``; the only thing read here is its small
JSON header, to tell a stale run before any compute starts (``stale_reason``).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid

from .addon import extension_user_dir

RUN_ID_PROPERTY = "partdistill_run_id"  # object custom property: hex id of its kept-run folder
KEPT_RUNS_SUBDIR = "kept_runs"
# backend.kept_runs.KEPT_JSON (not imported: that module imports torch). A test checks it.
KEPT_HEADER = "kept_run.json"
STAGING_SUFFIX = ".staging"


def run_id(obj, create: bool = True) -> str:
    """The id of ``obj``'s kept-run folder ("" when it has none and ``create`` is False)."""
    value = obj.get(RUN_ID_PROPERTY)
    if isinstance(value, str) and value:
        return value
    if not create:
        return ""
    value = uuid.uuid4().hex
    obj[RUN_ID_PROPERTY] = value
    return value


def give_own_ids(objects, all_objects) -> None:
    """A duplicated object (Shift+D) copies its original's id: before a run writes into the
    folder of ``objects``, each one sharing its id with another object gets a new one, so that
    the run does not replace the other object's kept run."""
    counts: dict[str, int] = {}
    for other in all_objects:
        key = other.get(RUN_ID_PROPERTY)
        if isinstance(key, str) and key:
            counts[key] = counts.get(key, 0) + 1
    for obj in objects:
        if counts.get(run_id(obj, create=False), 0) > 1:
            counts[run_id(obj, create=False)] -= 1
            del obj[RUN_ID_PROPERTY]
        run_id(obj)


def kept_run_dir(obj, create: bool = True) -> str:
    """The folder of ``obj``'s kept run ("" when it has no id and ``create`` is False)."""
    key = run_id(obj, create)
    return os.path.join(extension_user_dir(KEPT_RUNS_SUBDIR), key) if key else ""


def staging_dir(folder: str) -> str:
    """Where a run writes the kept run of ``folder`` until it is committed (emptied now: a
    leftover of a crashed run must not mix with the new files)."""
    staging = folder + STAGING_SUFFIX
    shutil.rmtree(staging, ignore_errors=True)
    return staging


def commit(folder: str) -> bool:
    """Move the staged kept run of ``folder`` into place; False when nothing was staged (e.g. a
    run without a student keeps nothing). The old folder goes only after the new is in."""
    staging = folder + STAGING_SUFFIX
    if not os.path.isdir(staging):
        return False
    old = f"{folder}.old-{uuid.uuid4().hex[:8]}"
    if os.path.isdir(folder):
        os.rename(folder, old)  # a directory cannot be renamed onto a non-empty one
    os.rename(staging, folder)
    shutil.rmtree(old, ignore_errors=True)
    return True


def discard(folder: str) -> None:
    """Remove what a cancelled or failed run staged for ``folder``."""
    shutil.rmtree(folder + STAGING_SUFFIX, ignore_errors=True)


def stale_reason(folder: str, num_polygons: int, parts: list[str], name: str) -> str:
    """Why the kept run in ``folder`` cannot serve a Refine of an object with ``num_polygons``
    faces and these ``parts`` ("" when it can, or when only the compute stages can tell)."""
    try:
        with open(os.path.join(folder, KEPT_HEADER), encoding="utf-8") as handle:
            header = json.load(handle)
    except (OSError, ValueError):
        # No header: let the backend say so (StaleRun) in its own words.
        return ""
    kept = header.get("num_polygons")
    if isinstance(kept, int) and kept != num_polygons:
        return (
            f"the mesh of {name!r} changed since Segment Parts ran on it ({kept} faces then, "
            f"{num_polygons} now): the kept views and teacher predictions no longer apply. "
            "Run Segment Parts again (your corrections are kept and used as labels)"
        )
    kept_parts = header.get("parts")
    if isinstance(kept_parts, list) and list(kept_parts) != list(parts):
        return (
            f"the part names changed since Segment Parts ran on {name!r} "
            f"({', '.join(map(str, kept_parts))} then, {', '.join(parts)} now): run Segment "
            "Parts again with the new names"
        )
    return ""
