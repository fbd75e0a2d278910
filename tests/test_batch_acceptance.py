"""Acceptance of issue 11: a dataset of chairs with corrupt files among them, the batch killed
half-way (SIGKILL: no handler runs) and resumed.

Size. At the settings below a PSB chair (17k-31k faces) takes about 5 s in distill mode on one
core of this 2-core machine, so 200 files are about 17 minutes: too slow for the default suite.
The suite runs ``FILES`` = 30 (20 chairs and the 10 corrupt files); the full 200 run is

    PARTDISTILL_ACCEPTANCE_FILES=200 python -m pytest tests/test_batch_acceptance.py -m acceptance

Distill mode (not direct) because that is the method: the student is trained, so the equality
with an uninterrupted run below also checks that its seeding does not depend on what ran before
in the process. Two epochs and few views keep it affordable. The uninterrupted run that the
resumed labels are compared with covers ``COMPARED`` chairs (default 6: half of them finished
before the kill, half after), not all, to save time.
"""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import SHARED_DATA
from partdistill.backend import manifest
from test_batch_scale import BATCH

FILES = int(os.environ.get("PARTDISTILL_ACCEPTANCE_FILES", "30"))
COMPARED = int(os.environ.get("PARTDISTILL_ACCEPTANCE_COMPARED", "6"))
CHAIRS = sorted((SHARED_DATA / "psb_dev" / "Chair").glob("*.off"))
RUN = ["--parts", "back, seat, leg, arm", "--category", "chair", "--teacher", "simulated",
       "--ground-truth", "psb:backsupport=back,support=seat", "--views", "4", "--resolution",
       "64", "--points", "256", "--mode", "distill", "--epochs", "2", "--quiet"]  # fmt: skip
TIMEOUT_S = 3600
POLL_S = 0.1
# name -> (contents, what the failure reason must say)
CORRUPT = {
    "truncated": (None, "truncated"),  # a real chair cut in the middle of its vertices
    "garbage": (bytes(range(256)) * 8, "does not start with 'OFF'"),
    "nan": ("OFF\n3 1 0\n0 0 0\nnan 1 0\n0 1 1\n3 0 1 2\n", "not a finite number"),
    "empty": ("", "the file is empty"),
    "no_counts": ("OFF\n", "the vertex and face counts are missing"),
    "bad_index": ("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n", "a face index is outside"),
    "bad_counts": ("OFF\nthree one zero\n", "bad counts line"),
    "negative": ("OFF\n-3 1 0\n", "negative vertex or face count"),
    "bad_coordinate": ("OFF\n3 1 0\n0 0 0\n1 zero 0\n0 1 0\n3 0 1 2\n", "bad vertex coordinate"),
    "two_corners": ("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n2 0 1\n", "at least 3 are needed"),
}


