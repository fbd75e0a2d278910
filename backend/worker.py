"""The compute half as a separate process, for a Blender whose Python cannot import torch.

Run by the add-on with another Python (one that has torch, CPU or CUDA):

    python /path/to/partdistill/backend/worker.py REQUEST_DIR     # by path (no install needed)
    python -m partdistill.backend.worker REQUEST_DIR              # when partdistill is importable
    python /path/to/partdistill/backend/worker.py --probe         # JSON: python, torch, CUDA

REQUEST_DIR holds a saved ``backend.run_stages.RunRequest`` (the files are described in
``backend/run_files.py``). The worker answers it with ``run_stages.run_compute``, as the add-on
and the batch do in their own process, prints ``PROGRESS <stage> <fraction>`` lines on stdout
while it runs and writes the result files (or an error entry) when done. Its messages go
through the product's logger to stderr, which its caller keeps as ``worker.log`` and shows
when the worker stops without a result.
"""

from __future__ import annotations

import sys

if __name__ == "__main__" and not __package__:
    # Run by path: drop this folder from sys.path (its module names must not shadow others) and
    # load the extension's root folder as the package "partdistill".
    import pathlib

    _here = pathlib.Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if pathlib.Path(p or ".").resolve() != _here]
    sys.path.insert(0, str(_here.parent))
    import load_repo

    load_repo.load()
    from partdistill.backend.worker import main as _main

    sys.exit(_main(sys.argv[1:]))


import json

from . import run_files
from .log import get_logger, use_terminal
from .run_stages import RunRequest, run_compute


def probe() -> dict:
    """What this Python offers the compute half: versions, CUDA, and what is missing."""
    report = {"python": sys.version.split()[0], "executable": sys.executable, "missing": []}
    for name in ("torch", "scipy", "transformers", "safetensors"):
        try:
            module = __import__(name)
            report[name] = getattr(module, "__version__", "")
        except ImportError:
            report["missing"].append(name)
    if "torch" in report:
        import torch

        report["cuda"] = bool(torch.cuda.is_available())
        report["cuda_device"] = torch.cuda.get_device_name(0) if report["cuda"] else ""
    return report


def run(folder) -> None:
    """Answer the request in ``folder``: result files on success, an error entry on failure."""
    try:
        request = RunRequest.load(folder)
        get_logger().info(
            f"{len(request.objects)} object(s), teacher {request.config.teacher!r}, "
            f"parts {', '.join(request.parts)}"
        )
        segmentations = run_compute(request, run_files.print_progress)
        run_files.write_result(folder, segmentations)
    except Exception as exc:
        run_files.write_error(folder, exc)
        raise


def main(argv: list[str]) -> int:
    if argv == ["--probe"]:
        print(json.dumps(probe()))
        return 0
    if len(argv) != 1:
        print("usage: worker.py REQUEST_DIR | --probe", file=sys.stderr)
        return 2
    use_terminal("stderr")  # stdout carries the progress lines
    try:
        run(argv[0])
    except Exception:
        get_logger().exception("the compute process failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
