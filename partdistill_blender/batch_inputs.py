"""The batch's inputs: files, folders (searched recursively for mesh files) and glob patterns,
from the command line and from list files, as one list of absolute paths without duplicates."""

from __future__ import annotations

import glob
import os
import pathlib

from .importers import SUPPORTED_EXTENSIONS

GLOB_CHARACTERS = "*?["
# How many skipped names a warning lists before it says "and N more".
NAMES_SHOWN = 5


def read_input_list(path: os.PathLike | str) -> list[str]:
    """The entries of a list file: one path, folder or glob a line; blank lines and lines
    starting with # are ignored. Relative entries are relative to the list file's folder."""
    path = pathlib.Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ValueError(f"--input-list {path}: {exc.strerror or exc}") from None
    entries = [line.strip() for line in lines]
    return [str(path.parent / e) for e in entries if e and not e.startswith("#")]


def _is_mesh(path: pathlib.Path) -> bool:
    return path.suffix.lower() in SUPPORTED_EXTENSIONS


def _folder(folder: pathlib.Path, skipped: list[str]) -> list[pathlib.Path]:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    skipped += [str(p) for p in files if not _is_mesh(p)]
    return [p for p in files if _is_mesh(p)]


def expand_inputs(entries: list[str]) -> tuple[list[str], list[str]]:
    """(files, warnings) for the batch's ``entries``.

    A folder gives its mesh files (by extension, recursively, sorted; hidden files left out);
    a glob gives its matches, folders among them searched in turn; a plain path is kept as it
    is, even when missing or not a mesh file, so that the run reports it as a failed input.
    Files are absolute, each once, in first-seen order. Warnings name the non-mesh files found
    in folders and globs that matched nothing.
    """
    found: list[pathlib.Path] = []
    skipped: list[str] = []
    warnings: list[str] = []
    for entry in entries:
        path = pathlib.Path(entry).expanduser()
        if any(c in entry for c in GLOB_CHARACTERS) and not path.exists():
            matches = sorted(glob.glob(str(path), recursive=True))
            if not matches:
                warnings.append(f"{entry}: matches no file")
            for match in map(pathlib.Path, matches):
                if match.is_dir():
                    found += _folder(match, skipped)
                elif _is_mesh(match):
                    found.append(match)
                else:
                    skipped.append(str(match))
        elif path.is_dir():
            folder_files = _folder(path, skipped)
            if not folder_files:
                warnings.append(f"{entry}: no mesh files ({', '.join(SUPPORTED_EXTENSIONS)})")
            found += folder_files
        else:
            found.append(path)
    if skipped:
        more = len(skipped) - NAMES_SHOWN
        names = ", ".join(skipped[:NAMES_SHOWN]) + (f" and {more} more" if more > 0 else "")
        warnings.append(f"skipped {len(skipped)} files that are not meshes: {names}")
    unique = dict.fromkeys(os.path.abspath(p) for p in found)
    return list(unique), warnings
