"""The batch's known labels: few-shot examples (``--examples``) and corrections
(``--corrections attribute:NAME``).

An example is a labelled mesh: a .blend whose mesh objects hold a PartDistill segmentation
(Segment Parts, or the batch with ``--output``; corrections on top), or a mesh file with its
PSB labels beside it (``NAME_labels.txt``), mapped to the run's parts by name with the renames
of ``--example-renames`` (default: those of ``--ground-truth psb:old=new,...``). Examples are
loaded once per batch process (each ``--jobs`` process and Ray worker loads its own), made
into ``ObjectInput``s without views (``known_labels.example_input``), and the objects and
data they brought are removed again at once: the scene, the selection and the outputs are as
if there were no examples. Plain arrays out, no tensor maths.
"""

from __future__ import annotations

import contextlib
import pathlib

import bpy
import numpy as np

from ..backend.contracts import ObjectInput
from ..backend.groundtruth import map_part_names, read_psb_labels
from ..backend.log import get_logger
from .ground_truth import read_int_face_attribute
from .importers import import_mesh_file
from .known_labels import example_input, example_labels, read_corrections
from .results import read_segmentation

LABELS_SUFFIX = "_labels.txt"  # PSB labels beside a mesh file: NAME.off -> NAME_labels.txt
CORRECTIONS_KIND = "attribute"


# --- flags ------------------------------------------------------------------------------------


def parse_renames(text: str, flag: str) -> dict[str, str]:
    """``old=new,old=new`` -> {old: new}; ValueError naming ``flag`` when malformed."""
    renames = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        old, sep, new = pair.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise ValueError(f"{flag} {text!r}: expected old=new pairs separated by commas, e.g. "
                             "backsupport=back,support=seat")  # fmt: skip
        renames[old.strip()] = new.strip()
    return renames


def example_renames(example_renames_flag: str | None, ground_truth: str) -> dict[str, str]:
    """The renames that map an example's PSB part names to ``--parts``: ``--example-renames``,
    else those of ``--ground-truth psb:old=new,...``, else none."""
    if example_renames_flag is not None:
        return parse_renames(example_renames_flag, "--example-renames")
    kind, _, rest = (ground_truth or "").partition(":")
    return parse_renames(rest, "--ground-truth") if kind == "psb" else {}


def corrections_attribute(spec: str) -> str:
    """The attribute name of ``--corrections attribute:NAME``; ValueError when malformed."""
    kind, sep, name = spec.partition(":")
    if kind != CORRECTIONS_KIND or not sep or not name.strip():
        raise ValueError(f"--corrections {spec!r}: expected attribute:NAME, the name of an INT "
                         "face attribute of each input holding part indices into --parts "
                         "(-1 = none)")  # fmt: skip
    return name.strip()


# --- corrections ------------------------------------------------------------------------------


def corrections_of(objects, parts: list[str], attribute: str) -> list[np.ndarray | None]:
    """Each object's corrections from its INT face attribute ``attribute`` ((P,) int32 part
    indices, -1 = none), None for an object without it (not an error: nothing corrected)."""
    labels = []
    for obj in objects:
        found = obj.data.attributes.get(attribute)
        if found is not None and read_int_face_attribute(obj, attribute) is None:
            get_logger().warning(f"  {obj.name}: attribute {attribute!r} is not an INT face "
                                 "attribute: no corrections read from it")  # fmt: skip
        labels.append(read_corrections(obj, parts, attribute=attribute))
    return labels


# --- examples ---------------------------------------------------------------------------------


def load_examples(paths, parts: list[str], renames: dict[str, str] | None = None
                  ) -> list[ObjectInput]:  # fmt: skip
    """The few-shot examples of ``paths`` (see the module docstring), for ``parts``. Raises
    ValueError naming the file (missing, unlabelled, none of the parts labelled) before any
    is used; the scene is left as it was, also then."""
    examples = []
    for path in paths:
        examples += _examples_of_file(pathlib.Path(path), list(parts), renames or {})
    return examples


def describe(examples: list[ObjectInput], parts: list[str]) -> str:
    """One line for the log: how many examples, and their labelled faces per part."""
    labels = np.concatenate([e.labels for e in examples]) if examples else np.zeros(0, int)
    counts = np.bincount(labels[labels >= 0], minlength=len(parts))
    per_part = ", ".join(f"{p} {c}" for p, c in zip(parts, counts, strict=True))
    return f"{len(examples)} few-shot examples ({int((labels >= 0).sum())} labelled faces: " \
           f"{per_part})"  # fmt: skip


