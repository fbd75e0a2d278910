"""The Models box in Blender (real bpy module, background mode) against a local Hub
(tests/hub_server.py) serving a tiny CLIP: Segment Parts is grey while the chosen weights are
absent, Download shows progress in the panel and ends with a model the next run uses, Cancel
keeps the bytes for a resume, Verify and Use Folder say what is wrong, and with Blender's
online access off no request reaches the server."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import bpy
import pytest
from checked_layout import CheckedLayout, draw
from hub_server import TINY_CLIP_REPO
from partdistill.backend.teachers.hub_download import CHUNK_BYTES
from partdistill.backend.teachers.model_store import installed_model, partial_bytes
from partdistill.partdistill_blender import (
    addon,
    model_downloads,
    model_manager,
    panels,
    results,
)
from ui_fixtures import chair_scene, snapshot

REPO = TINY_CLIP_REPO


@pytest.fixture()
def prefs(ui, tmp_path):
    """The add-on's preferences: the tiny CLIP chosen, an empty cache, online access on."""
    entry = bpy.context.preferences.addons.new()
    entry.module = "partdistill"
    settings = addon.get_preferences()
    settings.model, settings.cache_dir = REPO, str(tmp_path / "cache")
    system = bpy.context.preferences.system
    was_online = system.use_online_access
    system.use_online_access = True
    yield settings
    model_downloads.stop_all()
    system.use_online_access = was_online
    bpy.context.preferences.addons.remove(entry)


def _total_bytes(clip_dir: Path) -> int:
    return sum(p.stat().st_size for p in clip_dir.iterdir() if p.is_file())


