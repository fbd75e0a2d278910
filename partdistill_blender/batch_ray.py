"""``--executor ray``: the batch's input files segmented by the workers of a Ray cluster.

Design. Blender's ``bpy`` module is one instance per process, so the unit of work is not a
free Ray task but a **Ray actor**: a worker process that imports bpy, loads the teacher once
(in its constructor) and then segments the inputs it is handed one after another, with the
batch's own in-process executor (``batch_local.segment_inputs`` on one input). This is
``--jobs`` with Ray placing the processes: ``--jobs N`` actors (default: one per CPU of the
cluster), each asking for one CPU, and one GPU too with ``--device cuda``, so Ray puts one
actor per GPU.

This process, the driver, hands each actor one input at a time (a slow input holds up no queue
behind it), appends each returned record to the run's manifest (it is the manifest's only
writer: lines never interleave, and ``--resume`` works as for a local run) and shows the
progress. The actors write the per-object outputs (``--output DIR``, ``--labels-dir``) and
their own log (``manifest.ray/workerK.log``) themselves, so on a cluster every path must be on
storage that every node sees, at the same path, and so must this checkout.

A worker process that dies (killed, out of memory, a crash inside Blender) is restarted by Ray
(``MAX_RESTARTS``), which loads its teacher again, and runs the input it was on again
(``TASK_RETRIES``); an input that kills its worker that often is recorded failed. Ctrl+C: no
more inputs are handed out, the actors are ended, and the inputs they were on stay
unrecorded (they run again on ``--resume``).

Ray is a dependency of this batch tool only (``requirements-batch.txt``), never of the
extension: nothing imports this module unless ``--executor ray`` is given.
"""

from __future__ import annotations

import collections
import contextlib
import pathlib

from ..backend import manifest
from ..backend.log import get_logger
from .batch_jobs import without_own_flags

RAY_MISSING = ('--executor ray needs Ray, which is not installed here: pip install "ray[default]" '
               "(or pip install -r requirements-batch.txt)")  # fmt: skip
ROOT = pathlib.Path(__file__).resolve().parents[1]  # the checkout: load_repo.py is there
POLL_S = 0.2
_RAN = [False]  # whether run_ray started Ray workers in this process (see exit_after_ray)
RAY_NAMES = {"num_cpus": "CPU", "num_gpus": "GPU"}  # an actor's options -> cluster resources
MAX_RESTARTS = 3  # per actor: Ray starts a dead worker process again this often
# A call whose worker process died runs again this often, in the restarted process; an input
# that still kills it is recorded failed.
TASK_RETRIES = 1


