"""One road from an object to its labels (issue 10): the panel's operator, the batch and the
worker run the same stages (``staged_run.StagedRun`` and ``backend.run_stages.run_compute``), a
run's state saves and loads, a cancelled or failed run changes nothing, and every message goes
through the one logger (terminal, log file, Blender's reports)."""

import json
import os
import subprocess
import sys

import bpy
import numpy as np
import pytest
from partdistill.backend import run_files
from partdistill.backend.config import PartDistillConfig
from partdistill.backend.contracts import SegmentationCancelled
from partdistill.backend.log import ERROR_PREFIX, TERMINAL_PREFIX, get_logger
from partdistill.backend.run_stages import WORKER_PATH, RunRequest, run_compute
from partdistill.partdistill_blender import batch, compute_process, demo, properties, results
from partdistill.partdistill_blender.staged_run import StagedRun
from ui_fixtures import CancelAt, chair_scene, snapshot, truth

PARTS = demo.DEMO_CHAIR_PARTS
# The Python the worker runs in: this one, or the one CI names where this one has no torch
# (bpy 5.3 on Python 3.13, .ci/bpy_matrix.sh).
WORKER_PYTHON = os.environ.get(compute_process.PYTHON_ENV_VAR) or sys.executable
FORWARD = PartDistillConfig(teacher="simulated", mode="forward", num_views=4, resolution=64,
                            num_points=256, epochs=3, steps_per_epoch=3, device="cpu",
                            seed=0)  # fmt: skip


def _part_labels(obj) -> np.ndarray:
    labels = np.empty(len(obj.data.polygons), np.int32)
    obj.data.attributes["partdistill_part"].data.foreach_get("value", labels)
    return labels


def _rendered_chair() -> StagedRun:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    run = StagedRun([demo.build_demo_chair()], PARTS, FORWARD, "chair")
    run.render()
    return run


def test_a_saved_run_computes_the_same_labels_here_and_in_the_worker(tmp_path):
    run = _rendered_chair()
    assert run.teacher_options == {"config": FORWARD}  # a built-in teacher gets the config
    run.request.save(tmp_path)
    loaded = RunRequest.load(tmp_path)
    assert (loaded.parts, loaded.config, loaded.teacher_options) == (
        run.parts, run.config, run.teacher_options)  # fmt: skip
    (here,) = run_compute(run.request)
    (from_the_file,) = run_compute(loaded)
    (in_the_worker,) = run_compute(loaded, python=WORKER_PYTHON)
    assert np.array_equal(from_the_file.face_labels, here.face_labels)
    assert np.array_equal(in_the_worker.face_labels, here.face_labels)
    assert np.allclose(in_the_worker.face_confidence, here.face_confidence, atol=1e-6)
    assert (here.face_labels >= 0).all()


def test_the_batch_the_operator_and_the_worker_give_the_same_labels(ui, tmp_path, monkeypatch):
    pytest.importorskip("torch", reason="the batch and the operator compute in this process")
    obj = chair_scene(ui, mode="forward", num_points=256, epochs=3, resolution=64, num_views=4,
                      steps_per_epoch=PartDistillConfig().steps_per_epoch,
                      render_samples=PartDistillConfig().render_samples)  # fmt: skip
    monkeypatch.delenv(compute_process.PYTHON_ENV_VAR, raising=False)
    flags = ["--objects", obj.name, "--parts", ", ".join(PARTS), "--teacher", "simulated",
             "--mode", "forward", "--views", "4", "--resolution", "64", "--points", "256",
             "--epochs", "3", "--labels-out", str(tmp_path / "labels.json")]  # fmt: skip
    config = properties.config_from_settings(ui, None)
    assert batch.parse_args(flags).config == config  # the same run, asked for twice

    assert batch.main(flags) == 0
    by_the_batch = _part_labels(obj)
    assert bpy.ops.partdistill.segment_parts() == {"FINISHED"}  # no window: in sequence
    by_the_operator = _part_labels(obj)
    monkeypatch.setenv(compute_process.PYTHON_ENV_VAR, WORKER_PYTHON)
    assert compute_process.compute_python() == WORKER_PYTHON
    assert bpy.ops.partdistill.segment_parts() == {"FINISHED"}  # compute in the worker
    by_the_worker = _part_labels(obj)
    assert np.array_equal(by_the_operator, by_the_batch)
    assert np.array_equal(by_the_worker, by_the_batch)
    assert (by_the_batch == truth(obj)).mean() > 0.6


@pytest.mark.parametrize("stage", ["render", "student"])
def test_a_cancelled_run_in_the_worker_leaves_the_mesh_byte_identical(ui, monkeypatch, stage):
    monkeypatch.setenv(compute_process.PYTHON_ENV_VAR, WORKER_PYTHON)
    obj = chair_scene(ui, mode="forward", num_views=4, resolution=64)
    bpy.ops.partdistill.segment_parts()  # an earlier result, which must stay as it is
    before = snapshot(obj)
    run = CancelAt([obj], PARTS, properties.config_from_settings(ui, None))
    run.stage = stage
    while not run.step():  # as the modal's timer does, compute thread and worker included
        pass
    assert run.cancelled and run.results is None and run.error is None
    assert snapshot(obj) == before


