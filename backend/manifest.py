"""The batch's run manifest: one JSON object per line, appended as each input ends.

A line is written whole, flushed and fsynced before the batch goes on, so a Ctrl+C leaves only
whole lines and a killed process at worst one torn last line, which ``read_records`` skips.
Records:
- ``{"event": "start", "inputs": [...], "time": ...}``: the inputs a run planned, so that
  ``--resume`` alone knows what was left;
- ``{"event": "input", "file", "objects", "status" ("done" | "failed"), "error", "stages"
  (seconds per stage), "seconds", "miou" (with ground truth, else null), "time"}``.
The last ``input`` record of a file says what became of it.
"""

from __future__ import annotations

import json
import os
import pathlib
import time

DONE, FAILED = "done", "failed"
START, INPUT = "start", "input"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def append_record(path: os.PathLike | str, record: dict) -> None:
    """Append ``record`` as one line of ``path`` and make it durable before returning."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({**record, "time": record.get("time") or _now()}) + "\n"
    existed = path.exists()
    try:
        _append_line(path, line)
    except OSError:  # a full disk: no empty manifest left behind by this call
        if not existed and path.exists() and path.stat().st_size == 0:
            path.unlink()
        raise


def _append_line(path: pathlib.Path, line: str) -> None:
    with open(path, "ab+") as file:
        # A torn line left by a killed run must stay a line of its own (ignored on read),
        # not swallow the start of this record.
        if file.tell() > 0:
            file.seek(-1, os.SEEK_END)
            if file.read(1) != b"\n":
                line = "\n" + line
        file.write(line.encode("utf-8"))
        file.flush()
        os.fsync(file.fileno())


def start_record(inputs: list[str]) -> dict:
    """The record that opens a run: the inputs it plans to process."""
    return {"event": START, "inputs": list(inputs)}


def input_record(file: str, objects: list[str], status: str, error: str = "",
                 stages: dict | None = None, miou: float | None = None) -> dict:  # fmt: skip
    """The record of one finished input; ``seconds`` is the sum of its stages."""
    stages = {k: round(float(v), 3) for k, v in (stages or {}).items()}
    return {
        "event": INPUT, "file": file, "objects": list(objects), "status": status,
        "error": error or None, "stages": stages, "seconds": round(sum(stages.values()), 3),
        "miou": None if miou is None else round(float(miou), 4),
    }  # fmt: skip


def read_records(path: os.PathLike | str) -> list[dict]:
    """Every whole record of the manifest ``path``, in order; lines that do not parse (a torn
    last line of a killed run) are skipped. A missing file has no records."""
    path = pathlib.Path(path)
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def last_status(records: list[dict]) -> dict[str, dict]:
    """file -> its last ``input`` record."""
    return {r["file"]: r for r in records if r.get("event") == INPUT and "file" in r}


def planned_inputs(records: list[dict]) -> list[str]:
    """Every input any run of the manifest planned or finished, in first-seen order."""
    seen: dict[str, None] = {}
    for record in records:
        if record.get("event") == START:
            seen.update(dict.fromkeys(record.get("inputs", [])))
        elif record.get("event") == INPUT and "file" in record:
            seen.setdefault(record["file"])
    return list(seen)


def still_to_do(inputs: list[str], records: list[dict]) -> tuple[list[str], list[str]]:
    """(to run, done before): ``inputs`` whose last record is not ``done`` (failed ones and
    ones never finished are run again), and those whose last record is."""
    last = last_status(records)
    done = [f for f in inputs if last.get(f, {}).get("status") == DONE]
    done_set = set(done)
    return [f for f in inputs if f not in done_set], done
