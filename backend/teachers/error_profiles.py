"""Named error profiles of the simulated teacher: one per error pattern of real 2D teachers,
plus realistic mixes, for the robustness benchmark and tests.

A profile is a teacher kind and a set of ``TeacherNoise`` fields. ``distractor_parts`` asks the
caller to add that many part names the object does not have, so that a hallucinating teacher
has something to hallucinate on every shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .simulated import SimulatedTeacher, TeacherNoise


@dataclass(frozen=True)
class ErrorProfile:
    name: str
    kind: str  # "pixel" or "box"
    description: str
    noise: dict = field(default_factory=dict)  # TeacherNoise fields
    distractor_parts: int = 0

    def teacher(self, part_names, seed: int) -> SimulatedTeacher:
        return SimulatedTeacher(part_names, self.kind, seed=seed, noise=TeacherNoise(**self.noise))


# The mixes are set to the paper's 2D teacher quality (about 42 2D mIoU for "mix") and below
# it ("mix-strong", about 31): the benchmark prints each profile's 2D mIoU.
_MIX = dict(
    grid=14, blur=0.7, systematic_pairs=1, systematic_view_share=0.2,
    whole_view_probability=0.08, part_miss_view_share=0.05, speckle_islands=3,
    hallucinations_per_view=0.2, overconfidence=1.5, patch_temperature_range=(0.8, 1.25),
)  # fmt: skip
_MIX_STRONG = dict(
    grid=10, blur=0.9, systematic_pairs=1, systematic_view_share=0.3,
    whole_view_probability=0.15, part_miss_view_share=0.15, speckle_islands=8,
    hallucinations_per_view=0.3, overconfidence=2.0, patch_temperature_range=(0.7, 1.4),
)  # fmt: skip

PROFILES = {
    p.name: p
    for p in (
        ErrorProfile("default", "pixel", "the project's teacher: local confusions, misses"),
        ErrorProfile(
            "confusion", "pixel", "one part read as another in 40 % of the views",
            dict(systematic_pairs=1, systematic_view_share=0.4),
        ),
        ErrorProfile(
            "whole-view", "pixel", "30 % of views come back as one or two labels",
            dict(whole_view_probability=0.3),
        ),
        ErrorProfile(
            "missed", "pixel", "every part missed in 30 % of the views, visible or not",
            dict(part_miss_view_share=0.3),
        ),
        ErrorProfile(
            "speckle", "pixel", "30 small islands of a wrong part per view",
            dict(speckle_islands=30),
        ),
        ErrorProfile(
            "bleeding", "pixel", "7 x 7 patches, heavy blur: large parts swallow thin ones",
            dict(grid=7, blur=1.3),
        ),
        ErrorProfile(
            "overconfident", "pixel", "more wrong regions, sure where wrong, random confidence",
            dict(confusions_per_view=2.5, overconfidence=3.0, patch_temperature_range=(0.4, 2.5)),
        ),
        ErrorProfile(
            "hallucination", "pixel", "a part the object does not have, predicted on it",
            dict(hallucinations_per_view=1.0), distractor_parts=1,
        ),
        ErrorProfile("mix", "pixel", "all of the above, moderate", _MIX),
        ErrorProfile("mix-strong", "pixel", "all of the above, strong", _MIX_STRONG),
        ErrorProfile("box-default", "box", "the project's box teacher: jitter, misses"),
        ErrorProfile(
            "box-leaking", "box", "half of the boxes also cover a neighbouring part",
            dict(box_leak_probability=0.5),
        ),
        ErrorProfile(
            "box-mix", "box", "leaking, small parts missed, whole-object boxes, confusions",
            dict(
                box_leak_probability=0.3, box_min_area_share=0.05, miss_probability=0.2,
                whole_view_probability=0.15, systematic_pairs=1, systematic_view_share=0.3,
            ),
        ),
    )
}  # fmt: skip
