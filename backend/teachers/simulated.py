"""A teacher built from ground truth that errs the way vision-language models do.

For tests and benchmarks, where no real VLM weights exist. Starting from the true part of every
pixel it: misses parts (in random views, and wherever a part is only partly visible: the
region goes to the neighbouring parts), takes local regions of one part for another, sees
the image only on a coarse patch grid (as CLIP's 14 x 14 tokens), blurs boundaries, and
reports noisy, view-dependent confidences.

Further error patterns, all off by default (``error_profiles`` names mixes of them): one part
read as another in many views at once, whole views that come back as one or two labels, whole
parts missed in many views or never predicted, speckle, hallucinated parts, overconfidence on
wrong regions, and for boxes semantic leaking and missed small parts. They draw from their own
random streams, so the default teacher's predictions do not change when they are added.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..contracts import ObjectInfo, View
from .teacher_errors import (
    absorb_into_neighbours,
    discs,
    leak_box,
    replace_part,
    whole_view_failure,
)


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
    # --- error patterns beyond the default teacher (teacher_errors), all off by default ---
    systematic_pairs: int = 0  # parts read as another part in many views at once (per object)
    systematic_view_share: float = 0.4  # share of the views each such confusion is made in
    whole_view_probability: float = 0.0  # a view comes back as one or two labels over it all
    whole_view_two_labels: float = 0.5  # share of those failures with two labels, not one
    part_miss_view_share: float = 0.0  # each part is missed in this share of views, seen or not
    never_predicted: int = 0  # parts (never the largest) the teacher never predicts
    speckle_islands: float = 0.0  # mean number of small wrong islands per view
    speckle_radius: float = 0.04  # their radius, as a share of the object's extent in the view
    hallucinations_per_view: float = 0.0  # regions given a part the object does not have
    hallucination_radius: float = 0.15  # their radius, as a share of the object's extent
    overconfidence: float = 1.0  # logit scale of wrongly predicted patches (> 1: sure and wrong)
    patch_temperature_range: tuple = (1.0, 1.0)  # per-patch temperature: confidence not tracking
    box_leak_probability: float = 0.0  # a box grows to cover a neighbouring part's box too
    box_min_area_share: float = 0.0  # boxes of regions below this share of the object are missed


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
        plan = self._object_errors(counts, len(views))
        out = []
        for i, (view, parts) in enumerate(zip(views, truth, strict=True)):
            rng = np.random.default_rng([self.seed, i])
            true_parts = parts
            parts = self._miss_and_confuse(parts, counts[i] / best, rng)
            errors = np.random.default_rng([self.seed, i, 1])
            parts = self._view_errors(parts, i, plan, errors)
            if self.kind == "box":
                out.append(self._boxes(parts, rng, errors))
            else:
                wrong = (parts != true_parts) & (true_parts >= 0)
                out.append(self._pixel_probs(parts, view.face_ids >= 0, rng, wrong, errors))
        return out

    def _object_errors(self, counts: np.ndarray, num_views: int) -> dict:
        """The errors a teacher makes on the whole object: which parts, in which views.

        counts (V, R) true pixels of each part in each view.
        """
        noise = self.noise
        rng = np.random.default_rng([self.seed, 1_000_003])
        r = len(self.part_names)
        present = np.flatnonzero(counts.sum(axis=0) > 0)
        plan = {"swaps": [], "missed": np.zeros((num_views, r), bool), "never": []}
        plan["absent"] = [k for k in range(r) if k not in set(present)]
        # The prompt that wins a whole view tends to be the same one across views.
        plan["winner"] = int(rng.integers(r))
        if r < 2 or present.size == 0:
            return plan
        for _ in range(noise.systematic_pairs):
            source = int(rng.choice(present))
            target = int(rng.choice([k for k in range(r) if k != source]))
            views = rng.random(num_views) < noise.systematic_view_share
            plan["swaps"].append((source, target, views))
        if noise.part_miss_view_share > 0:
            plan["missed"] = rng.random((num_views, r)) < noise.part_miss_view_share
        largest = int(np.argmax(counts.sum(axis=0)))
        candidates = [int(k) for k in present if k != largest]
        if noise.never_predicted and candidates:
            take = min(noise.never_predicted, len(candidates))
            plan["never"] = [int(k) for k in rng.choice(candidates, take, replace=False)]
        return plan

    def _view_errors(self, parts, view: int, plan: dict, rng) -> np.ndarray:
        """The object-wide errors of ``plan`` in one view, then its own whole-view failure,
        speckle and hallucinations."""
        noise = self.noise
        r = len(self.part_names)
        for source, target, views in plan["swaps"]:
            if views[view]:
                parts = replace_part(parts, source, target)
        for k in plan["never"] + [int(k) for k in np.flatnonzero(plan["missed"][view])]:
            parts = absorb_into_neighbours(parts, k)
        rows, cols = np.nonzero(parts >= 0)
        if rows.size == 0 or r < 2:
            return parts
        extent = max(np.ptp(rows), np.ptp(cols), 1)
        if rng.random() < noise.whole_view_probability:
            first = plan["winner"] if rng.random() < 0.5 else int(rng.integers(r))
            labels = [first]
            if rng.random() < noise.whole_view_two_labels:
                labels.append(int(rng.choice([k for k in range(r) if k != first])))
            parts = whole_view_failure(parts, labels, rng)
        if noise.speckle_islands > 0:
            count = rng.poisson(noise.speckle_islands)
            parts = discs(
                parts, count, noise.speckle_radius * extent, rng,
                lambda source: int(rng.choice([k for k in range(r) if k != source])),
            )  # fmt: skip
        if noise.hallucinations_per_view > 0 and plan["absent"]:
            count = rng.poisson(noise.hallucinations_per_view)
            parts = discs(
                parts, count, noise.hallucination_radius * extent, rng,
                lambda source: int(rng.choice(plan["absent"])),
            )  # fmt: skip
        return parts

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
            parts = absorb_into_neighbours(parts, k)
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

    def _pixel_probs(self, parts, on_object, rng, wrong=None, error_rng=None) -> np.ndarray:
        """Coarse, blurred, noisy probabilities (H, W, R); zero off the object.

        wrong (H, W) bool: pixels whose predicted part is not the true one, for overconfidence.
        """
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
        logits *= self._confidence_errors(cell, wrong, grid, error_rng)
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

    def _confidence_errors(self, cell, wrong, grid, rng) -> np.ndarray | float:
        """(grid, grid, 1) logit scale per patch: sure where wrong, and confidence that does
        not track correctness (a random temperature per patch). 1.0 when both are off."""
        noise = self.noise
        if noise.overconfidence == 1.0 and tuple(noise.patch_temperature_range) == (1.0, 1.0):
            return 1.0
        scale = 1.0 / rng.uniform(*noise.patch_temperature_range, size=grid * grid)
        if wrong is not None and wrong.any():
            wrong_share = np.bincount(cell[wrong], minlength=grid * grid) / np.maximum(
                np.bincount(cell.ravel(), minlength=grid * grid), 1
            )
            scale = np.where(wrong_share > 0.5, noise.overconfidence, scale)
        return scale.reshape(grid, grid, 1)

    def _boxes(self, parts, rng, error_rng=None) -> list:
        """One box per connected region of each part, jittered, with soft noisy probabilities.

        With ``error_rng``: boxes of small regions are missed and boxes leak onto neighbours.
        """
        r = len(self.part_names)
        h, w = parts.shape
        boxes, regions_of = [], []
        min_area = self.noise.box_min_area_share * np.count_nonzero(parts >= 0)
        for k in range(r):
            regions, count = ndimage.label(parts == k)
            areas = np.bincount(regions.ravel(), minlength=count + 1)
            for index, sl in enumerate(ndimage.find_objects(regions)):
                if sl is None:
                    continue
                if areas[index + 1] < min_area:
                    continue
                y0, y1, x0, x1 = sl[0].start, sl[0].stop, sl[1].start, sl[1].stop
                size = np.array([x1 - x0, y1 - y0] * 2)
                jitter = self.noise.box_jitter * rng.normal(size=4) * size
                box = np.clip([x0, y0, x1, y1] + jitter, 0, [w, h, w, h])
                logits = self.noise.sharpness * np.eye(r)[k] + rng.normal(
                    0, self.noise.logit_noise, r
                )
                probs = np.exp(logits - logits.max())
                boxes.append(
                    (tuple(float(c) for c in box), (probs / probs.sum()).astype(np.float32))
                )
                regions_of.append(k)
        if error_rng is not None and self.noise.box_leak_probability > 0:
            leaked = []
            for (box, probs), k in zip(boxes, regions_of, strict=True):
                if error_rng.random() < self.noise.box_leak_probability:
                    others = [b for (b, _), j in zip(boxes, regions_of, strict=True) if j != k]
                    box = leak_box(box, others)
                leaked.append((box, probs))
            boxes = leaked
        return boxes


def simulated_teacher(part_names, config=None, kind="pixel", face_labels=None, seed=None, **noise):
    """Factory: ``factory(part_names, **options)``; noise options are TeacherNoise fields."""
    if seed is None:
        seed = config.seed if config is not None else 0
    return SimulatedTeacher(part_names, kind, face_labels, seed, TeacherNoise(**noise))
