"""--executor ray (issue 11, part 2): the batch's inputs on the workers of a local Ray cluster,
one of which is killed mid-run; and the clear stop where Ray is not installed."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from test_batch_scale import BATCH, CORRUPT_OFF, SMALL_RUN, _cube, _input_records

SUBPROCESS_TIMEOUT_S = 600
POLL_S = 0.05


def _sigint_as_at_a_terminal() -> None:
    """The batch heeds Ctrl+C only where SIGINT is not ignored (under nohup it is, and a
    child inherits that): start it as from a terminal, whatever ran the tests."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_without_ray_the_executor_stops_before_any_work(tmp_path, monkeypatch, capsys):
    from partdistill.partdistill_blender import batch

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(SystemExit) as stopped:
        batch.parse_args(["--parts", "a, b", "--input", str(tmp_path), "--executor", "ray"])
    assert stopped.value.code == 2
    assert 'pip install "ray[default]"' in capsys.readouterr().err
    with pytest.raises(SystemExit):  # --address is the cluster's
        batch.parse_args(["--parts", "a, b", "--input", "x.off", "--address", "h:6379"])


def test_a_worker_killed_mid_run_leaves_every_input_recorded_once(tmp_path):
    pytest.importorskip("ray")
    inputs = [_cube(tmp_path / "data" / f"shape_{i}.off") for i in range(6)]
    broken = tmp_path / "data" / "broken.off"
    broken.write_text(CORRUPT_OFF)
    out = tmp_path / "out"
    path = out / "manifest.jsonl"
    # Forward mode with a few epochs: each input takes seconds, so a worker is caught on one.
    # No --address: the batch starts a Ray cluster on this machine, two workers (--jobs 2).
    command = [sys.executable, BATCH, "--input", str(tmp_path / "data"), *SMALL_RUN,
               "--mode", "forward", "--epochs", "6", "--executor", "ray", "--jobs", "2",
               "--output", str(out), "--labels-dir", str(out / "labels")]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd=tmp_path)  # fmt: skip
    deadline = time.monotonic() + SUBPROCESS_TIMEOUT_S
    log = out / "batch.log"

    def worker_pids() -> dict[int, int]:
        text = log.read_text(errors="replace") if log.exists() else ""
        return {int(k): int(p) for k, p in re.findall(r"ray worker (\d): pid (\d+)", text)}

    # Once both workers are up and an input is done, worker 1 is on its next input: kill it.
    while (len(worker_pids()) < 2 or not _input_records(path)) and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        time.sleep(POLL_S)
    victim = worker_pids()[1]
    os.kill(victim, signal.SIGKILL)
    out_text, err_text = process.communicate(timeout=SUBPROCESS_TIMEOUT_S)
    assert process.returncode == 1, out_text + err_text  # the broken file, nothing else

    records = _input_records(path)
    files = [r["file"] for r in records]
    assert sorted(files) == sorted([*inputs, str(broken)]), "each input recorded, none twice"
    status = {r["file"]: r["status"] for r in records}
    assert status[str(broken)] == "failed" and all(status[f] == "done" for f in inputs), [
        (r["file"][-11:], r["status"], r["error"]) for r in records
    ]
    log_text = log.read_text(errors="replace")
    # The kill caught worker 1 on an input, which its restarted process then segmented.
    restarted = re.findall(r"ray worker 1: restarted as pid (\d+) \(pid (\d+) ended\)", log_text)
    assert restarted and restarted[0][1] == str(victim), log_text[-3000:]
    for i in range(6):  # every output whole
        labels = json.loads((out / "labels" / f"shape_{i}.json").read_text())
        assert len(labels["face_labels"]) == 6 and labels["parts"] == ["top", "side"]
        assert (out / f"shape_{i}.blend").stat().st_size > 0
    assert not list(out.rglob("*partial*"))
    assert "done: 6 segmented, 1 failed" in out_text

    # --resume with the executor: only the failed input runs again.
    _cube(broken)  # mended, with its labels
    again = subprocess.run([sys.executable, BATCH, "--resume", str(path), *SMALL_RUN, "--mode",
                            "direct", "--executor", "ray", "--jobs", "2", "--output", str(out),
                            "--labels-dir", str(out / "labels")], capture_output=True,
                           text=True, timeout=SUBPROCESS_TIMEOUT_S, cwd=tmp_path)  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    after = _input_records(path)[len(records) :]
    assert [(r["file"], r["status"]) for r in after] == [(str(broken), "done")]


def test_ctrl_c_from_a_terminal_ends_the_workers_and_says_how_to_go_on(tmp_path):
    pytest.importorskip("ray")
    inputs = [_cube(tmp_path / "data" / f"shape_{i}.off") for i in range(5)]
    path = tmp_path / "manifest.jsonl"
    command = [sys.executable, BATCH, "--input", str(tmp_path / "data"), *SMALL_RUN,
               "--mode", "forward", "--epochs", "8", "--executor", "ray", "--jobs", "2",
               "--manifest", str(path)]  # fmt: skip
    # A session of its own: Ctrl+C in a terminal reaches the whole process group at once.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd=tmp_path, start_new_session=True,
                               preexec_fn=_sigint_as_at_a_terminal)  # fmt: skip
    deadline = time.monotonic() + SUBPROCESS_TIMEOUT_S
    while not _input_records(path) and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        time.sleep(POLL_S)
    os.killpg(process.pid, signal.SIGINT)
    out_text, err_text = process.communicate(timeout=SUBPROCESS_TIMEOUT_S)
    assert process.returncode == 130, out_text + err_text
    assert all(isinstance(json.loads(line), dict) for line in path.read_text().splitlines())
    records = _input_records(path)
    assert 1 <= len(records) < len(inputs) and all(r["status"] == "done" for r in records)
    assert f"--resume {path}" in out_text
