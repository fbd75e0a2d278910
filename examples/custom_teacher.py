"""A teacher of your own, plugged in from the command line with no change to the extension.

    python partdistill_blender/batch.py --input chair.off --parts "back, seat, leg" \
        --teacher examples.custom_teacher:make --teacher-option confidence=0.8

This one needs no model: it names parts by height in the image, the first part name for the
top band of the object's silhouette, the last for the bottom one. That is a poor teacher for
most objects, and a short one to read: a real teacher would run a vision-language model where
``predict`` computes ``probabilities``. See "Adding a teacher" in docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import numpy as np


class BandsTeacher:
    """A pixel teacher: part r is predicted on the r-th horizontal band of the silhouette."""

    kind = "pixel"  # predict() returns (H, W, R) probabilities per view ("box": boxes)

    def __init__(self, part_names: list[str], confidence: float = 0.9):
        self.part_names = list(part_names)
        self.confidence = float(confidence)

    def predict(self, views) -> list[np.ndarray]:
        """One (H, W, R) float32 array per view; rows of each sum to 1."""
        return [self.probabilities(view.face_ids) for view in views]

    def probabilities(self, face_ids: np.ndarray) -> np.ndarray:
        """Probabilities for one view from its polygon map (-1 where no polygon is seen)."""
        height, width = face_ids.shape
        parts = len(self.part_names)
        # Unsure everywhere by default (the background too: knowledge extraction skips it).
        probs = np.full((height, width, parts), 1.0 / parts, np.float32)
        rows = np.flatnonzero((face_ids >= 0).any(axis=1))
        if rows.size == 0 or parts == 1:
            return probs
        # Row -> band index, over the rows where the object is seen, top row first.
        band = np.clip(((np.arange(height) - rows[0]) * parts) // (rows[-1] - rows[0] + 1), 0,
                       parts - 1)  # fmt: skip
        others = (1.0 - self.confidence) / (parts - 1)
        seen = face_ids >= 0
        probs[seen] = others
        row_of_pixel = np.broadcast_to(band[:, None], (height, width))
        probs[seen, row_of_pixel[seen]] = self.confidence
        return probs


def make(part_names: list[str], confidence: float = 0.9, **_other_options) -> BandsTeacher:
    """The factory the extension calls as ``make(part_names, **options)``.

    Options come from ``--teacher-option KEY=VALUE`` (values are parsed as Python literals
    where they can be); options this teacher does not know are ignored.
    """
    return BandsTeacher(part_names, confidence=confidence)
