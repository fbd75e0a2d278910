"""The walkthrough's example teacher (examples/custom_teacher.py) works as docs/ARCHITECTURE.md
says: by itself, and plugged into the batch with --teacher examples.custom_teacher:make."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from conftest import ROOT

sys.path.insert(0, str(ROOT))  # the batch finds examples/ the same way: from the checkout
from examples.custom_teacher import make  # noqa: E402

# A box twice as tall as it is wide, Y up as OFF files are read: polygon 0 is the bottom
# (y = 0), polygon 1 the top (y = 2).
OFF_TALL_BOX = """OFF
8 6 0
0 0 0
1 0 0
1 0 1
0 0 1
0 2 0
1 2 0
1 2 1
0 2 1
4 0 3 2 1
4 4 5 6 7
4 0 1 5 4
4 1 2 6 5
4 2 3 7 6
4 3 0 4 7
"""


def test_the_example_teacher_names_parts_by_height_in_the_image():
    teacher = make(["top", "bottom"], confidence=0.8, an_option_it_ignores=1)
    assert teacher.kind == "pixel"
    face_ids = np.full((8, 5), -1, np.int32)
    face_ids[2:6, 1:4] = 7  # the object covers rows 2-5
    (probs,) = teacher.predict([type("View", (), {"face_ids": face_ids})()])
    assert probs.shape == (8, 5, 2) and probs.dtype == np.float32
    assert np.allclose(probs.sum(axis=2), 1.0)
    assert np.allclose(probs[2:4, 1:4], [0.8, 0.2]) and np.allclose(probs[4:6, 1:4], [0.2, 0.8])
    assert np.allclose(probs[0], 0.5)  # background: no opinion


def test_the_batch_runs_the_example_teacher(tmp_path):
    mesh = tmp_path / "tall_box.off"
    mesh.write_text(OFF_TALL_BOX)
    labels_out = tmp_path / "labels.json"
    command = [
        sys.executable, str(ROOT / "partdistill_blender" / "batch.py"),
        "--input", str(mesh), "--parts", "top, bottom",
        "--teacher", "examples.custom_teacher:make", "--teacher-option", "confidence=0.8",
        "--views", "4", "--resolution", "64", "--points", "256", "--epochs", "6",
        "--labels-out", str(labels_out),
    ]  # fmt: skip
    # In tmp_path: the run writes its manifest and log in the folder it runs in.
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "done: 1 segmented, 0 failed" in run.stdout
    (result,) = json.loads(labels_out.read_text())["objects"]
    assert result["name"] == "tall_box" and result["parts"] == ["top", "bottom"]
    labels = result["face_labels"]
    assert len(labels) == 6 and labels[1] == 0 and labels[0] == 1, labels  # top, bottom