def test_a_failed_run_leaves_the_mesh_byte_identical(ui):
    obj = chair_scene(ui, num_views=2, resolution=64)
    before = snapshot(obj)
    config = properties.config_from_settings(ui, None)
    run = StagedRun([obj], PARTS, config, teacher_options={"kind": "triangle"})
    run.run_to_end()
    assert isinstance(run.error, ValueError) and "kind must be 'pixel' or 'box'" in str(run.error)
    assert not run.cancelled and run.results is None
    assert snapshot(obj) == before
    with pytest.raises(SegmentationCancelled):
        run.cancel()
        run.report("labels", 1.0)


def test_the_log_file_gets_every_batch_message_the_terminal_its_summary(tmp_path, capsys):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    log_file = tmp_path / "logs" / "batch.log"
    log_file.parent.mkdir()
    code = batch.main(["--demo", "chair", "--parts", ", ".join(PARTS), "--teacher", "simulated",
                       "--views", "2", "--resolution", "48", "--mode", "direct",
                       "--log-file", str(log_file)])  # fmt: skip
    assert code == 0
    terminal = [line.removeprefix(TERMINAL_PREFIX) for line in capsys.readouterr().out.splitlines()
                if line.startswith(TERMINAL_PREFIX)]  # fmt: skip
    # The file also holds Blender's own output (render chatter): only the messages are compared.
    in_the_file = [line.split(" INFO ", 1)[1] for line in log_file.read_text().splitlines()
                   if " INFO " in line]  # fmt: skip
    assert any(line.startswith("done: 1 segmented, 0 failed") for line in terminal)
    assert any("rendered 2 views" in line for line in in_the_file)
    assert not any("rendered 2 views" in line for line in terminal), "details: the file only"
    assert terminal and set(terminal) <= set(in_the_file)
    get_logger().info("after the batch")  # the file sink ended with the run
    assert "after the batch" not in log_file.read_text()

    code = batch.main(["--objects", "Nothing", "--parts", "a, b", "--teacher", "simulated",
                       "--log-file", str(log_file)])  # fmt: skip
    assert code == 1
    out = capsys.readouterr().out
    assert f"{ERROR_PREFIX}open file: no object named 'Nothing' in the open file" in out
    assert " ERROR open file: no object named 'Nothing'" in log_file.read_text()


def test_operator_errors_are_reports_and_terminal_lines(ui, capsys):
    bpy.ops.mesh.primitive_cube_add()  # a mesh without ground truth for the simulated teacher
    for name in ("top", "side"):
        ui.parts.add().name = name
    ui.teacher = "simulated"
    with pytest.raises(RuntimeError, match="simulated teacher needs ground-truth labels on 'Cube'"):
        bpy.ops.partdistill.segment_parts()  # the report: an error report raises here
    out = capsys.readouterr().out
    assert f"{ERROR_PREFIX}the simulated teacher needs ground-truth labels on 'Cube'" in out


def test_the_worker_logs_to_its_log_file_and_a_dead_worker_shows_it(tmp_path):
    run = StagedRun([], PARTS, FORWARD.replace(teacher="no_such_package.teachers:factory"))
    run.request.save(tmp_path)
    done = subprocess.run([WORKER_PYTHON, str(WORKER_PATH), str(tmp_path)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 1
    assert "PROGRESS" not in done.stderr and ERROR_PREFIX not in done.stdout
    assert f"{ERROR_PREFIX}the compute process failed" in done.stderr  # kept as worker.log
    assert "Traceback" in done.stderr and "no_such_package" in done.stderr
    with pytest.raises(Exception, match="cannot import teacher module 'no_such_package"):
        run_files.read_result(tmp_path)

    dies = tmp_path / "dies"
    dies.write_text("#!/bin/sh\necho 'out of memory, says the worker' >&2\nexit 3\n")
    dies.chmod(0o755)
    with pytest.raises(RuntimeError, match="stopped with code 3 and no result:\nout of memory"):
        run_compute(run.request, python=str(dies))


def test_the_batch_joins_its_inputs_for_one_student(tmp_path, capsys):
    from test_pipeline import OFF_CUBE

    bpy.ops.wm.read_factory_settings(use_empty=True)
    inputs = []
    for name in ("one", "two"):
        (tmp_path / f"{name}.off").write_text(OFF_CUBE)
        (tmp_path / f"{name}_labels.txt").write_text("side\n1 3 4 5 6\ntop\n2\n")
        inputs.append(str(tmp_path / f"{name}.off"))
    labels_out = tmp_path / "labels.json"
    code = batch.main(["--input", *inputs, "--parts", "top, side", "--teacher", "simulated",
                       "--ground-truth", "psb", "--collection", "--mode", "forward",
                       "--views", "4", "--resolution", "64", "--points", "256", "--epochs", "3",
                       "--labels-out", str(labels_out),
                       "--output", str(tmp_path / "out")])  # fmt: skip
    assert code == 0
    assert "one student over 2 objects" in (tmp_path / "out" / "batch.log").read_text()
    records = [json.loads(line) for line in (tmp_path / "out" / "manifest.jsonl").open()]
    assert [(r.get("file"), r.get("status")) for r in records[1:]] == [
        (inputs[0], "done"), (inputs[1], "done")]  # fmt: skip
    objects = json.loads(labels_out.read_text())["objects"]
    assert [o["name"] for o in objects] == ["one", "two"]
    assert all(len(o["face_labels"]) == 6 for o in objects)
    for name in ("one", "two"):
        assert (tmp_path / "out" / f"{name}.blend").exists()
        run = results.read_run(bpy.data.objects[name])
        assert run["student_shared_by"] == ["one", "two"]  # the one student of both
