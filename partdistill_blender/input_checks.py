"""Inputs a run cannot use, found before anything is rendered or written, in words a user can act
on: each message names the object, file or flag, says what is wrong and what to do.

Checked here: objects that are not meshes, linked (read-only) objects, meshes with no faces or
no surface, NaN or infinite coordinates, part names Blender cannot hold, and the batch's
output paths (writable, not an input). Meshes that are odd but usable (n-gons, concave,
zero-area or duplicate faces, negative scale, modifiers, shape keys) are not refused: the run
segments the evaluated mesh as it is seen and writes the labels onto the object's own polygons.
"""

from __future__ import annotations

import errno
import os
import pathlib
import tempfile

import numpy as np

# Blender keeps names in 63 bytes; a part's material is "PartDistill " + the part name.
BLENDER_NAME_BYTES = 63
MATERIAL_PREFIX = "PartDistill "
PART_NAME_BYTES = BLENDER_NAME_BYTES - len(MATERIAL_PREFIX.encode())
# Coordinates beyond this are an infinity Blender clamped to float32's maximum, not a shape.
HUGE_COORDINATE = 1e30


def object_problem(obj) -> str | None:
    """Why ``obj`` cannot be segmented, in a sentence that names it; None when it can."""
    name = obj.name
    if obj.type != "MESH":
        convert = " or convert it (Object > Convert > Mesh)" if obj.type in (
            "CURVE", "SURFACE", "META", "FONT", "CURVES") else ""  # fmt: skip
        kind = obj.type.lower().replace("_", " ")
        article = "an" if kind[0] in "aeiou" else "a"
        return (f"{name!r} is {article} {kind} object, not a mesh: leave it out of the "
                f"selection{convert}")  # fmt: skip
    library = obj.library or obj.data.library
    if library is not None:
        # Writing parts means changing the mesh, which Blender does not allow on linked data;
        # a local copy made behind the user's back would silently fork their asset.
        return (f"{name!r} is linked from the library {library.filepath!r} and cannot be "
                "changed here: make it local (Object > Relations > Make Local > Selected "
                "Objects and Data) and run again")  # fmt: skip
    mesh = obj.data
    if len(mesh.polygons) == 0:
        if len(mesh.edges):
            what = f"only {len(mesh.edges)} loose edges"
        elif len(mesh.vertices):
            what = f"only {len(mesh.vertices)} loose vertices"
        else:
            what = "no geometry at all"
        return (f"{name!r} has no faces ({what}): PartDistill labels faces, so give it faces "
                "(Edit Mode > Face > Fill) or leave it out")  # fmt: skip
    coordinates = np.empty(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", coordinates)
    # Blender stores an infinite coordinate as the largest float (3.4e38): that is infinite too.
    finite = np.isfinite(coordinates) & (np.abs(coordinates) < HUGE_COORDINATE)
    bad = ~finite.reshape(-1, 3).all(axis=1)
    if bad.any():
        return (f"{name!r} has {int(bad.sum())} vertices with NaN or infinite coordinates "
                f"(the first is vertex {int(np.argmax(bad))}): delete or move them in Edit "
                "Mode and run again")  # fmt: skip
    if not np.isfinite(np.array(obj.matrix_world)).all():
        return (f"{name!r} has NaN or infinite values in its transform: clear it "
                "(Object > Clear > Location / Rotation / Scale) and run again")  # fmt: skip
    areas = np.empty(len(mesh.polygons), np.float32)
    mesh.polygons.foreach_get("area", areas)
    if not areas.sum() > 0.0:
        return (f"{name!r} has {len(areas)} faces but no surface area (every face is "
                "degenerate): there is nothing to render; fix the mesh or leave it out"
                )  # fmt: skip
    return None


def check_objects(objects) -> None:
    """ValueError naming every object of ``objects`` that cannot be segmented (nothing is
    changed); one line per object."""
    problems = [p for p in map(object_problem, objects) if p]
    if problems:
        raise ValueError("; ".join(problems))


def check_part_names(parts: list[str]) -> None:
    """ValueError for a part name Blender would cut (names hold 63 bytes, and the part's
    material adds "PartDistill "): a cut name could merge two parts' groups or materials."""
    for part in parts:
        size = len(part.encode("utf-8"))
        if size > PART_NAME_BYTES:
            raise ValueError(
                f"part name {part[:24] + '…'!r} is {size} bytes long; Blender names hold "
                f"{PART_NAME_BYTES} here: shorten it (the category field can carry the rest)"
            )


# --- the batch's outputs ------------------------------------------------------------------------


def _nearest_existing(folder: pathlib.Path) -> pathlib.Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _writable(folder: pathlib.Path) -> str | None:
    """None when a file can be created in ``folder`` (or in the nearest folder that exists,
    where the missing ones would be made); else why not. Probes by creating and deleting a
    file: permission bits say nothing for root or read-only file systems."""
    existing = _nearest_existing(folder)
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".partdistill-probe-"):
            pass
    except OSError as exc:
        return f"cannot write in {existing} ({exc.strerror or exc})"
    return None


