"""Batch throughput: objects per second with --jobs 1 and --jobs 2 on the same files.

    python benchmarks/bench_batch_jobs.py [--files 12] [--jobs 1 2] [--executor local|ray]

Copies the PSB dev chairs (``../shared/data/psb_dev/Chair``, with their labels) into a temporary
folder until there are ``--files`` of them, then runs the batch script on that folder once per
``--jobs`` value, each run from scratch (its own output folder), with the simulated teacher and
the small settings of tests/test_batch_acceptance.py (distill mode). The time of a run is the
wall-clock time of the whole command: Blender, torch and the teacher loading in each job are
part of what --jobs costs. Prints per run: objects done, seconds, objects per second, and the
speed-up over the first run; and the 1-minute load average before and after, since another
process's load changes the figures (issue 11 asks >= 1.6x for --jobs 2 on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
BATCH = ROOT / "partdistill_blender" / "batch.py"
CHAIRS = sorted((ROOT.parent / "shared" / "data" / "psb_dev" / "Chair").glob("*.off"))
RUN = ["--parts", "back, seat, leg, arm", "--category", "chair", "--teacher", "simulated",
       "--ground-truth", "psb:backsupport=back,support=seat", "--views", "4", "--resolution",
       "64", "--points", "256", "--mode", "distill", "--epochs", "2", "--quiet"]  # fmt: skip


def make_files(folder: pathlib.Path, count: int) -> None:
    """``count`` chairs in ``folder`` (copies of the PSB chairs in turn, with their labels)."""
    for i in range(count):
        source = CHAIRS[i % len(CHAIRS)]
        shutil.copy(source, folder / f"chair_{i:03d}.off")
        shutil.copy(source.with_name(source.stem + "_labels.txt"),
                    folder / f"chair_{i:03d}_labels.txt")  # fmt: skip


def run(folder: pathlib.Path, out: pathlib.Path, jobs: int, executor: str) -> tuple[int, float]:
    """(objects done, wall seconds) of one batch run over ``folder``."""
    command = [sys.executable, str(BATCH), "--input", str(folder), *RUN, "--jobs", str(jobs),
               "--executor", executor, "--labels-dir", str(out / "labels"),
               "--manifest", str(out / "manifest.jsonl")]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    lines = (out / "manifest.jsonl").read_text().splitlines()
    done = sum(1 for line in lines if json.loads(line).get("status") == "done")
    return done, seconds


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--files", type=int, default=12)
    p.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    p.add_argument("--executor", choices=["local", "ray"], default="local")
    args = p.parse_args()
    if not CHAIRS:
        sys.exit("needs ../shared/data/psb_dev (the PSB dev meshes)")
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} before; "
          f"{args.files} chairs, executor {args.executor}")  # fmt: skip
    rates = []
    with tempfile.TemporaryDirectory() as temp:
        folder = pathlib.Path(temp) / "data"
        folder.mkdir()
        make_files(folder, args.files)
        for jobs in args.jobs:
            done, seconds = run(folder, pathlib.Path(temp) / f"out{jobs}", jobs, args.executor)
            rates.append(done / seconds)
            print(f"--jobs {jobs}: {done} objects in {seconds:.1f} s = {rates[-1]:.3f} "
                  f"objects/s, {rates[-1] / rates[0]:.2f}x --jobs {args.jobs[0]} "
                  f"(load average {os.getloadavg()[0]:.2f})", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
