"""The extension as Blender sees it (manifest, split zips) and the compute half out of process.

Blender's own validator and builder run here from the bpy module (the same code as
``blender --command extension``); the real Blender program is tested by .ci/real_blender.sh.
"""

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import tomllib
import zipfile

import numpy as np
import pytest
from conftest import ROOT
from partdistill.backend import run_files
from partdistill.backend.config import PartDistillConfig
from partdistill.backend.contracts import (
    ObjectInfo,
    ObjectInput,
    Segmentation,
    SegmentationCancelled,
    TeacherUnavailable,
)
from partdistill.backend.pipeline import segment_collection
from partdistill.backend.run_stages import RunRequest, run_compute
from partdistill.backend.teachers import build_teacher
from partdistill.partdistill_blender import compute_process
from synthetic import grid_planes, polygon_centres_x, top_view

PLATFORMS = {"linux-x64", "windows-x64", "macos-arm64", "macos-x64"}


def _load_build_script():
    spec = importlib.util.spec_from_file_location(
        "build_extension", ROOT / "scripts" / "build_extension.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_extension = _load_build_script()
BLENDER_EXT = build_extension.find_blender_ext()


def _blender_ext(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BLENDER_EXT), *map(str, args)], capture_output=True, text=True
    )


def test_source_tree_passes_blenders_validator():
    done = _blender_ext("validate", ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success" in done.stdout


def test_manifest_declares_the_product():
    manifest = tomllib.loads((ROOT / "blender_manifest.toml").read_text())
    assert manifest["id"] == "partdistill"
    assert manifest["type"] == "add-on"
    assert manifest["blender_version_min"] == "4.2.0"
    assert manifest["license"] == ["SPDX:GPL-3.0-or-later"]
    assert set(manifest["platforms"]) == PLATFORMS
    assert set(manifest["permissions"]) == {"files", "network"}
    assert manifest["wheels"] == []  # filled only in the build's staged copy
    excluded = manifest["build"]["paths_exclude_pattern"]
    for folder in ("/tests/", "/benchmarks/", "/scripts/", ".*", "__pycache__/"):
        assert folder in excluded


def _write_wheel(folder, name: str, platform_tag: str):
    """A minimal real wheel (one module, its dist-info) of the given platform."""
    path = folder / f"{name}-1.0-py3-none-{platform_tag}.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(f"{name}.py", "VALUE = 1\n")
        info = f"{name}-1.0.dist-info"
        wheel.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        tag = f"Tag: py3-none-{platform_tag}\n"
        wheel.writestr(f"{info}/WHEEL", f"Wheel-Version: 1.0\nRoot-Is-Purelib: true\n{tag}")
        wheel.writestr(f"{info}/RECORD", "")
    return path


def test_split_build_gives_each_platform_its_wheels_and_no_tests(tmp_path):
    source = tmp_path / "stage"
    build_extension.stage_source(ROOT, source)
    (source / "wheels").mkdir(exist_ok=True)  # staged with its README
    wheels = [
        _write_wheel(source / "wheels", "purepart", "any"),
        _write_wheel(source / "wheels", "linuxpart", "manylinux_2_28_x86_64"),
        _write_wheel(source / "wheels", "windowspart", "win_amd64"),
    ]
    build_extension.rewrite_manifest_wheels(
        source / "blender_manifest.toml", [f"./wheels/{w.name}" for w in wheels]
    )
    assert _blender_ext("validate", source).returncode == 0
    (tmp_path / "dist").mkdir()
    done = _blender_ext(
        "build", "--source-dir", source, "--output-dir", tmp_path / "dist", "--split-platforms"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    zips = {p.name: p for p in (tmp_path / "dist").glob("*.zip")}
    assert set(zips) == {f"partdistill-0.1.0-{p.replace('-', '_')}.zip" for p in PLATFORMS}
    for name, path in zips.items():
        files = set(zipfile.ZipFile(path).namelist())
        assert {
            "__init__.py",
            "backend/worker.py",
            "partdistill_blender/compute_process.py",
        } <= files
        not_shipped = ("tests/", "scripts/", ".ci/", "docs/", "examples/")
        assert not [f for f in files if f.startswith(not_shipped)]
        wheel_files = {f.split("/")[-1].split("-")[0] for f in files if f.endswith(".whl")}
        expected = {"purepart"} | (
            {"linuxpart"} if "linux" in name else {"windowspart"} if "windows" in name else set()
        )
        assert wheel_files == expected, name


def _grid_problem():
    planes = [(0.0, 1.0, 1.0, 0.0)]
    geometry = grid_planes(16, planes)
    views = [top_view(16, planes, 96)] * 2
    truth = (polygon_centres_x(geometry) > 0.5).astype(np.int32)
    objects = [ObjectInput(geometry, views, ObjectInfo(name="grid", face_labels=truth))]
    config = PartDistillConfig(
        teacher="simulated", num_points=512, epochs=10, steps_per_epoch=5, device="cpu", seed=0
    )
    return objects, ["left", "right"], config, truth


def test_worker_gives_the_same_labels_as_in_process():
    objects, parts, config, truth = _grid_problem()
    expected = segment_collection(objects, build_teacher("simulated", parts), parts, config)[0]
    stages = []
    got = run_compute(
        RunRequest(objects, parts, config), lambda s, f: stages.append(s), python=sys.executable
    )[0]
    # Two in-process runs already differ on a few border faces (the backend is not bitwise
    # deterministic on CPU), so the two processes are held to the same standard, not to bits.
    assert (got.face_labels == expected.face_labels).mean() > 0.95
    assert (got.face_labels == truth).mean() > 0.9
    assert (expected.face_labels == truth).mean() > 0.9
    assert got.face_labels.dtype == expected.face_labels.dtype
    assert got.face_confidence.shape == expected.face_confidence.shape
    assert len(got.teacher_predictions) == 2
    assert np.array_equal(got.teacher_predictions[1], expected.teacher_predictions[1])
    assert {"teacher", "knowledge", "student", "labels"} <= set(stages)


def test_request_and_result_cross_the_process_boundary_exactly(tmp_path):
    objects, parts, config, truth = _grid_problem()
    config = config.replace(view_angles=((5.0, 10.0), (20.0, 30.0)), prompt_templates=("a {part}",))
    options = {"kind": "box", "seed": 3, "config": config}
    run_files.write_request(tmp_path, objects, parts, config, options)
    read = run_files.read_request(tmp_path)
    read_objects, read_parts = read["objects"], read["parts"]
    read_config, read_options = read["config"], read["teacher_options"]
    assert read_config == config and read_parts == parts and read_options == options
    g, h = objects[0].geometry, read_objects[0].geometry
    for key in ("vertices", "triangles", "triangle_polygons"):
        assert np.array_equal(getattr(g, key), getattr(h, key))
        assert getattr(g, key).dtype == getattr(h, key).dtype
    assert h.num_polygons == g.num_polygons
    assert np.array_equal(read_objects[0].info.face_labels, truth)
    for view, read_view in zip(objects[0].views, read_objects[0].views, strict=True):
        for key in ("image", "face_ids", "K", "world_to_camera"):
            assert np.array_equal(getattr(view, key), getattr(read_view, key))
    boxes = [[((1.0, 2.0, 30.0, 40.0), np.array([0.25, 0.75], np.float32))], []]
    result = Segmentation(
        parts=parts,
        face_labels=truth,
        face_confidence=np.linspace(0, 1, len(truth), dtype=np.float32),
        teacher_predictions=boxes,
        timings={"teacher": 1.5},
        info={"epoch_losses": [np.float32(0.5)], "backward_epoch": None},
    )
    run_files.write_result(tmp_path, [result])
    (back,) = run_files.read_result(tmp_path)
    assert np.array_equal(back.face_labels, truth)
    assert np.array_equal(back.face_confidence, result.face_confidence)
    assert back.teacher_predictions[0][0][0] == (1.0, 2.0, 30.0, 40.0)
    assert np.array_equal(back.teacher_predictions[0][0][1], boxes[0][0][1])
    assert back.teacher_predictions[1] == []
    assert back.info == {"epoch_losses": [0.5], "backward_epoch": None}


def _worker_folders() -> set[str]:
    return {n for n in os.listdir(tempfile.gettempdir()) if n.startswith("partdistill-")}


def test_cancel_stops_the_worker_and_leaves_nothing():
    objects, parts, config, _ = _grid_problem()
    before = _worker_folders()

    def cancel_at_student(stage, fraction):
        if stage == "student":
            raise SegmentationCancelled()

    with pytest.raises(SegmentationCancelled):
        run_compute(RunRequest(objects, parts, config), cancel_at_student, python=sys.executable)
    assert _worker_folders() == before


def test_worker_failure_reaches_the_caller_with_its_message():
    objects, parts, config, _ = _grid_problem()
    config = config.replace(teacher="no_such_package.teachers:factory")
    with pytest.raises(TeacherUnavailable, match="cannot import teacher module 'no_such_package"):
        run_compute(RunRequest(objects, parts, config), python=sys.executable)


def test_worker_rejects_options_that_cannot_cross_processes():
    objects, parts, config, _ = _grid_problem()
    with pytest.raises(ValueError, match="teacher options must be plain values"):
        run_compute(RunRequest(objects, parts, config, {"x": object()}), python=sys.executable)


def test_python_setting_that_is_not_a_program_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv(compute_process.PYTHON_ENV_VAR, str(tmp_path / "missing" / "python"))
    objects, parts, config, _ = _grid_problem()
    with pytest.raises(TeacherUnavailable, match="which is not a program"):
        compute_process.compute(RunRequest(objects, parts, config))


def test_a_python_with_torch_is_found_on_path(monkeypatch, tmp_path):
    for variable in ("CONDA_PREFIX", "VIRTUAL_ENV"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(compute_process, "_probe_cache", {})
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert compute_process.find_python_with_torch() is None
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # A launcher, as conda and pyenv put on PATH (a bare symlink would lose the venv).
    launcher = bin_dir / "python3"
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    launcher.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    found = compute_process.find_python_with_torch()
    assert found == str(bin_dir / "python3")
    report = compute_process.probe_python(found)
    assert report["missing"] == [] and report["torch"]


def test_probe_reports_what_a_python_lacks(tmp_path):
    # A bare interpreter (no venv packages) is not usable: the probe says so instead of failing.
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(compute_process.WORKER_PATH), "--probe"],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 or json.loads(done.stdout)["missing"]
