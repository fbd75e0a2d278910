"""Build the PartDistill extension zips, one per platform, with the wheels Blender does not ship.

    python scripts/build_extension.py                          # all four platforms, cp311+cp313
    python scripts/build_extension.py --platforms linux-x64    # one platform
    python scripts/build_extension.py --python-versions 3.11 --torch bundle

Steps: copy the source tree to a staging folder; ``pip download --only-binary=:all:`` the
compute half's packages for each (platform, Python) pair into ``wheels/`` there; rewrite the
staged manifest's ``wheels`` list; run Blender's own builder with ``--split-platforms``; print
the size of every zip. The source tree is left untouched unless ``--in-place`` is given (then
``wheels/`` and the manifest's list are written in the source tree, so that a developer's
source install carries the wheels too).

How torch is shipped (``--torch``):
- ``external`` (default): no torch in the zip. The add-on imports torch when Blender's Python
  has it; otherwise it runs the compute half out of process in a Python that has torch (the
  add-on preference, ``PARTDISTILL_PYTHON``, or one found on the machine), so a CUDA user's own
  torch is used as it is. See README.md ("How torch is found") for the reasons and measured sizes.
- ``bundle``: torch and its dependencies go into the zip too. On Linux, PyPI's torch is the
  CUDA build with several GB of ``nvidia-*`` wheels; a CPU wheel is used when ``--find-links``
  (or pip's own configuration) offers one.
"""

from __future__ import annotations

import argparse
import importlib.util
import pathlib
import re
import shutil
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
# The benchmark part vocabularies (presets in the UI): data beside the checkout, never
# committed; copied into the zip when present.
VOCABULARIES = ROOT.parent / "shared" / "data" / "part_vocabularies.json"
VOCABULARIES_IN_ZIP = pathlib.Path("partdistill_blender") / "data" / VOCABULARIES.name

# Blender platform -> pip platform tags accepted for it (pip also accepts older macOS tags).
# Blender 4.2+ needs glibc 2.28, so Linux wheels newer than that would not load in it. On macOS
# the pinned scipy ships only wheels for newer systems than Blender's minimum (11.2), so the
# macOS zips need the macOS version their wheels name (see README.md ("How torch is found")).
PIP_PLATFORMS = {
    "linux-x64": ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"],
    "windows-x64": ["win_amd64"],
    "macos-arm64": ["macosx_14_0_arm64"],
    "macos-x64": ["macosx_14_0_x86_64"],
}

# Blender's Python: 3.11 in Blender 4.2-5.0, 3.13 from 5.1.
PYTHON_VERSIONS = ("3.11", "3.13")

# What the compute half imports that Blender does not ship (Blender ships numpy).
COMPUTE_PACKAGES = ("scipy", "transformers", "tokenizers", "safetensors", "huggingface_hub")
TORCH_PACKAGES = ("torch",)
SHIPPED_BY_BLENDER = {"numpy"}

# Outside a git checkout, what the staged copy must not carry (the manifest's [build]
# exclusions do the rest). In a checkout, only the files git knows are copied.
STAGE_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", ".chroot*", "dist", "build", "out", "wheels", "__pycache__", "*.zip"
)


def source_files(root: pathlib.Path) -> list[str] | None:
    """Files of the checkout (tracked, or new and not ignored), relative; None outside git.

    Copying only these keeps build outputs, virtual environments and CI chroots (which may
    have /proc mounted in them) out of the staged copy.
    """
    try:
        listed = subprocess.run(
            [
                "git",
                "-C",
                str(root),
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ],
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return [f for f in listed.decode().split("\0") if f and (root / f).is_file()]


def stage_source(root: pathlib.Path, stage: pathlib.Path) -> None:
    """Copy the extension's source into ``stage`` (replaced), without build outputs."""
    shutil.rmtree(stage, ignore_errors=True)
    files = source_files(root)
    if files is None:
        shutil.copytree(root, stage, ignore=STAGE_IGNORE, symlinks=True)
        return
    for name in files:
        target = stage / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, target)


def pinned_requirements(names: tuple[str, ...]) -> list[str]:
    """The pins of ``names`` from requirements.txt (the one place versions are chosen)."""
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        match = re.match(r"^([A-Za-z0-9_.\-]+)\s*==\s*(\S+)$", line)
        if match:
            pins[normalise(match.group(1))] = f"{match.group(1)}=={match.group(2)}"
    missing = [n for n in names if normalise(n) not in pins]
    if missing:
        raise SystemExit(f"requirements.txt has no '==' pin for {', '.join(missing)}")
    return [pins[normalise(n)] for n in names]


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def wheel_distribution(path: pathlib.Path) -> str:
    return normalise(path.name.split("-", 1)[0])


def find_blender_ext() -> pathlib.Path:
    """Blender's extension tool inside the bpy module of this Python (not imported: too slow)."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or spec.origin is None:
        raise SystemExit("no bpy module here: pass --blender-ext PATH or --blender BINARY")
    found = sorted(
        pathlib.Path(spec.origin).parent.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py")
    )
    if not found:
        raise SystemExit(f"bpy at {spec.origin} has no bl_pkg/cli/blender_ext.py")
    return found[-1]


def download_wheels(
    requirements: list[str],
    platform: str,
    python_version: str,
    cache: pathlib.Path,
    find_links: list[str],
) -> list[pathlib.Path]:
    """``pip download`` binary wheels for one (platform, Python) pair; Blender's own excluded."""
    target = cache / f"{platform}-cp{python_version.replace('.', '')}"
    target.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "-qq", "--only-binary=:all:"]
    for tag in PIP_PLATFORMS[platform]:
        command += ["--platform", tag]
    command += ["--python-version", python_version, "--implementation", "cp", "-d", str(target)]
    for link in find_links:
        command += ["--find-links", link]
    subprocess.run(command + requirements, check=True)
    return sorted(
        p for p in target.glob("*.whl") if wheel_distribution(p) not in SHIPPED_BY_BLENDER
    )