def _read_off(path: pathlib.Path) -> tuple[np.ndarray, list[str]]:
    """(vertices (V, 3), the face lines as they are) of a PSB OFF file."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    count = int(lines[1].split()[0])
    vertices = np.array([line.split()[:3] for line in lines[2 : 2 + count]], float)
    return vertices, lines[2 + count :]


def _random_rotation(rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def make_dataset(folder: pathlib.Path, count: int, seed: int = 11) -> tuple[list, dict]:
    """``count`` OFF files in ``folder``: the PSB chairs randomly rotated and scaled (each with
    its PSB labels beside it) and, spread among them, the 10 corrupt files of ``CORRUPT``.
    Returns (good paths, corrupt path -> expected reason)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    chairs = [(_read_off(p), p.with_name(p.stem + "_labels.txt").read_text()) for p in CHAIRS]
    spots = set(np.linspace(0, count - 1, len(CORRUPT)).round().astype(int))
    corrupt_kinds = iter(CORRUPT)
    good, corrupt = [], {}
    for i in range(count):
        if i in spots:
            kind = next(corrupt_kinds)
            path = folder / f"{i:03d}_{kind}.off"
            contents, reason = CORRUPT[kind]
            if contents is None:
                contents = CHAIRS[0].read_text()[: len(CHAIRS[0].read_text()) // 3]
            (path.write_bytes if isinstance(contents, bytes) else path.write_text)(contents)
            corrupt[str(path)] = reason
            continue
        (vertices, faces), labels = chairs[i % len(chairs)]
        moved = vertices @ _random_rotation(rng).T * rng.uniform(0.3, 3.0)
        path = folder / f"{i:03d}_chair.off"
        header = f"OFF\n{len(vertices)} {len(faces)} 0\n"
        body = "\n".join(" ".join(f"{c:.6f}" for c in v) for v in moved)
        path.write_text(header + body + "\n" + "\n".join(faces) + "\n")
        path.with_name(path.stem + "_labels.txt").write_text(labels)
        good.append(str(path))
    return good, corrupt


def _inputs(path) -> list[dict]:
    return [r for r in manifest.read_records(path) if r["event"] == manifest.INPUT]


def _labels(folder: pathlib.Path, file: str) -> dict:
    return json.loads((folder / (pathlib.Path(file).stem + ".json")).read_text())


@pytest.mark.acceptance
def test_a_dataset_killed_half_way_and_resumed_ends_as_an_uninterrupted_run(tmp_path):
    assert CHAIRS, "needs ../shared/data/psb_dev"
    assert FILES > len(CORRUPT) + 1
    good, corrupt = make_dataset(tmp_path / "data", FILES)
    out = tmp_path / "out"
    path = out / "manifest.jsonl"
    flags = [*RUN, "--labels-dir", str(out / "labels"), "--manifest", str(path)]
    first = subprocess.Popen([sys.executable, BATCH, "--input", str(tmp_path / "data"), *flags],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             cwd=tmp_path)  # fmt: skip
    deadline = time.monotonic() + TIMEOUT_S
    while len(_inputs(path)) < FILES // 2 and time.monotonic() < deadline:
        assert first.poll() is None, "the batch ended before half-way"
        time.sleep(POLL_S)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=60)
    before = _inputs(path)
    assert FILES // 2 <= len(before) < FILES
    done_before = {r["file"] for r in before if r["status"] == "done"}

    second = subprocess.run([sys.executable, BATCH, "--resume", str(path), *flags],
                            capture_output=True, text=True, timeout=TIMEOUT_S,
                            cwd=tmp_path)  # fmt: skip
    assert second.returncode == 1, second.stdout + second.stderr  # the corrupt files
    resumed = _inputs(path)[len(before) :]
    # The resumed run ran only what was not done: each once (failed ones are retried).
    assert sorted(r["file"] for r in resumed) == sorted(set(good + list(corrupt)) - done_before)
    assert f"({len(done_before)} inputs done before, skipped)" in second.stdout

    every = _inputs(path)
    done = [r["file"] for r in every if r["status"] == "done"]
    assert sorted(done) == sorted(good), "every chair labelled, none twice"
    last = manifest.last_status(every)
    for file, reason in corrupt.items():
        assert last[file]["status"] == "failed" and reason in last[file]["error"], last[file]
    for file in good:
        labels = _labels(out / "labels", file)
        assert (np.array(labels["face_labels"]) >= 0).mean() > 0.9  # labelled, not left empty
        assert 0.0 < last[file]["miou"] <= 1.0

    # An uninterrupted run of some chairs gives the same labels.
    after = [f for f in good if f not in done_before]
    chosen = sorted(done_before)[: COMPARED // 2] + after[: COMPARED - COMPARED // 2]
    reference = tmp_path / "reference"
    whole = subprocess.run([sys.executable, BATCH, "--input", *chosen, *RUN, "--labels-dir",
                            str(reference), "--manifest", str(reference / "m.jsonl")],
                           capture_output=True, text=True, timeout=TIMEOUT_S,
                           cwd=tmp_path)  # fmt: skip
    assert whole.returncode == 0, whole.stdout + whole.stderr
    for file in chosen:
        mine, theirs = _labels(out / "labels", file), _labels(reference, file)
        assert mine["face_labels"] == theirs["face_labels"], file
        np.testing.assert_allclose(mine["face_confidence"], theirs["face_confidence"], atol=1e-3)
