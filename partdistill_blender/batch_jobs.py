"""``--jobs N``: the batch's inputs shared among N batch processes.

Each job is the batch itself (``batch.py``) on a share of the inputs, with its own manifest,
log and teacher, loaded once per job. This process only starts them, copies each job's
manifest records into the run's manifest as they appear (it is the manifest's one writer, so
lines never interleave), shows the progress and passes Ctrl+C on. Jobs run in a session of
their own: a terminal's Ctrl+C reaches them once, through here.
"""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time

import bpy

from ..backend import manifest

POLL_S = 0.2
# Flags of this process a job gets its own value of (or none), with how many values they take
# ("+": every value up to the next flag).
OWN_FLAGS = {"--jobs": 1, "--input": "+", "--input-list": 1, "--resume": 1, "--manifest": 1,
             "--log": 1, "--log-file": 1, "--quiet": 0, "--verbose": 0, "--executor": 1,
             "--address": 1}  # fmt: skip


def without_own_flags(argv: list[str]) -> list[str]:
    """``argv`` less the flags each job is given its own value of (``OWN_FLAGS``)."""
    kept, i = [], 0
    while i < len(argv):
        name, joined, _ = argv[i].partition("=")
        count = OWN_FLAGS.get(name)
        i += 1
        if count is None:
            kept.append(argv[i - 1])
        elif not joined and count == "+":
            while i < len(argv) and not argv[i].startswith("--"):
                i += 1
        elif not joined:
            i += count
    return kept


def job_command(flags: list[str]) -> list[str]:
    """The command that runs the batch with ``flags`` as this process runs: Blender's program
    with ``--python``, or this Python where the batch runs on the bpy module."""
    script = str(pathlib.Path(__file__).with_name("batch.py"))
    if bpy.app.binary_path:  # the bpy module has none
        return [bpy.app.binary_path, "--background", "--factory-startup", "--python", script,
                "--", *flags]  # fmt: skip
    return [sys.executable, script, *flags]


class Job:
    """One batch process on its share of the inputs."""

    def __init__(self, folder: pathlib.Path, number: int, files: list[str], flags: list[str],
                 threads: int = 0):  # fmt: skip
        self.files = files
        self.list = folder / f"job{number}.txt"
        self.manifest = folder / f"job{number}.jsonl"
        self.log = folder / f"job{number}.log"
        self.out = folder / f"job{number}.out"  # its terminal: errors, summary, a crash
        self.list.write_text("".join(f"{f}\n" for f in files), encoding="utf-8")
        self.manifest.unlink(missing_ok=True)  # a job of an earlier run
        self.read = 0  # input records already copied
        command = job_command([*flags, "--input-list", str(self.list), "--manifest",
                               str(self.manifest), "--log", str(self.log), "--quiet"])  # fmt: skip
        with open(self.out, "ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=_job_env(threads),
                                            start_new_session=True)  # fmt: skip

    def new_records(self) -> list[dict]:
        """The input records the job appended since the last call (whole lines only)."""
        records = [r for r in manifest.read_records(self.manifest)
                   if r.get("event") == manifest.INPUT]  # fmt: skip
        new, self.read = records[self.read :], len(records)
        return new


def run_jobs(args, files: list[str], records: list[dict], progress, interrupts) -> list[str]:
    """Segment ``files`` in ``args.jobs`` batch processes, appending their input records to
    ``records`` as they end; returns a line for each job that ended before its share did.
    Raises KeyboardInterrupt once the jobs have stopped, when Ctrl+C came."""
    folder = pathlib.Path(args.manifest).with_suffix(".jobs")
    folder.mkdir(parents=True, exist_ok=True)
    flags = without_own_flags(args.argv)
    shares = [files[k :: args.jobs] for k in range(args.jobs)]
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    jobs = [Job(folder, k, share, flags, threads) for k, share in enumerate(shares, 1) if share]
    stopped = False
    try:
        while True:
            if interrupts.requested and not stopped:
                _stop(jobs)
                stopped = True
            running = [job.process.poll() is None for job in jobs]
            for job in jobs:  # after the poll: a job that has ended has written its last line
                for record in job.new_records():
                    manifest.append_record(args.manifest, record)
                    records.append(record)
                    progress.finished(record["file"], record["status"])
            if not any(running):
                break
            time.sleep(POLL_S)
    except BaseException:  # a second Ctrl+C, or a full disk under the manifest: stop the jobs
        _stop(jobs)
        for job in jobs:
            job.process.wait()
        raise
    interrupts.check()
    unfinished = [f"job {k} stopped with code {job.process.returncode} after {job.read} of "
                  f"{len(job.files)} inputs (its output: {job.out})"
                  for k, job in enumerate(jobs, 1) if job.read < len(job.files)]  # fmt: skip
    return unfinished


def _job_env(threads: int) -> dict[str, str]:
    """This process's environment, with ``threads`` compute threads per job unless the caller
    chose: N jobs each with torch's default of one thread per core would run N times as many
    threads as there are cores, and lose time to switching (measured below 1.4x for --jobs 2
    on 2 cores; Ray's one-thread workers ran twice as fast as one default job)."""
    env = dict(os.environ)
    if threads:
        env.setdefault("OMP_NUM_THREADS", str(threads))
    return env


def _stop(jobs: list[Job]) -> None:
    for job in jobs:
        if job.process.poll() is None:
            try:
                job.process.send_signal(signal.SIGINT)
            except ValueError:  # Windows sends no SIGINT to a process: it can only end it
                job.process.terminate()
