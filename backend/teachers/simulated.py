"""A teacher built from ground truth that errs the way vision-language models do.

For tests and benchmarks, where no real VLM weights exist. Starting from the true part of every
pixel it: misses parts (in random views, and wherever a part is only partly visible: the
region goes to the neighbouring parts), takes local regions of one part for another, sees
the image only on a coarse patch grid (as CLIP's 14 x 14 tokens), blurs boundaries, and
reports noisy, view-dependent confidences.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..contracts import ObjectInfo, View


@dataclass
class TeacherNoise:
    grid: int = 14  # patch grid of the simulated ViT
    blur: float = 0.6  # Gaussian blur of the patch logits, in patches
    miss_probability: float = 0.1  # a visible part is missed in a view
    miss_partial_below: float = 0.0  # missed where it shows less than this share of its best view
    confusions_per_view: float = 1.5  # mean number of regions taken for another part, per view
    confusion_radius: float = 0.2  # their radius, as a share of the object's extent in the view
    logit_noise: float = 1.0  # std of Gaussian noise on the patch logits
    sharpness: float = 3.0  # logit scale of the clean patch fractions
    temperature_range: tuple = (0.6, 1.6)  # per-view temperature: noisy, view-dependent confidence
    box_jitter: float = 0.08  # box teacher: corner jitter, as a fraction of the box size


class SimulatedTeacher:
    """Teacher protocol (kind "pixel" or "box"); needs ground truth per polygon via ``bind``."""

    def __init__(self, part_names, kind="pixel", face_labels=None, seed=0, noise=None):
        if kind not in ("pixel", "box"):
            raise ValueError(f"simulated teacher kind must be 'pixel' or 'box', not {kind!r}")
        self.part_names = list(part_names)
        self.kind = kind
        self.seed = int(seed)
        self.noise = noise or TeacherNoise()
        self.face_labels = None if face_labels is None else np.asarray(face_labels, np.int64)

    def bind(self, info: ObjectInfo) -> None:
        if info.face_labels is not None:
            self.face_labels = np.asarray(info.face_labels, np.int64)

    def predict(self, views: list[View]) -> list:
        if self.face_labels is None:
            raise ValueError(
                "the simulated teacher needs the ground-truth part of every polygon "
                "(e.g. --ground-truth attribute:partdistill_ground_truth)"
            )
        truth = [self._true_parts(v) for v in views]
        r = len(self.part_names)
        counts = np.array([[np.count_nonzero(t == k) for k in range(r)] for t in truth])
        best = np.maximum(counts.max(axis=0), 1)
        out = []
        for i, (view, parts) in enumerate(zip(views, truth, strict=True)):
            rng = np.random.default_rng([self.seed, i])
            parts = self._miss_and_confuse(parts, counts[i] / best, rng)
            if self.kind == "box":
                out.append(self._boxes(parts, rng))
            else:
                out.append(self._pixel_probs(parts, view.face_ids >= 0, rng))
        return out

    def _true_parts(self, view: View) -> np.ndarray:
        """(H, W) true part per pixel, -1 on background or unlabelled polygons."""
        ids = view.face_ids
        on = (ids >= 0) & (ids < len(self.face_labels))
        parts = np.full(ids.shape, -1, np.int64)
        parts[on] = self.face_labels[ids[on]]
        parts[parts >= len(self.part_names)] = -1
        return parts

    def _miss_and_confuse(self, parts, visible_share, rng) -> np.ndarray:
        noise = self.noise
        present = [k for k in range(len(self.part_names)) if np.any(parts == k)]
        missed = [
            k
            for k in present
            if rng.random() < noise.miss_probability or visible_share[k] < noise.miss_partial_below
        ]
        for k in missed:
            parts = _absorb_into_neighbours(parts, k)
        present = [k for k in present if k not in missed]
        if len(self.part_names) < 2 or not present:
            return parts
        # Confusions are local, as CLIP's are: a disc of one part is taken for another part.
        rows, cols = np.nonzero(parts >= 0)
        extent = max(np.ptp(rows), np.ptp(cols), 1)
        yy, xx = np.mgrid[0 : parts.shape[0], 0 : parts.shape[1]]
        for _ in range(rng.poisson(noise.confusions_per_view)):
            centre = rng.integers(len(rows))
            source = parts[rows[centre], cols[centre]]
            others = [k for k in range(len(self.part_names)) if k != source]
            radius = noise.confusion_radius * extent * rng.uniform(0.5, 1.5)
            disc = (yy - rows[centre]) ** 2 + (xx - cols[centre]) ** 2 <= radius**2
            parts = np.where(disc & (parts == source), others[rng.integers(len(others))], parts)
        return parts

    def _pixel_probs(self, parts, on_object, rng) -> np.ndarray:
        """Coarse, blurred, noisy probabilities (H, W, R); zero off the object."""
        noise = self.noise
        h, w = parts.shape
        r = len(self.part_names)
        grid = noise.grid
        cell = (np.arange(h) * grid // h)[:, None] * grid + (np.arange(w) * grid // w)[None, :]
        fractions = np.zeros((grid * grid, r))
        labelled = parts >= 0
        np.add.at(fractions, (cell[labelled], parts[labelled]), 1.0)
        fractions /= np.maximum(fractions.sum(axis=1, keepdims=True), 1.0)
        logits = noise.sharpness * np.log(fractions + 0.05).reshape(grid, grid, r)
        logits += rng.normal(0.0, noise.logit_noise, logits.shape)
        logits = ndimage.gaussian_filter(logits, sigma=(noise.blur, noise.blur, 0))
        logits /= rng.uniform(*noise.temperature_range)
        # Bilinear upsampling from patch centres to pixel centres.
        ys = (np.arange(h) + 0.5) * grid / h - 0.5
        xs = (np.arange(w) + 0.5) * grid / w - 0.5
        coords = np.meshgrid(ys, xs, indexing="ij")
        up = np.stack(
            [
                ndimage.map_coordinates(logits[..., k], coords, order=1, mode="nearest")
                for k in range(r)
            ],
            axis=-1,
        )
        up -= up.max(axis=-1, keepdims=True)
        probs = np.exp(up)
        probs /= probs.sum(axis=-1, keepdims=True)
        return np.where(on_object[..., None], probs, 0.0).astype(np.float32)

    def _boxes(self, parts, rng) -> list:
        """One box per connected region of each part, jittered, with soft noisy probabilities."""
        r = len(self.part_names)
        h, w = parts.shape
        boxes = []
        for k in range(r):
            regions, count = ndimage.label(parts == k)
            for sl in ndimage.find_objects(regions):
                if sl is None:
                    continue
                y0, y1, x0, x1 = sl[0].start, sl[0].stop, sl[1].start, sl[1].stop
                jitter = self.noise.box_jitter * rng.normal(size=4) * [x1 - x0, y1 - y0] * 2
                box = np.clip([x0, y0, x1, y1] + jitter, 0, [w, h, w, h])
                logits = self.noise.sharpness * np.eye(r)[k] + rng.normal(
                    0, self.noise.logit_noise, r
                )
                probs = np.exp(logits - logits.max())
                boxes.append(
                    (tuple(float(c) for c in box), (probs / probs.sum()).astype(np.float32))
                )
        return boxes


def _absorb_into_neighbours(parts: np.ndarray, missed: int) -> np.ndarray:
    """A missed part's pixels take the part of the nearest pixel of another part."""
    others = (parts >= 0) & (parts != missed)
    if not others.any():
        return parts
    _, (rows, cols) = ndimage.distance_transform_edt(~others, return_indices=True)
    region = parts == missed
    out = parts.copy()
    out[region] = parts[rows[region], cols[region]]
    return out


def simulated_teacher(part_names, config=None, kind="pixel", face_labels=None, seed=None, **noise):
    """Factory: ``factory(part_names, **options)``; noise options are TeacherNoise fields."""
    if seed is None:
        seed = config.seed if config is not None else 0
    return SimulatedTeacher(part_names, kind, face_labels, seed, TeacherNoise(**noise))
