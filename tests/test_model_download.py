"""Downloading teachers' weights from a Hub (a local one, tests/hub_server.py): progress,
cancel and resume, verification, and no request at all when downloads are not allowed."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from fixtures_teachers import make_view
from hub_server import TINY_CLIP_REPO
from partdistill.backend.config import PartDistillConfig
from partdistill.backend.contracts import TeacherUnavailable
from partdistill.backend.teachers import check_teacher_available, download_missing_model
from partdistill.backend.teachers.clip import clip_teacher
from partdistill.backend.teachers.hub_download import (
    CHUNK_BYTES,
    DownloadCancelled,
    download_model,
    terminal_progress,
)
from partdistill.backend.teachers.model_store import (
    installed_model,
    partial_bytes,
    remove_model,
    verify_model,
)

REPO = TINY_CLIP_REPO
ROOT = Path(__file__).resolve().parents[1]


def _weights_size(clip_dir: Path) -> int:
    return (clip_dir / "model.safetensors").stat().st_size


def test_download_reports_progress_and_gives_a_model_the_teacher_uses(hub, clip_dir, tmp_path):
    cache = tmp_path / "cache"
    assert installed_model(REPO, cache) is None
    reports = []
    snapshot = download_model(REPO, cache, progress=reports.append)
    total = sum(p.stat().st_size for p in clip_dir.iterdir() if p.is_file())
    assert reports[-1].done_bytes == reports[-1].total_bytes == total
    assert reports[-1].fraction == 1.0 and reports[-1].resumed_bytes == 0
    done = [r.done_bytes for r in reports]
    assert done == sorted(done) and len(set(done)) >= 3  # it moved, and never backwards
    assert "of" in reports[-1].describe() and "MB" in reports[-1].describe()

    found = installed_model(REPO, cache)
    assert found is not None and found.in_cache and found.location == snapshot
    assert found.size_bytes == total
    assert verify_model(REPO, cache, "clip") == []
    config = PartDistillConfig(model=REPO, cache_dir=str(cache), device="cpu")
    check_teacher_available("clip", config)
    downloaded = clip_teacher(["leg", "seat"], config).predict([make_view(0)])[0]
    original = clip_teacher(["leg", "seat"], config.replace(model=str(clip_dir)))
    np.testing.assert_allclose(downloaded, original.predict([make_view(0)])[0], atol=1e-6)


def test_cancel_half_way_leaves_no_model_and_the_next_download_resumes(hub, clip_dir, tmp_path):
    cache = tmp_path / "cache"
    weights = _weights_size(clip_dir)
    hub.hold_after = weights // 2  # the server stops half-way through the weights
    cancel = threading.Event()
    outcome = []

    first_bytes = threading.Event()  # the client has read (and so will write) a chunk

    def download():
        def seen(report):
            if report.done_bytes > 0:
                first_bytes.set()

        try:
            download_model(REPO, cache, progress=seen, cancel=cancel)
            outcome.append("finished")
        except DownloadCancelled:
            outcome.append("cancelled")

    worker = threading.Thread(target=download)
    worker.start()
    # The server's half may still sit in the socket's buffers: wait until the client read some.
    assert hub.held.wait(30) and first_bytes.wait(30), "the download never reached half-way"
    cancel.set()
    hub.release.set()  # the next chunk arrives, and the download sees the cancel
    worker.join(30)
    assert outcome == ["cancelled"]
    assert installed_model(REPO, cache) is None
    config = PartDistillConfig(model=REPO, cache_dir=str(cache))
    with pytest.raises(TeacherUnavailable, match="is not on this machine"):
        check_teacher_available("clip", config)
    kept = partial_bytes(REPO, cache)
    assert 0 < kept <= weights // 2

    hub.hold_after = None
    assert hub.wait_until_quiet(), "the cancelled body never ended"
    sent_before = hub.body_bytes
    reports = []
    download_model(REPO, cache, progress=reports.append)
    gets = hub.file_requests("model.safetensors")
    assert gets[-1].endswith(f"bytes={kept}-"), gets  # asked for the rest only
    assert reports[0].resumed_bytes == kept and reports[0].done_bytes >= kept
    total = sum(p.stat().st_size for p in clip_dir.iterdir() if p.is_file())
    assert hub.body_bytes - sent_before == total - kept
    assert verify_model(REPO, cache, "clip") == []
    assert partial_bytes(REPO, cache) == 0


def test_a_lost_connection_resumes_from_the_bytes_received(hub, clip_dir, tmp_path):
    cache = tmp_path / "cache"
    weights = _weights_size(clip_dir)
    hub.drop_after = weights // 3  # the connection breaks a third of the way into the weights
    download_model(REPO, cache)
    gets = hub.file_requests("model.safetensors")
    assert len(gets) == 2 and gets[-1].endswith("-")  # asked again, for the rest only
    kept = int(gets[-1].rsplit("bytes=", 1)[1].rstrip("-"))
    assert 0 < kept <= weights // 3
    total = sum(p.stat().st_size for p in clip_dir.iterdir() if p.is_file())
    # Sent twice: at most what had arrived but not yet filled a chunk, which is never written.
    assert 0 <= hub.body_bytes - total < CHUNK_BYTES
    assert verify_model(REPO, cache, "clip") == [] and partial_bytes(REPO, cache) == 0


def test_verify_names_a_truncated_and_an_altered_weights_file(hub, tmp_path):
    cache = tmp_path / "cache"
    snapshot = download_model(REPO, cache)
    blob = (snapshot / "model.safetensors").resolve()
    data = blob.read_bytes()

    blob.write_bytes(data[:-1000])  # cut short
    problems = verify_model(REPO, cache, "clip")
    assert problems and all("model.safetensors" in p for p in problems)
    assert any("cut short" in p for p in problems)

    altered = bytearray(data)
    altered[len(data) // 2] ^= 0xFF  # same length, one byte changed
    blob.write_bytes(bytes(altered))
    problems = verify_model(REPO, cache, "clip")
    assert len(problems) == 1 and problems[0].startswith("model.safetensors is not the file")

    (snapshot / "tokenizer.json").resolve().write_text("{}")  # a small file, hashed by git
    assert any(p.startswith("tokenizer.json") for p in verify_model(REPO, cache, "clip"))


def test_verify_says_a_folder_holds_the_wrong_kind_of_model(clip_dir):
    problems = verify_model(str(clip_dir), "", "owlv2")
    assert problems == ["config.json says this is a 'clip' model; the owlv2 teacher needs 'owlv2'"]
    assert verify_model(str(clip_dir), "", "clip") == []


def test_remove_deletes_the_cached_model_and_its_partial_files(hub, clip_dir, tmp_path):
    cache = tmp_path / "cache"
    download_model(REPO, cache)
    assert remove_model(REPO, cache) >= _weights_size(clip_dir)
    assert installed_model(REPO, cache) is None and not any(cache.glob("models--*"))
    assert remove_model(str(clip_dir), cache) == 0 and clip_dir.is_dir()  # a user's folder


def test_a_damaged_transfer_is_never_taken_for_a_model(hub, clip_dir, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    original = hub._send_file

    def corrupt(handler, path, body):  # the weights' bytes change on the way
        if path.name == "model.safetensors" and body:
            damaged = tmp_path / "model.safetensors"
            data = bytearray(path.read_bytes())
            data[100] ^= 0xFF
            damaged.write_bytes(bytes(data))
            path = damaged
        original(handler, path, body)

    monkeypatch.setattr(hub, "_send_file", corrupt)
    with pytest.raises(ValueError, match="model.safetensors of tiny-org/tiny-clip arrived damaged"):
        download_model(REPO, cache)
    assert installed_model(REPO, cache) is None and partial_bytes(REPO, cache) == 0


def test_no_request_reaches_the_hub_unless_downloads_are_allowed(hub, tmp_path):
    config = PartDistillConfig(model=REPO, cache_dir=str(tmp_path / "cache"))
    assert download_missing_model("clip", config) is None
    with pytest.raises(TeacherUnavailable, match="downloads are off"):
        check_teacher_available("clip", config)
    assert hub.requests == []

    stream = io.StringIO()  # not a TTY: a line per 10 %
    fetched = download_missing_model(
        "clip", config.replace(allow_downloads=True), terminal_progress(stream)
    )
    assert fetched == REPO and hub.requests
    lines = stream.getvalue().splitlines()
    assert lines[-1].startswith(f"{REPO} [{'#' * 30}] 100%") and len(lines) >= 3
    check_teacher_available("clip", config)  # now cached: no downloads needed


def test_a_hub_that_does_not_know_the_model_is_said_in_words(hub, tmp_path):
    config = PartDistillConfig(
        model="tiny-org/no-such-model", cache_dir=str(tmp_path), allow_downloads=True
    )
    with pytest.raises(TeacherUnavailable) as err:
        download_missing_model("clip", config)
    said = str(err.value)
    assert "'tiny-org/no-such-model' could not be downloaded from http://127.0.0.1" in said


def test_download_script_fetches_with_a_progress_bar(hub, clip_dir, tmp_path):
    env = dict(os.environ, HF_ENDPOINT=hub.endpoint)
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts/download_models.py"), REPO,
         "--cache-dir", str(tmp_path / "cache"), "--local-dir", str(tmp_path / "plain")],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"{REPO} [{'#' * 30}] 100%" in done.stderr
    plain = tmp_path / "plain" / REPO.replace("/", "--")
    assert done.stdout.strip() == f"{REPO}: {plain}"
    assert verify_model(REPO, tmp_path / "cache", "clip") == []
    assert verify_model(str(plain), "", "clip") == []
    weights = (plain / "model.safetensors").read_bytes()
    assert weights == (clip_dir / "model.safetensors").read_bytes()


def test_batch_allow_downloads_fetches_once_with_a_progress_bar(hub, tmp_path):
    chair = next((ROOT.parent / "shared/data/psb_dev/Chair").glob("*.off"))
    cache, labels = tmp_path / "cache", tmp_path / "labels"
    command = [sys.executable, str(ROOT / "partdistill_blender/batch.py"), "--input", str(chair),
               "--parts", "back, seat, leg", "--teacher", "clip", "--model", REPO,
               "--cache-dir", str(cache), "--allow-downloads", "--views", "2", "--resolution",
               "64", "--points", "256", "--mode", "direct", "--labels-dir", str(labels),
               "--log", str(tmp_path / "batch.log"),
               "--manifest", str(tmp_path / "manifest.jsonl")]  # fmt: skip
    env = dict(os.environ, HF_ENDPOINT=hub.endpoint)
    first = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"{REPO} [{'#' * 30}] 100%" in first.stderr  # the terminal bar, before any render
    assert f"model {REPO} downloaded into {cache}" in first.stdout + first.stderr
    assert verify_model(REPO, cache, "clip") == [] and list(labels.glob("*.json"))
    fetched = len(hub.file_requests("model.safetensors"))
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(hub.file_requests("model.safetensors")) == fetched  # the cache served it
