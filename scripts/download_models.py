"""Fetch teacher models on a machine that is online, for machines that are not.

    python scripts/download_models.py                      # the default model of every teacher
    python scripts/download_models.py openai/clip-vit-base-patch16 --cache-dir /shared/hf
    python scripts/download_models.py google/owlv2-base-patch16-ensemble --local-dir ./owlv2

With --cache-dir (or the default Hugging Face cache) the files land in the hub cache layout:
copy that folder to the offline machine and point PartDistill at it (``cache_dir`` in the
configuration, or HF_HOME). With --local-dir each model is also copied to a plain folder that
``--model DIR`` loads. Only the files transformers needs are fetched (safetensors weights when
the repository has them); an interrupted download resumes where it stopped. HF_ENDPOINT
chooses another hub (a mirror). "open_clip:ARCH/TAG" names fetch open_clip's weights into the cache.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _repo_package():
    """The repository as the package ``partdistill`` (for DEFAULT_MODELS), as tests load it."""
    sys.path.insert(0, str(ROOT))
    import load_repo

    load_repo.load()
    from partdistill.backend.teachers import models

    return models


def fetch(repo_id: str, cache_dir: str | None, local_dir: str | None) -> str:
    """Download one hub model's configs, tokenizer and weights with a progress bar (the code
    the add-on's Download button and the batch's --allow-downloads use); resumes an interrupted
    download. Returns where the model is."""
    models = _repo_package()
    from partdistill.backend.teachers.hub_download import download_model, terminal_progress

    cache = cache_dir or str(models.hub_cache_dir(models.PartDistillConfig()))
    snapshot = download_model(repo_id, cache, progress=terminal_progress())
    if not local_dir:
        return str(snapshot)
    target = Path(local_dir) / repo_id.replace("/", "--")
    shutil.copytree(snapshot, target, dirs_exist_ok=True)  # links become plain files
    return str(target)


def fetch_open_clip(name: str, cache_dir: str | None) -> str:
    models = _repo_package()
    from partdistill.backend.teachers.open_clip_loader import (
        import_open_clip,
        parse_open_clip_name,
    )

    arch, tag = parse_open_clip_name(name)
    open_clip = import_open_clip(name)
    open_clip.create_model(arch, pretrained=tag, cache_dir=cache_dir)
    return str(cache_dir or models.hub_cache_dir(models.PartDistillConfig()))


def main(argv: list[str] | None = None) -> int:
    models = _repo_package()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "models",
        nargs="*",
        help="hub ids or open_clip:ARCH/TAG (default: "
        + ", ".join(models.DEFAULT_MODELS.values())
        + ")",
    )
    parser.add_argument("--cache-dir", default=None, help="Hugging Face cache to fill")
    parser.add_argument("--local-dir", default=None, help="write each model to DIR/<org>--<name>")
    args = parser.parse_args(argv)
    names = args.models or list(models.DEFAULT_MODELS.values())
    failed = 0
    for name in names:
        try:
            if name.startswith(models.OPEN_CLIP_PREFIX):
                where = fetch_open_clip(name, args.cache_dir)
            else:
                where = fetch(name, args.cache_dir, args.local_dir)
        except Exception as exc:  # report every model, then fail
            print(f"FAILED {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(f"{name}: {where}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