def _examples_of_file(path: pathlib.Path, parts, renames) -> list[ObjectInput]:
    if not path.is_file():
        raise ValueError(f"--examples {path}: no such file: give a mesh file with its PSB "
                         f"labels beside it (NAME{LABELS_SUFFIX}) or a .blend segmented by "
                         "PartDistill")  # fmt: skip
    with _scene_left_as_it_was():
        if path.suffix.lower() == ".blend":
            labelled, names = _segmented_objects(path, parts)
        else:
            labelled, names = _psb_labelled_object(path, parts, renames)
        usable = [(obj, labels) for obj, labels in labelled if (labels >= 0).any()]
        if not usable:
            rename = (" or rename its parts with --example-renames old=new,..."
                      if path.suffix.lower() != ".blend" else "")  # fmt: skip
            raise ValueError(f"--examples {path}: no face is labelled with any of the parts "
                             f"{', '.join(parts)} (its labels name {', '.join(names)}): give "
                             f"--parts names it uses{rename}")  # fmt: skip
        return [example_input(obj, labels) for obj, labels in usable]


def _segmented_objects(path: pathlib.Path, parts):
    """[(object, labels)] of the mesh objects of a .blend that hold a segmentation, appended
    into this scene (removed again by the caller), and the part names they use."""
    try:
        with bpy.data.libraries.load(str(path), link=False) as (source, target):
            target.objects = list(source.objects)
    except (OSError, RuntimeError) as exc:
        raise ValueError(f"--examples {path}: Blender could not read it ({exc})") from None
    labelled, names = [], []
    for obj in target.objects:
        if obj is None or obj.type != "MESH":
            continue
        bpy.context.scene.collection.objects.link(obj)  # evaluated with the scene's depsgraph
        segmentation = read_segmentation(obj)
        if segmentation is None:
            continue
        names += [n for n in segmentation["parts"] if n not in names]
        labelled.append((obj, example_labels(obj, parts)))
    if not labelled:
        raise ValueError(f"--examples {path}: no labels: none of its mesh objects holds a "
                         "PartDistill segmentation; segment them first (Segment Parts, or the "
                         "batch with --output FILE.blend) and give the saved file")  # fmt: skip
    return labelled, names


def _psb_labelled_object(path: pathlib.Path, parts, renames):
    """[(object, labels)] of a mesh file with PSB labels beside it, imported into this scene
    (removed again by the caller), and the part names of its labels file."""
    labels_path = path.with_name(path.stem + LABELS_SUFFIX)
    if not labels_path.is_file():
        raise ValueError(f"--examples {path}: no labels: a mesh file used as an example needs "
                         f"its PSB labels beside it, {labels_path.name} (a part name line, then "
                         "the numbers of its faces), or give a .blend segmented by PartDistill"
                         )  # fmt: skip
    try:
        objects = import_mesh_file(path)
    except ValueError as exc:
        raise ValueError(f"--examples {exc}") from None
    if len(objects) != 1:
        raise ValueError(f"--examples {path}: {len(objects)} mesh objects, but its labels "
                         f"({labels_path.name}) number the faces of one: join them into one "
                         "mesh first")  # fmt: skip
    (obj,) = objects
    names, labels = read_psb_labels(labels_path, len(obj.data.polygons))
    mapped = map_part_names(names, labels, parts, renames).astype(np.int32)
    return [(obj, mapped)], names


def _datablocks() -> dict[int, bpy.types.ID]:
    """Every datablock of the open file, by pointer."""
    found = {}
    for name in dir(bpy.data):
        collection = getattr(bpy.data, name, None)
        if not isinstance(collection, bpy.types.bpy_prop_collection):
            continue
        for block in collection:
            if isinstance(block, bpy.types.ID):
                found[block.as_pointer()] = block
    return found


@contextlib.contextmanager
def _scene_left_as_it_was():
    """Remove every datablock made inside (the example's objects, meshes, materials) and
    give the selection and the active object back, also on error."""
    before = set(_datablocks())
    view_layer = bpy.context.view_layer
    view_layer.update()  # objects removed since the last update leave stale entries
    selection = [(obj, obj.select_get()) for obj in view_layer.objects if obj is not None]
    active = view_layer.objects.active
    try:
        yield
    finally:
        new = [block for pointer, block in _datablocks().items() if pointer not in before]
        if new:
            bpy.data.batch_remove(new)
        view_layer.update()
        for obj, selected in selection:
            obj.select_set(selected)
        view_layer.objects.active = active


def examples_for(args) -> list[ObjectInput]:
    """The examples of the batch's ``--examples``, loaded on the first call of this process
    and kept on ``args`` (each --jobs process and Ray worker parses its flags and loads its
    own)."""
    if getattr(args, "example_inputs", None) is None:
        args.example_inputs = load_examples(args.examples or [], args.part_names,
                                            args.example_renames_map)  # fmt: skip
    return args.example_inputs
