"""The labelled PSB dev meshes: part names as a user would type them per category, and the PSB
label names they stand for. Shared by the benchmarks."""

from __future__ import annotations

import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "psb_dev"

CATEGORIES = {
    "Chair": (["back", "seat", "leg", "arm"], {"backsupport": "back", "support": "seat"}),
    "Table": (["top", "leg"], {"support": "top"}),
    "Airplane": (
        ["body", "wing", "horizontal tail", "vertical tail", "engine"],
        {"stabilizer": "horizontal tail", "rudder": "vertical tail"},
    ),
    "Cup": (["body", "handle"], {}),
    "Bird": (["body", "wing", "tail", "head", "leg"], {}),
    "Fish": (["body", "fin", "tail"], {}),
    "FourLeg": (["torso", "leg", "head", "ear", "tail", "neck"], {"earhorn": "ear"}),
    "Human": (
        ["head", "torso", "upper arm", "lower arm", "hand", "upper leg", "lower leg", "foot"],
        {
            "upperarm": "upper arm",
            "lowerarm": "lower arm",
            "upperleg": "upper leg",
            "lowerleg": "lower leg",
        },
    ),  # fmt: skip
    "Teddy": (["torso", "leg", "head", "arm", "ear"], {"hand": "arm"}),
    "Octopus": (["body", "tentacle"], {"leg": "tentacle"}),
}
MAN_MADE = ("Chair", "Table", "Airplane", "Cup")


def shape_paths(category: str, limit: int = 0) -> list[pathlib.Path]:
    """The category's OFF files in name order, the first ``limit`` of them (0 = all)."""
    paths = sorted(DATA.joinpath(category).glob("*.off"), key=lambda p: int(p.stem))
    return paths[:limit] if limit else paths