def import_ray():
    """The ``ray`` module; ImportError with ``RAY_MISSING`` where it is not installed."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError(RAY_MISSING) from exc
    return ray


def _worker_class(ray, resources: dict):
    """The actor class. Built here, not at module level, so that Ray pickles it by value: the
    worker processes know no package ``partdistill`` until the constructor loads the checkout."""

    class BatchWorker:
        """One worker process: bpy and the teacher loaded once, inputs segmented in turn."""

        def __init__(self, root: str, flags: list[str], log_file: str):
            import contextlib
            import importlib
            import sys

            sys.path.insert(0, root)
            import load_repo

            load_repo.load()
            # Imported by name once the repository is loaded as the package (a fresh process):
            # the in-process executor that a plain batch run and each --jobs process use.
            flags_module = importlib.import_module("partdistill.partdistill_blender.batch_flags")
            local = importlib.import_module("partdistill.partdistill_blender.batch_local")
            console = importlib.import_module("partdistill.partdistill_blender.batch_console")
            file_sink = importlib.import_module("partdistill.backend.log").file_sink

            self.local = local
            args = flags_module.parse_args([*flags, "--quiet"])
            # Files, one at a time; the driver writes the manifest, the worker only its log.
            args.files, args.manifest, args.log_file, args.jobs = True, None, log_file, 1
            self.args = args
            self.exit = contextlib.ExitStack()
            self.exit.enter_context(file_sink(log_file))
            self.run = local.Run(args)
            self.run.progress = console.Progress(0, "none")
            self.run.interrupts = console.Interrupts()  # never set: the driver ends workers instead
            self.run.load_teacher()

        def pid(self) -> int:
            import os

            return os.getpid()

        def segment(self, path: str) -> tuple[list[dict], int]:
            """(the manifest records of the input ``path``, this process's id)."""
            import os

            before = len(self.run.records)
            self.local.segment_inputs(self.run, self.local.input_loaders(self.args, [path]))
            return self.run.records[before:], os.getpid()

    options = {"max_restarts": MAX_RESTARTS, "max_task_retries": TASK_RETRIES, **resources}
    return ray.remote(**options)(BatchWorker)


def exit_after_ray(code: int) -> None:
    """End the process now with ``code`` when this process drove Ray workers (else return).

    Once a driver that imported bpy has had Ray actors, its normal exit hangs for ever after
    Blender's own exit handlers (seen with bpy 4.5 and Ray 2.60, also after ray.shutdown()),
    so the batch's script ends with os._exit once its output is flushed."""
    if not _RAN[0]:
        return
    import logging
    import os
    import sys

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def worker_flags(argv: list[str]) -> list[str]:
    """The run's flags less those the driver keeps (inputs, manifest, log, jobs, executor)."""
    return without_own_flags(argv)


def run_ray(args, files: list[str], records: list[dict], progress, interrupts) -> list[str]:
    """Segment ``files`` on Ray workers, appending their records to ``records`` and to the
    run's manifest as they end; returns lines for inputs that ended without a record (none
    unless the cluster went away). Raises KeyboardInterrupt once the workers are ended, when
    Ctrl+C came."""
    if not files:  # a resumed run with nothing left: no cluster to start
        return []
    ray = import_ray()
    log = get_logger()
    started_here = not ray.is_initialized()
    if started_here:
        # log_to_driver off: the workers' Blender chatter stays in Ray's and their own logs.
        ray.init(address=args.address, include_dashboard=False, log_to_driver=False,
                 logging_level="WARNING")  # fmt: skip
    folder = pathlib.Path(args.manifest).with_suffix(".ray")
    folder.mkdir(parents=True, exist_ok=True)
    resources = {"num_cpus": 1, **({"num_gpus": 1} if args.device == "cuda" else {})}
    # One actor per CPU (per GPU with cuda) at most: more would wait for ever to be placed.
    cluster = ray.cluster_resources()
    room = min(int(cluster.get(RAY_NAMES[k], 0)) for k in resources)
    count = max(1, min(args.jobs or room, room, len(files)))
    if args.jobs and args.jobs > room:
        log.warning(f"--jobs {args.jobs}: {count} Ray workers (the cluster has room for {room})")
    worker = _worker_class(ray, resources)
    _RAN[0] = True
    flags = worker_flags(args.argv)
    actors = [worker.remote(str(ROOT), flags, str(folder / f"worker{k}.log"))
              for k in range(1, count + 1)]  # fmt: skip
    pids = {}
    try:
        for k, actor in enumerate(actors, 1):
            try:  # the constructor ran: Blender imported, the teacher loaded
                pids[k] = ray.get(actor.pid.remote())
            except ray.exceptions.RayActorError as exc:
                return [f"ray worker {k} could not start: {exc}"]
            log.info(f"ray worker {k}: pid {pids[k]}, log {folder / f'worker{k}.log'}")
        _hand_out(ray, args, files, records, progress, interrupts, actors, pids)
    finally:
        for actor in actors:
            ray.kill(actor)
        if started_here:
            ray.shutdown()
    done = {r["file"] for r in records}
    return [f"{f}: no record (the cluster ended before it)" for f in files if f not in done]


def _hand_out(ray, args, files, records, progress, interrupts, actors, pids) -> None:
    """Give each idle actor the next input until every input has a record (or no actor is
    left)."""
    log = get_logger()
    pending = collections.deque(files)
    idle = list(range(len(actors)))
    alive = len(actors)
    in_flight = {}  # object ref -> (actor index, input)
    while (pending and alive) or in_flight:
        if interrupts.requested:
            raise KeyboardInterrupt  # the caller's finally ends the actors
        while pending and idle:
            k = idle.pop(0)
            path = pending.popleft()
            progress.stage(path, f"ray worker {k + 1}")
            in_flight[actors[k].segment.remote(path)] = (k, path)
        ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=POLL_S)
        for ref in ready:
            k, path = in_flight.pop(ref)
            try:
                new, pid = ray.get(ref)
            except ray.exceptions.RayActorError as exc:
                # Ray restarted the worker and ran the input again in it (TASK_RETRIES): an
                # input that ends its worker process this often is the input's fault.
                log.warning(f"ray worker {k + 1} ended twice while segmenting {path} "
                            f"({type(exc).__name__}): failed")  # fmt: skip
                reason = f"its Ray worker process died {1 + TASK_RETRIES} times on it"
                new = [manifest.input_record(path, [], manifest.FAILED, reason)]
                if _still_there(ray, actors[k]):
                    idle.append(k)
                else:
                    alive -= 1
                    log.error(f"ray worker {k + 1} is gone ({MAX_RESTARTS} restarts)")
            except ray.exceptions.RayTaskError as exc:  # a fault of the batch, not the input
                idle.append(k)
                new = [manifest.input_record(path, [], manifest.FAILED, str(exc.cause or exc))]
            else:
                idle.append(k)
                if pids.get(k + 1) != pid:  # a new process: the old one died on an input
                    log.warning(f"ray worker {k + 1}: restarted as pid {pid} (pid "
                                f"{pids.get(k + 1)} ended); {path} ran again in it")  # fmt: skip
                    pids[k + 1] = pid
            for record in new:
                manifest.append_record(args.manifest, record)
                records.append(record)
                progress.finished(record["file"], record["status"])


def _still_there(ray, actor) -> bool:
    """Whether ``actor`` answers (after a restart, if Ray had one left for it)."""
    try:
        ray.get(actor.pid.remote())
    except ray.exceptions.RayActorError:
        return False
    return True
