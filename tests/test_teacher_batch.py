"""The batch entry point with real teachers loaded from folders, offline (issue 3 acceptance)."""

from __future__ import annotations

import json

import bpy
import numpy as np
from fixtures_teachers import save_tiny_clip, save_tiny_owlv2
from partdistill.backend import run_stages
from partdistill.partdistill_blender import batch

PARTS = "back, seat, leg"


def _run(tmp_path, *flags) -> tuple[int, dict | None]:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    labels = tmp_path / "labels.json"
    code = batch.main(
        ["--demo", "chair", "--parts", PARTS, "--category", "chair", "--views", "3",
         "--resolution", "64", "--mode", "direct", "--device", "cpu",
         "--labels-out", str(labels), *flags]
    )  # fmt: skip
    return code, json.loads(labels.read_text()) if labels.exists() else None


def _polygons_of_the_chair() -> int:
    meshes = [o for o in bpy.data.objects if o.type == "MESH"]
    assert len(meshes) == 1
    return len(meshes[0].data.polygons)


def test_batch_with_a_clip_model_saved_in_a_folder(tmp_path):
    model = save_tiny_clip(tmp_path / "clip")
    code, labels = _run(tmp_path, "--model", str(model))
    assert code == 0
    (obj,) = labels["objects"]
    assert obj["parts"] == ["back", "seat", "leg"]
    face_labels = np.array(obj["face_labels"])
    assert len(face_labels) == _polygons_of_the_chair()
    assert set(face_labels.tolist()) <= {-1, 0, 1, 2}
    assert (face_labels >= 0).mean() > 0.5  # CLIP labels every object pixel it sees
    (teacher,) = run_stages._teacher_cache.values()  # the batch's teacher, kept for reuse
    assert teacher.encoder.model.config.vision_config.hidden_size == 32  # the tiny model


def test_batch_with_a_box_model_saved_in_a_folder(tmp_path):
    model = save_tiny_owlv2(tmp_path / "owlv2")
    code, labels = _run(tmp_path, "--teacher", "owlv2", "--model", str(model))
    assert code == 0
    (obj,) = labels["objects"]
    assert len(obj["face_labels"]) == _polygons_of_the_chair()
    assert len(obj["face_confidence"]) == len(obj["face_labels"])


def test_missing_weights_stop_before_rendering_and_write_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    empty_cache = tmp_path / "hub"
    code, labels = _run(
        tmp_path, "--model", "someone/absent-clip", "--teacher-option", f"cache_dir={empty_cache}"
    )
    assert code == 2
    assert labels is None
    out = capsys.readouterr().out
    assert "model 'someone/absent-clip' is not on this machine" in out
    assert str(empty_cache) in out
    assert "python scripts/download_models.py someone/absent-clip" in out
    assert "rendered" not in out  # stopped before any view was rendered
    assert not any(o.type == "MESH" for o in bpy.data.objects)
