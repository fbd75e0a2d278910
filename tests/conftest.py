"""Load the repository as the package ``partdistill`` (its directory name may be anything)."""

import os
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

sys.path.insert(0, str(ROOT))
import load_repo  # noqa: E402

load_repo.load()


@pytest.fixture
def ui():
    """The scene's PartDistill settings, in a fresh empty file with the add-on registered."""
    import bpy
    import partdistill

    bpy.ops.wm.read_factory_settings(use_empty=True)
    partdistill.register()
    yield bpy.context.scene.partdistill
    partdistill.unregister()  # a class left registered makes the bpy module hang at exit


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    """A tiny CLIP saved in a folder (tests/fixtures_teachers.py)."""
    from fixtures_teachers import save_tiny_clip

    return save_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture()
def hub(clip_dir, monkeypatch):
    """A local Hub (tests/hub_server.py) serving ``clip_dir`` as TINY_CLIP_REPO, and
    HF_ENDPOINT pointing at it."""
    from hub_server import TINY_CLIP_REPO, HubServer

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    server = HubServer({TINY_CLIP_REPO: clip_dir}).start()
    monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
    yield server
    server.stop()  # releases a held body first


# The bpy module can deadlock in its atexit teardown once torch's threads exist (seen with
# bpy 4.5 + torch 2.13: the process hangs on a futex after the last test). End the process
# ourselves once pytest has printed its summary, keeping pytest's exit status.
_exit_status = {"code": 0}


def pytest_sessionfinish(session, exitstatus):
    _exit_status["code"] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status["code"])
