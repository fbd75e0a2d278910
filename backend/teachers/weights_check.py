"""A model folder checked without loading it: the right kind for the teacher, and weights files
that are whole. Cheap (reads config.json and each safetensors header), so the panel and the
batch run it before rendering: a truncated download or a detector given to the CLIP teacher is
said at once, not after the views are rendered.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from ..contracts import TeacherUnavailable

# The model types each built-in teacher loads (config.json's "model_type").
MODEL_TYPES = {
    "clip": ("clip", "siglip"),
    "owlv2": ("owlv2",),
    "grounding-dino": ("grounding-dino",),
}
# What to do about a broken folder.
REFETCH = ("Fetch the model again (python scripts/download_models.py NAME on an online "
           "machine) and copy the whole folder, or pass another one with --model DIR.")  # fmt: skip


def _model_type(folder: Path, name: str) -> str:
    try:
        return str(json.loads((folder / "config.json").read_text()).get("model_type", ""))
    except (OSError, ValueError, AttributeError) as exc:
        raise TeacherUnavailable(
            f"model {name!r}: {folder / 'config.json'} cannot be read ({exc}).", REFETCH
        ) from None


def safetensors_problem(path: Path) -> str | None:
    """Why a safetensors file is not whole (its header says how long its data is), or None."""
    size = path.stat().st_size
    try:
        with open(path, "rb") as file:
            (length,) = struct.unpack("<Q", file.read(8))
            if length > size - 8:
                return "its header runs past the end of the file"
            header = json.loads(file.read(length))
    except (OSError, ValueError, struct.error) as exc:
        return f"its header cannot be read ({type(exc).__name__})"
    ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"]
    if 8 + length + max(ends, default=0) > size:
        return f"it is cut short ({size} bytes, its header needs {8 + length + max(ends)})"
    return None


def check_model_folder(teacher: str, folder: str, name: str) -> None:
    """TeacherUnavailable when the model in ``folder`` is not one ``teacher`` loads, or one of
    its safetensors weights files is truncated or corrupt."""
    folder = Path(folder)
    if not folder.is_dir():
        return  # a download: nothing on disk yet
    found = _model_type(folder, name)
    wanted = MODEL_TYPES.get(teacher)
    if wanted and found not in wanted:
        raise TeacherUnavailable(
            f"model {name!r} in {folder} is a {found or 'unknown'!r} model; the {teacher} "
            f"teacher loads {' or '.join(repr(w) for w in wanted)} models.",
            "Pass a model of that kind with --model DIR, or pick the teacher that loads it.",
        )
    for path in sorted(folder.glob("*.safetensors")):
        problem = safetensors_problem(path)
        if problem:
            raise TeacherUnavailable(
                f"model {name!r}: the weights file {path} is corrupt or incomplete: {problem}.",
                REFETCH.replace("NAME", name),
            )
