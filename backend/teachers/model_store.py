"""The teachers' weights on this machine: which built-in models exist, whether each is
installed (where, how big), whether what is installed is whole, and removing it.

Pure file-system work, no network and no torch: the Blender panel asks it on every redraw.
A model is "installed" when it is a folder with a config.json and weights, or a snapshot in the
hub cache whose config.json is there (``hub_download`` fetches config.json last, so a cached
config.json means the weights before it are whole).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from .hub_download import PARTIAL_SUFFIX, content_hash, format_bytes, repo_folder
from .weights_check import MODEL_TYPES, safetensors_problem

WEIGHT_SUFFIXES = (".safetensors", ".bin")


@dataclass(frozen=True)
class CatalogModel:
    """A built-in teacher's model; ``download_bytes`` is the size of what Download fetches
    (safetensors weights and configs, as listed on the Hub; the exact figure comes from the
    Hub when a download starts)."""

    repo_id: str
    teacher: str
    title: str
    download_bytes: int


CATALOG = (
    CatalogModel("openai/clip-vit-base-patch16", "clip", "CLIP ViT-B/16", 600_000_000),
    CatalogModel(
        "google/owlv2-base-patch16-ensemble", "owlv2", "OWLv2 base (boxes)", 620_000_000
    ),  # fmt: skip
    CatalogModel(
        "IDEA-Research/grounding-dino-base",
        "grounding-dino",
        "Grounding DINO base (boxes)",
        940_000_000,
    ),  # fmt: skip
)


@dataclass(frozen=True)
class InstalledModel:
    location: Path  # the folder transformers loads: a plain folder or a cache snapshot
    size_bytes: int  # on disk (a cache's blobs counted once)
    in_cache: bool
    partial_bytes: int = 0  # of an interrupted download, kept for a resume


def catalog_entry(repo_id: str) -> CatalogModel | None:
    return next((m for m in CATALOG if m.repo_id == repo_id), None)


def _has_weights(folder: Path) -> bool:
    return any(p.suffix in WEIGHT_SUFFIXES for p in folder.iterdir())


def _cached_snapshot(repo_id: str, cache_dir: Path) -> Path | None:
    repo = repo_folder(repo_id, cache_dir)
    ref = repo / "refs" / "main"
    if not ref.is_file():
        return None
    snapshot = repo / "snapshots" / ref.read_text().strip()
    if (snapshot / "config.json").is_file() and _has_weights(snapshot):
        return snapshot
    return None


def partial_bytes(repo_id: str, cache_dir: str | Path) -> int:
    """Bytes an interrupted download left in the cache (what a resume starts from)."""
    blobs = repo_folder(repo_id, Path(cache_dir)) / "blobs"
    if not blobs.is_dir():
        return 0
    return sum(p.stat().st_size for p in blobs.glob("*" + PARTIAL_SUFFIX))


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def is_hub_id(name: str) -> bool:
    """``name`` is an "org/name" Hugging Face id rather than a folder path: exactly one "/",
    not absolute, not starting with "." or "~", and nothing of that name on disk."""
    path = Path(name).expanduser()
    looks_like_path = path.is_absolute() or name.startswith((".", "~")) or path.exists()
    return not looks_like_path and name.count("/") == 1


def installed_location(name: str, cache_dir: str | Path) -> tuple[Path, bool] | None:
    """(folder, in the hub cache) of the installed model ``name``, or None. Measures no sizes:
    cheap enough for a poll on every redraw."""
    path = Path(name).expanduser()
    if path.is_dir():
        whole = (path / "config.json").is_file() and _has_weights(path)
        return (path, False) if whole else None
    if not is_hub_id(name):
        return None
    snapshot = _cached_snapshot(name, Path(cache_dir))
    return (snapshot, True) if snapshot is not None else None


def installed_model(name: str, cache_dir: str | Path) -> InstalledModel | None:
    """Where the model ``name`` (a hub id or a folder) is on disk and how big, or None when it
    is not installed."""
    found = installed_location(name, cache_dir)
    if found is None:
        return None
    location, in_cache = found
    if not in_cache:
        return InstalledModel(location, _folder_size(location), in_cache=False)
    blobs = repo_folder(name, Path(cache_dir)) / "blobs"
    return InstalledModel(location, _folder_size(blobs), in_cache=True,
                          partial_bytes=partial_bytes(name, cache_dir))  # fmt: skip


def verify_model(name: str, cache_dir: str | Path, teacher: str | None = None) -> list[str]:
    """What is wrong with the installed model ``name``, in plain words; [] when it is whole.

    Checks: config.json readable and of a kind ``teacher`` loads; a weights file present; each
    safetensors file as long as its header says; in the hub cache, every file's content against
    the hash the Hub gave it (sha256 of LFS files, git's sha1 of the others), so a truncated or
    altered file is named.
    """
    found = installed_model(name, cache_dir)
    if found is None:
        return [_why_not_installed(name)]
    folder = found.location
    problems = []
    try:
        model_type = json.loads((folder / "config.json").read_text()).get("model_type", "")
    except (OSError, ValueError, AttributeError) as exc:
        return [f"config.json cannot be read ({type(exc).__name__}): the download is damaged"]
    wanted = MODEL_TYPES.get(teacher or "")
    if wanted and model_type not in wanted:
        problems.append(
            f"config.json says this is a {model_type or 'unknown'!r} model; the {teacher} "
            f"teacher needs {' or '.join(repr(w) for w in wanted)}"
        )
    for path in sorted(folder.iterdir()):
        if path.suffix == ".safetensors":
            problem = safetensors_problem(path)
            if problem:
                problems.append(f"{path.name} is damaged: {problem}")
                continue
        if found.in_cache and path.is_symlink():
            blob = path.resolve()
            if not blob.is_file():
                problems.append(f"{path.name} is missing from the cache (its link is broken)")
                continue
            digest = content_hash(blob, blob.name)
            if digest is not None and digest != blob.name:
                size = format_bytes(blob.stat().st_size)
                problems.append(
                    f"{path.name} is not the file the Hub sent (now {size}, and its hash "
                    "differs): it was changed or cut short after the download"
                )
    return problems


def _why_not_installed(name: str) -> str:
    folder = Path(name).expanduser()
    if not folder.is_dir():
        return f"{name} is not installed (not in the cache, and no such folder)"
    if not (folder / "config.json").is_file():
        return "the folder holds no config.json: it is not a saved model"
    return "the folder holds config.json but no weights file (.safetensors or .bin)"


def remove_model(name: str, cache_dir: str | Path) -> int:
    """Delete the hub cache entry of ``name`` (partial downloads too); returns bytes freed.
    A plain folder chosen with "Use Folder" is the user's and is never deleted here."""
    repo = repo_folder(name, Path(cache_dir))
    if not is_hub_id(name) or not repo.is_dir():
        return 0
    size = _folder_size(repo)
    shutil.rmtree(repo)
    return size
