"""Where teacher weights come from, and what a user is told when they are missing."""

from __future__ import annotations

import pickle
import shutil
import sys
import types

import numpy as np
import pytest
from fixtures_teachers import make_view, save_tiny_clip
from partdistill.backend.config import PartDistillConfig
from partdistill.backend.contracts import TeacherUnavailable
from partdistill.backend.run_files import read_result, write_error
from partdistill.backend.teachers import check_teacher_available, teacher_options_for
from partdistill.backend.teachers.clip import clip_teacher
from partdistill.backend.teachers.models import model_for_teacher, resolve_model

MISSING = "openai/clip-vit-base-patch16"


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    return save_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture()
def online(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)


def _fake_hub_cache(cache, repo_id: str, model_dir) -> None:
    """Lay out ``model_dir`` as the Hugging Face cache stores a downloaded repository."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(model_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)


def test_local_directory_is_used_as_is(clip_dir):
    resolved = resolve_model(str(clip_dir), PartDistillConfig())
    assert resolved.source == "directory"
    assert resolved.location == str(clip_dir.resolve())
    assert resolved.local_files_only


def test_missing_weights_message_names_model_place_and_command(tmp_path, online):
    config = PartDistillConfig(cache_dir=str(tmp_path / "hub"))
    with pytest.raises(TeacherUnavailable) as err:
        check_teacher_available("clip", config)
    message = str(err.value)
    assert f"model '{MISSING}' is not on this machine" in message
    assert str(tmp_path / "hub") in message  # where it looked
    assert f"python scripts/download_models.py {MISSING} --cache-dir {tmp_path / 'hub'}" in message
    assert f"hf download {MISSING}" in message
    assert "--model DIR" in message
    assert "--teacher package.module:factory" in message
    assert "--teacher simulated" in message
    assert "\n" not in message  # one message, one line
    # What is missing and how to get it stay apart (the Blender UI has its own remedy), also
    # through pickling and the out-of-process worker's error file.
    assert message == f"{err.value.problem} {err.value.remedy}"
    assert "download_models" not in err.value.problem
    back = pickle.loads(pickle.dumps(err.value))
    assert (back.problem, back.remedy) == (err.value.problem, err.value.remedy)
    folder = tmp_path / "worker"
    folder.mkdir()
    try:
        raise err.value
    except TeacherUnavailable as exc:
        write_error(folder, exc)
    with pytest.raises(TeacherUnavailable) as again:
        read_result(folder)
    assert (again.value.problem, again.value.remedy) == (err.value.problem, err.value.remedy)


def test_hf_hub_offline_overrides_allow_downloads(tmp_path, monkeypatch):
    config = PartDistillConfig(cache_dir=str(tmp_path), allow_downloads=True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TeacherUnavailable, match="HF_HUB_OFFLINE is set"):
        resolve_model(MISSING, config)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    resolved = resolve_model(MISSING, config)
    assert resolved.source == "download" and not resolved.local_files_only


def test_directory_without_config_and_missing_directory(tmp_path):
    with pytest.raises(TeacherUnavailable, match="has no config.json"):
        resolve_model(str(tmp_path), PartDistillConfig())
    absent = tmp_path / "not-here"
    with pytest.raises(TeacherUnavailable, match=f"no directory {absent} exists"):
        resolve_model(str(absent), PartDistillConfig())


def test_model_from_the_hugging_face_cache_offline(tmp_path, clip_dir, online):
    cache = tmp_path / "hub"
    _fake_hub_cache(cache, "someone/tiny-clip", clip_dir)
    config = PartDistillConfig(model="someone/tiny-clip", cache_dir=str(cache), device="cpu")
    check_teacher_available("clip", config)
    resolved = resolve_model("someone/tiny-clip", config)
    assert resolved.source == "cache" and resolved.local_files_only
    from_cache = clip_teacher(["leg", "seat"], config).predict([make_view(0)])[0]
    from_dir = clip_teacher(["leg", "seat"], config.replace(model=str(clip_dir)))
    np.testing.assert_allclose(from_cache, from_dir.predict([make_view(0)])[0], atol=1e-6)


def test_cached_config_without_weights_is_a_clear_error(tmp_path, clip_dir, online):
    broken = tmp_path / "broken"
    shutil.copytree(clip_dir, broken)
    for weights in broken.glob("*.safetensors"):
        weights.unlink()
    with pytest.raises(TeacherUnavailable, match=r"could not be loaded from .*broken.*download_"):
        clip_teacher(["leg"], PartDistillConfig(model=str(broken), device="cpu"))


def test_box_teachers_use_their_own_default_model(tmp_path, online):
    config = PartDistillConfig(cache_dir=str(tmp_path))
    assert model_for_teacher("owlv2", config) == "google/owlv2-base-patch16-ensemble"
    assert model_for_teacher("grounding-dino", config) == "IDEA-Research/grounding-dino-base"
    assert model_for_teacher("owlv2", config.replace(model="/x/owl")) == "/x/owl"
    with pytest.raises(TeacherUnavailable, match="google/owlv2-base-patch16-ensemble"):
        check_teacher_available("owlv2", config)


def test_simulated_and_custom_teachers(monkeypatch):
    check_teacher_available("simulated", PartDistillConfig())  # needs no weights
    module = types.ModuleType("my_teachers")

    def factory(parts, **options):
        raise AssertionError("checking must not build the teacher")

    def refuse(config):
        raise TeacherUnavailable(f"my weights are missing for {config.model}")

    factory.check_available = refuse
    module.factory = factory
    monkeypatch.setitem(sys.modules, "my_teachers", module)
    with pytest.raises(TeacherUnavailable, match="my weights are missing for m1"):
        check_teacher_available("my_teachers:factory", PartDistillConfig(model="m1"))
    with pytest.raises(TeacherUnavailable, match="cannot import teacher module"):
        check_teacher_available("no_such_module_xyz:factory", PartDistillConfig())


def test_open_clip_names_are_checked(monkeypatch):
    from partdistill.backend.teachers.open_clip_loader import parse_open_clip_name

    assert parse_open_clip_name("open_clip:ViT-B-16/openai") == ("ViT-B-16", "openai")
    assert parse_open_clip_name("open_clip:ViT-B-16//w/x.pt") == ("ViT-B-16", "/w/x.pt")
    with pytest.raises(TeacherUnavailable, match="open_clip:ARCH/TAG"):
        parse_open_clip_name("open_clip:ViT-B-16")
    with pytest.raises(TeacherUnavailable, match="clip teacher only"):
        check_teacher_available("owlv2", PartDistillConfig(model="open_clip:ViT-B-16/openai"))


def test_built_in_teachers_and_only_they_are_given_the_config():
    config = PartDistillConfig(model="m1")
    assert teacher_options_for("clip", config, {"k": 1}) == {"k": 1, "config": config}
    assert teacher_options_for("simulated", config) == {"config": config}
    assert teacher_options_for("my_teachers:factory", config, {"k": 1}) == {"k": 1}
    given = {"k": 1}
    teacher_options_for("owlv2", config, given)
    assert given == {"k": 1}  # the caller's options are not changed
