"""Ground-truth part labels from files, for the simulated teacher, tests and benchmarks."""

from __future__ import annotations

import pathlib

import numpy as np


def read_psb_labels(path, num_faces: int) -> tuple[list[str], np.ndarray]:
    """Read a labelled-PSB file: pairs of lines, a part name then its 1-based face indices.

    Returns the part names in file order and (num_faces,) int64 labels indexing them
    (-1 for faces that no part lists).
    """
    lines = [ln.strip() for ln in pathlib.Path(path).read_text().splitlines() if ln.strip()]
    if len(lines) % 2:
        raise ValueError(f"{path}: expected pairs of lines (a part name, then its faces)")
    names: list[str] = []
    labels = np.full(num_faces, -1, np.int64)
    for name, indices in zip(lines[0::2], lines[1::2], strict=True):
        faces = np.array(indices.split(), dtype=np.int64) - 1
        if faces.size and (faces.min() < 0 or faces.max() >= num_faces):
            raise ValueError(f"{path}: part {name!r} lists a face outside 1..{num_faces}")
        if name not in names:
            names.append(name)
        labels[faces] = names.index(name)
    return names, labels


def map_part_names(
    names: list[str], labels: np.ndarray, parts: list[str], synonyms: dict[str, str]
) -> np.ndarray:
    """Re-index labels from the file's names to ``parts`` (names unknown to both -> -1)."""
    lookup = np.full(len(names) + 1, -1, np.int64)
    for i, name in enumerate(names):
        target = synonyms.get(name, name)
        if target in parts:
            lookup[i] = parts.index(target)
    return lookup[labels]  # label -1 reads lookup[-1], which is -1