def output_targets(args) -> list[tuple[str, pathlib.Path, bool]]:
    """(flag, path, is a file) of every output the batch's ``args`` name."""
    targets = []
    for flag, value, suffix in (("--labels-out", args.labels_out, None),
                                ("--output", args.output, ".blend"),
                                ("--labels-dir", args.labels_dir, ""),
                                ("--preview", args.preview, ".png"),
                                ("--manifest", args.manifest, None),
                                ("--log", args.log_file, None)):  # fmt: skip
        if value:
            path = pathlib.Path(value).expanduser()
            is_file = suffix is None or (suffix and path.suffix.lower() == suffix)
            targets.append((flag, path, bool(is_file)))
    return targets


def check_outputs(args, inputs: list[str]) -> None:
    """ValueError, before anything is read or written, when an output of the batch's ``args``
    could not be written or would overwrite one of ``inputs`` (files, absolute)."""
    resolved_inputs = {os.path.realpath(p) for p in inputs}
    for flag, path, is_file in output_targets(args):
        if os.path.realpath(path) in resolved_inputs:
            raise ValueError(f"{flag} {path} is also an input: inputs are never overwritten; "
                             "write the output elsewhere")  # fmt: skip
        if is_file and path.is_dir():
            raise ValueError(f"{flag} {path} is a folder: give a file name")
        problem = _writable(path.parent if is_file else path)
        if problem:
            raise ValueError(f"{flag} {path}: {problem}: choose a folder you can write to")


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
_REFUSED = (errno.EACCES, errno.EPERM, errno.EROFS)


def is_disk_full(exc: BaseException) -> bool:
    """True for a full disk or an exhausted quota: every later write fails the same way."""
    return isinstance(exc, OSError) and exc.errno in DISK_FULL


def os_error_from_message(exc: BaseException, path) -> BaseException:
    """Blender's writers report a failed write as RuntimeError or an OSError without an errno,
    whose text holds the system's message ("Error: No space left on device"): the OSError it
    stands for, naming ``path``, so that it is said in words like any other; else ``exc``."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return exc
    text = str(exc)
    for code in (*DISK_FULL, *_REFUSED):
        if os.strerror(code) in text:
            return OSError(code, os.strerror(code), str(path))
    return exc


def describe_error(exc: BaseException) -> str:
    """An exception as a user reads it; never empty. A full disk or a folder that refuses a
    file is said in words, with the file and what to do."""
    if is_disk_full(exc):
        where = f" writing {exc.filename}" if exc.filename else ""
        return (f"the disk is full{where} (nothing was half-written): free some space, then go "
                "on with --resume MANIFEST")  # fmt: skip
    if isinstance(exc, OSError) and exc.errno in _REFUSED:
        where = f" {exc.filename}" if exc.filename else ""
        return f"cannot write{where} ({exc.strerror}): choose a folder you can write to"
    text = str(exc).strip()
    return text if text else type(exc).__name__
