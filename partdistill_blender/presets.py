"""Part-name presets: a built-in table, the two benchmarks' vocabularies, and the user's own.

The benchmark vocabularies (ShapeNetPart, PartNet-Ensemble) are read at run time from
``partdistill_blender/data/part_vocabularies.json``, which the extension builder copies into
the zip, or else from ``<repo>/../shared/data/part_vocabularies.json`` (a development
checkout). Without either there are the built-in table and the user's presets.
"""

from __future__ import annotations

import json
import os
import pathlib

from .preferences import extension_user_dir

# Everyday objects and the parts an artist would name, typed by us.
BUILTIN_PRESETS: dict[str, list[str]] = {
    "Chair": ["back", "seat", "leg", "arm"],
    "Table": ["top", "leg", "drawer"],
    "Lamp": ["base", "pole", "shade"],
    "Mug": ["body", "handle"],
    "Bottle": ["body", "neck", "cap"],
    "Airplane": ["body", "wing", "tail", "engine"],
    "Car": ["body", "wheel", "window", "roof"],
    "Bicycle": ["frame", "wheel", "saddle", "handlebar"],
    "Guitar": ["body", "neck", "head"],
    "Knife": ["blade", "handle"],
    "Sofa": ["back", "seat", "arm", "leg"],
    "Bed": ["frame", "mattress", "headboard", "leg"],
    "Character": ["head", "torso", "arm", "leg"],
    "Animal": ["head", "body", "leg", "tail"],
}

BUILTIN_GROUP = "Built-in"
USER_GROUP = "My Presets"
VOCABULARIES_FILE = "part_vocabularies.json"
VOCABULARIES_PATHS = (
    pathlib.Path(__file__).resolve().parent / "data" / VOCABULARIES_FILE,  # built into the zip
    pathlib.Path(__file__).resolve().parents[2] / "shared/data" / VOCABULARIES_FILE,  # checkout
)
DATASET_LABELS = {"ShapeNetPart": "ShapeNetPart", "PartNetE": "PartNet-Ensemble"}


def dataset_presets(path: os.PathLike | None = None) -> dict[str, dict[str, list[str]]]:
    """{"ShapeNetPart": {"Chair": [...], ...}, "PartNetE": {...}}; {} when the file is absent."""
    candidates = [pathlib.Path(path)] if path is not None else VOCABULARIES_PATHS
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        return {}
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    return {
        group: {name: [str(p) for p in parts] for name, parts in categories.items()}
        for group, categories in data.items()
        if isinstance(categories, dict)
    }


def user_presets_path() -> pathlib.Path:
    return pathlib.Path(extension_user_dir("presets")) / "part_presets.json"


def load_user_presets(path: os.PathLike | None = None) -> dict[str, list[str]]:
    """The user's saved presets, name -> part names; {} when none are saved or the file is bad."""
    path = pathlib.Path(path) if path is not None else user_presets_path()
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): [str(p) for p in v] for k, v in data.items() if isinstance(v, list)}


def _write_user_presets(presets: dict[str, list[str]], path: pathlib.Path) -> None:
    # Write a temporary file and rename it, so a crash never leaves half a presets file.
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(presets, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def save_user_preset(name: str, parts: list[str], path: os.PathLike | None = None) -> None:
    """Add or replace the user preset ``name``."""
    name = name.strip()
    if not name:
        raise ValueError("a preset needs a name")
    if not parts:
        raise ValueError("a preset needs at least one part name")
    path = pathlib.Path(path) if path is not None else user_presets_path()
    presets = load_user_presets(path)
    presets[name] = list(parts)
    _write_user_presets(presets, path)


def delete_user_preset(name: str, path: os.PathLike | None = None) -> bool:
    """Remove the user preset ``name``; False when there was none."""
    path = pathlib.Path(path) if path is not None else user_presets_path()
    presets = load_user_presets(path)
    if name not in presets:
        return False
    del presets[name]
    _write_user_presets(presets, path)
    return True


def preset_groups() -> dict[str, dict[str, list[str]]]:
    """All presets by menu group, in menu order: built-in, the benchmarks, the user's."""
    groups = {BUILTIN_GROUP: dict(BUILTIN_PRESETS)}
    for key, presets in dataset_presets().items():
        groups[DATASET_LABELS.get(key, key)] = presets
    groups[USER_GROUP] = load_user_presets()
    return groups


def find_preset(group: str, name: str) -> list[str]:
    """The part names of one preset -> KeyError with a readable message when missing."""
    presets = preset_groups().get(group, {})
    if name not in presets:
        raise KeyError(f"no preset {name!r} in {group!r}")
    return list(presets[name])