def _wait(condition, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _main_panel() -> CheckedLayout:
    return draw(panels.PARTDISTILL_PT_main, bpy.context)


def _pressable(layout: CheckedLayout) -> set[str]:
    return {name for name, _ in layout.operators()}


def test_grey_until_downloaded_then_segment_parts_uses_the_model(ui, prefs, hub, clip_dir):
    obj = chair_scene(ui)
    ui.teacher = "clip"
    assert not bpy.ops.partdistill.segment_parts.poll()
    with pytest.raises(RuntimeError) as err:
        bpy.ops.partdistill.segment_parts()
    assert (
        f"weights of tiny-clip ({REPO}) are not installed: press Download in the Models box"
        in str(err.value)
    )
    panel = _main_panel()
    assert "Not installed" in panel.labels()
    assert "Segment Parts needs it: press Download" in panel.labels()
    assert "partdistill.model_download" in _pressable(panel)
    assert hub.requests == []  # drawing the box asks the Hub nothing

    hub.bytes_per_s = _total_bytes(clip_dir) / 2.0  # about 2 s: the panel sees it move
    bpy.ops.partdistill.model_download(repo_id=REPO)
    job = model_downloads.job_for(REPO)
    seen, bars = [], []  # the panel's bytes lines and bar texts while the download runs
    while job.running:
        drawn = _main_panel()
        seen += [text for text in drawn.labels() if " of " in text]
        bars += [d[1] for d in drawn.drawn if d[0] == "progress"]
        if job.running and job.progress is not None and 0 < job.progress.fraction < 1:
            assert "partdistill.model_cancel" in _pressable(drawn)
        time.sleep(0.1)
    assert job.state == "done", job.message
    moving = {text for text in seen if text.endswith("MB/s")}  # "2.1 MB of 11.8 MB · 5.8 MB/s"
    assert len(moving) >= 3, seen  # the bytes so far change
    assert any(re.fullmatch(r"\d+% · \d+ s left", text) for text in bars), bars

    found = installed_model(REPO, prefs.effective_cache_dir())
    assert found is not None and found.size_bytes == _total_bytes(clip_dir)
    panel = _main_panel()
    assert not [label for label in panel.labels() if "Not installed" in label]
    assert bpy.ops.partdistill.segment_parts.poll()

    before = len(hub.requests)
    assert bpy.ops.partdistill.segment_parts() == {"FINISHED"}
    assert len(hub.requests) == before  # the run read the cache, and asked the Hub nothing
    run = results.read_run(obj)
    assert run["teacher"] == "clip" and run["model"] == REPO
    labels = results.read_segmentation(obj)["face_labels"]
    assert labels.shape == (len(obj.data.polygons),) and (labels >= 0).mean() > 0.5  # direct


def test_cancel_keeps_the_bytes_and_the_next_download_resumes(ui, prefs, hub, clip_dir):
    chair_scene(ui)
    ui.teacher = "clip"
    cache = prefs.effective_cache_dir()
    weights = (clip_dir / "model.safetensors").stat().st_size
    hub.hold_after = weights // 2  # the server stops half-way through the weights
    bpy.ops.partdistill.model_download(repo_id=REPO)
    job = model_downloads.job_for(REPO)
    assert hub.held.wait(30), "the download never reached half-way"
    # The server's half may still sit in the socket's buffers. Once the client has read every
    # whole chunk of it, it waits on the socket and cannot see the cancel (and end, leaving no
    # "Cancelling…" to draw) before the release.
    _wait(lambda: job.progress is not None and job.progress.done_bytes > 0
          and hub.body_bytes - job.progress.done_bytes < CHUNK_BYTES)  # fmt: skip
    assert bpy.ops.partdistill.model_cancel(repo_id=REPO) == {"FINISHED"}
    assert ("progress", "Cancelling…") in _main_panel().drawn
    hub.release.set()  # the next chunk arrives, and the download sees the cancel
    job.thread.join(30)
    assert job.state == "cancelled"
    assert installed_model(REPO, cache) is None and not bpy.ops.partdistill.segment_parts.poll()
    kept = partial_bytes(REPO, cache)
    assert 0 < kept <= weights // 2
    labels = _main_panel().labels()
    assert any(label.endswith("fetched: Download resumes") for label in labels), labels
    assert "Download cancelled: what was fetched is kept for a resume" in labels

    hub.hold_after = None
    assert hub.wait_until_quiet(), "the cancelled body never ended"
    sent_before = hub.body_bytes
    bpy.ops.partdistill.model_download(repo_id=REPO)
    job = model_downloads.job_for(REPO)
    job.thread.join(60)
    assert job.state == "done", job.message
    assert hub.file_requests("model.safetensors")[-1].endswith(f"bytes={kept}-")
    assert hub.body_bytes - sent_before == _total_bytes(clip_dir) - kept  # only the rest
    assert installed_model(REPO, cache) is not None and partial_bytes(REPO, cache) == 0
    assert bpy.ops.partdistill.segment_parts.poll()


def test_online_access_off_sends_nothing_and_offers_blenders_switch(ui, prefs, hub):
    chair_scene(ui)
    ui.teacher = "clip"
    bpy.context.preferences.system.use_online_access = False
    assert not bpy.app.online_access
    with pytest.raises(RuntimeError, match="Blender's online access is off: nothing can be"):
        bpy.ops.partdistill.model_download(repo_id=REPO)
    assert model_downloads.job_for(REPO) is None
    panel = _main_panel()
    assert "Online access is off" in panel.labels()
    assert "Allow Online Access, then Download" in panel.labels()
    assert "use_online_access" in panel.props()  # Blender's own switch, in the box
    time.sleep(0.2)
    assert hub.requests == []


def test_verify_remove_and_use_folder_say_what_is_wrong(ui, prefs, hub, clip_dir, tmp_path):
    obj = chair_scene(ui)
    ui.teacher = "clip"
    before = snapshot(obj)
    bpy.ops.partdistill.model_download(repo_id=REPO)
    model_downloads.job_for(REPO).thread.join(60)
    cache = prefs.effective_cache_dir()
    assert bpy.ops.partdistill.model_verify(name=REPO, teacher="clip") == {"FINISHED"}
    assert "Verify: complete and whole" in _main_prefs_labels()

    blob = (installed_model(REPO, cache).location / "model.safetensors").resolve()
    blob.write_bytes(blob.read_bytes()[:-1000])
    with pytest.raises(RuntimeError, match=r"model\.safetensors.*cut short"):
        bpy.ops.partdistill.model_verify(name=REPO, teacher="clip")
    assert any(t.startswith("Verify: model.safetensors") for t in _main_prefs_labels())

    assert bpy.ops.partdistill.model_remove(repo_id=REPO) == {"FINISHED"}
    assert installed_model(REPO, cache) is None and partial_bytes(REPO, cache) == 0
    assert not bpy.ops.partdistill.segment_parts.poll()

    wrong = tmp_path / "not-a-model"
    wrong.mkdir()
    (wrong / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(RuntimeError, match="not-a-model cannot be used: the folder holds "
                       r"config.json but no weights file \(.safetensors or .bin\)"):  # fmt: skip
        bpy.ops.partdistill.model_use_folder(directory=str(wrong), teacher="clip")
    shutil.copy(clip_dir / "model.safetensors", wrong)
    with pytest.raises(RuntimeError, match="config.json says this is a 'bert' model; the clip "
                       "teacher needs 'clip'"):  # fmt: skip
        bpy.ops.partdistill.model_use_folder(directory=str(wrong), teacher="clip")
    assert prefs.model == REPO
    assert bpy.ops.partdistill.model_use_folder(directory=str(clip_dir), teacher="clip") == {
        "FINISHED"}  # fmt: skip
    assert prefs.model == str(clip_dir) and bpy.ops.partdistill.segment_parts.poll()
    assert snapshot(obj) == before  # none of it touched the scene


def _main_prefs_labels() -> list[str]:
    layout = CheckedLayout()
    model_manager.draw_models_box(layout, bpy.context)
    return layout.labels()


def test_teachers_without_weights_are_never_grey(ui, prefs):
    chair_scene(ui)
    assert ui.teacher == "simulated" and model_manager.missing_model_reason(bpy.context) is None
    assert bpy.ops.partdistill.segment_parts.poll()
    assert "Models" not in _main_panel().labels()


def test_a_missing_model_folder_asks_for_a_folder_not_a_download(ui, prefs, tmp_path):
    chair_scene(ui)
    ui.teacher = "clip"
    bpy.context.preferences.system.use_online_access = False
    prefs.model = str(tmp_path / "no-such-model")
    assert not bpy.ops.partdistill.segment_parts.poll()
    panel = _main_panel()
    assert "Folder not found" in panel.labels() and "Use Folder… to pick it" in panel.labels()
    assert "Online access is off" not in panel.labels()  # a folder needs no network
    assert "partdistill.model_download" not in _pressable(panel)
    (tmp_path / "no-such-model").mkdir()
    assert "No weights in the folder" in _main_panel().labels()