def rewrite_manifest_wheels(manifest: pathlib.Path, wheels: list[str]) -> None:
    """Replace the manifest's ``wheels = [...]`` list (one entry a line) with ``wheels``."""
    text = manifest.read_text()
    body = "".join(f'  "{w}",\n' for w in wheels)
    new_list = f"wheels = [\n{body}]" if wheels else "wheels = []"
    new_text, count = re.subn(r"(?ms)^wheels\s*=\s*\[.*?\]", new_list, text, count=1)
    if count != 1:
        raise SystemExit(f"{manifest} has no 'wheels = [...]' list to rewrite")
    manifest.write_text(new_text)


def build_zips(blender: list[str], source: pathlib.Path, output: pathlib.Path) -> None:
    output.mkdir(parents=True, exist_ok=True)
    for old in output.glob("partdistill-*.zip"):
        old.unlink()
    subprocess.run(
        blender
        + ["build", "--source-dir", str(source), "--output-dir", str(output), "--split-platforms"],
        check=True,
    )
    subprocess.run(blender + ["validate", str(source)], check=True)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--platforms", default=",".join(PIP_PLATFORMS))
    parser.add_argument("--python-versions", default=",".join(PYTHON_VERSIONS), help="e.g. 3.11")
    parser.add_argument("--torch", choices=("external", "bundle"), default="external")
    parser.add_argument("--output-dir", default=str(ROOT / "dist"))
    parser.add_argument("--work-dir", default=str(ROOT / "build"), help="staging and wheel cache")
    parser.add_argument("--find-links", action="append", default=[])
    parser.add_argument("--in-place", action="store_true", help="write wheels/ in the source")
    parser.add_argument(
        "--vocabularies",
        default=str(VOCABULARIES),
        help="part_vocabularies.json to bundle as presets (skipped when absent)",
    )
    tool = parser.add_mutually_exclusive_group()
    tool.add_argument("--blender-ext", help="path to Blender's bl_pkg/cli/blender_ext.py")
    tool.add_argument("--blender", help="a Blender binary (uses 'blender --command extension')")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    platforms = [p.strip() for p in args.platforms.split(",") if p.strip()]
    pythons = [v.strip() for v in args.python_versions.split(",") if v.strip()]
    for p in platforms:
        if p not in PIP_PLATFORMS:
            raise SystemExit(f"unknown platform {p!r}: use {', '.join(PIP_PLATFORMS)}")
    for v in pythons:
        if v not in PYTHON_VERSIONS:
            raise SystemExit(f"unknown Blender Python {v!r}: use {', '.join(PYTHON_VERSIONS)}")
    if args.blender:
        blender = [args.blender, "--factory-startup", "--command", "extension"]
    else:
        ext = pathlib.Path(args.blender_ext) if args.blender_ext else find_blender_ext()
        blender = [sys.executable, str(ext)]

    work = pathlib.Path(args.work_dir)
    if args.in_place:
        source = ROOT
    else:
        source = work / "stage"
        stage_source(ROOT, source)
    vocabularies = pathlib.Path(args.vocabularies)
    if vocabularies.is_file():
        (source / VOCABULARIES_IN_ZIP).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(vocabularies, source / VOCABULARIES_IN_ZIP)
        print(f"presets: bundled {vocabularies}")
    else:
        print(f"presets: {vocabularies} not found, only the built-in presets ship")
    wheels_dir = source / "wheels"
    wheels_dir.mkdir(exist_ok=True)
    for old in wheels_dir.glob("*.whl"):  # only wheels: wheels/README.md is part of the tree
        old.unlink()

    names = COMPUTE_PACKAGES + (TORCH_PACKAGES if args.torch == "bundle" else ())
    requirements = pinned_requirements(names)
    started = time.perf_counter()
    for platform in platforms:
        for python_version in pythons:
            for wheel in download_wheels(
                requirements, platform, python_version, work / "wheel-cache", args.find_links
            ):
                shutil.copy2(wheel, wheels_dir / wheel.name)
    wheel_files = sorted(wheels_dir.glob("*.whl"))
    rewrite_manifest_wheels(
        source / "blender_manifest.toml", [f"./wheels/{w.name}" for w in wheel_files]
    )
    if platforms != list(PIP_PLATFORMS):
        # The manifest then lists only the platforms built, so --split-platforms makes no zip
        # that would lack its wheels.
        manifest = source / "blender_manifest.toml"
        listed = ", ".join(f'"{p}"' for p in platforms)
        manifest.write_text(
            re.sub(r"(?m)^platforms\s*=\s*\[.*\]", f"platforms = [{listed}]", manifest.read_text())
        )
    print(f"{len(wheel_files)} wheels, {sum(w.stat().st_size for w in wheel_files) / 1e6:.1f} MB")
    output = pathlib.Path(args.output_dir)
    build_zips(blender, source, output)
    print(f"built in {time.perf_counter() - started:.0f} s (torch: {args.torch})")
    for zip_path in sorted(output.glob("partdistill-*.zip")):
        print(f"{zip_path}  {zip_path.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
