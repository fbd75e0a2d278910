"""Writeback of a segmentation onto a real Blender mesh: exact groups, slots, attributes, undo."""

import bpy
import numpy as np
import pytest
from partdistill.partdistill_blender import palette, results, writeback

PARTS = ["back", "seat", "leg"]


def _grid_object(name="Grid", with_user_state=True):
    """A 12 x 10 quad grid with two user materials, a user vertex group and an attribute."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.mesh.primitive_grid_add(x_subdivisions=12, y_subdivisions=10, size=2.0)
    obj = bpy.context.active_object
    obj.name = name
    if with_user_state:
        mesh = obj.data
        for material_name in ("User red", "User blue"):
            mesh.materials.append(bpy.data.materials.new(material_name))
        indices = (np.arange(len(mesh.polygons)) % 3 == 0).astype(np.int32)
        mesh.polygons.foreach_set("material_index", indices)
        group = obj.vertex_groups.new(name="seat")  # collides with a part name on purpose
        group.add([0, 1, 2, 3], 0.5, "REPLACE")
        mesh.attributes.new("user_weight", "FLOAT", "FACE").data.foreach_set(
            "value", np.linspace(0, 1, len(mesh.polygons), dtype=np.float32)
        )
    return obj


def _labels(obj, seed=0):
    rng = np.random.default_rng(seed)
    count = len(obj.data.polygons)
    labels = rng.integers(-1, len(PARTS), count).astype(np.int32)
    confidence = rng.random(count).astype(np.float32)
    return labels, confidence


def _state(obj):
    mesh = obj.data
    indices = np.empty(len(mesh.polygons), dtype=np.int32)
    mesh.polygons.foreach_get("material_index", indices)
    return {
        "material_indices": indices,
        "slots": [m.name if m else None for m in mesh.materials],
        "groups": [g.name for g in obj.vertex_groups],
        "attributes": sorted(a.name for a in mesh.attributes),
        "props": sorted(obj.keys()),
        "materials": sorted(m.name for m in bpy.data.materials),
        "active_group": obj.vertex_groups.active_index,
    }


def _group_vertices(obj, group):
    mesh = obj.data
    members = set()
    for vertex in mesh.vertices:  # test-side check, independent of the vectorised writer
        for element in vertex.groups:
            if element.group == group.index:
                members.add(vertex.index)
    return members


def test_write_puts_exact_groups_slots_and_attributes():
    obj = _grid_object()
    labels, confidence = _labels(obj)
    writeback.write_segmentation(obj, PARTS, labels, confidence)
    mesh = obj.data

    # Material slots: the user's two, then one per part, coloured.
    assert [m.name for m in mesh.materials] == [
        "User red",
        "User blue",
        "PartDistill back",
        "PartDistill seat",
        "PartDistill leg",
    ]
    colours = [tuple(mesh.materials[2 + i].diffuse_color) for i in range(3)]
    assert len(set(colours)) == 3
    indices = np.empty(len(mesh.polygons), dtype=np.int32)
    mesh.polygons.foreach_get("material_index", indices)
    user_indices = (np.arange(len(mesh.polygons)) % 3 == 0).astype(np.int32)
    expected = np.where(labels >= 0, 2 + labels, user_indices)
    assert np.array_equal(indices, expected)

    # Vertex groups: the user's "seat" survives; ours for seat is renamed.
    names = [g.name for g in obj.vertex_groups]
    assert names == ["seat", "back", "seat (PartDistill)", "leg"]
    for part_index, group_name in zip(range(3), ["back", "seat (PartDistill)", "leg"], strict=True):
        expected_vertices = {
            v for p in mesh.polygons if labels[p.index] == part_index for v in p.vertices
        }
        assert _group_vertices(obj, obj.vertex_groups[group_name]) == expected_vertices
    assert _group_vertices(obj, obj.vertex_groups["seat"]) == {0, 1, 2, 3}

    part = np.empty(len(mesh.polygons), dtype=np.int32)
    mesh.attributes["partdistill_part"].data.foreach_get("value", part)
    assert np.array_equal(part, labels)
    stored_confidence = np.empty(len(mesh.polygons), dtype=np.float32)
    mesh.attributes["partdistill_confidence"].data.foreach_get("value", stored_confidence)
    assert np.array_equal(stored_confidence, confidence)

    result = results.read_segmentation(obj)
    assert result["parts"] == PARTS
    assert np.array_equal(result["face_labels"], labels)
    assert np.array_equal(result["face_confidence"], confidence)
    assert result["groups"] == ["back", "seat (PartDistill)", "leg"]


def test_second_write_replaces_without_duplicates():
    obj = _grid_object()
    labels, confidence = _labels(obj, seed=1)
    writeback.write_segmentation(obj, PARTS, labels, confidence)
    first = _state(obj)
    labels2, confidence2 = _labels(obj, seed=2)
    writeback.write_segmentation(obj, PARTS, labels2, confidence2)
    second = _state(obj)
    assert second["slots"] == first["slots"]
    assert second["groups"] == first["groups"]
    assert second["materials"] == first["materials"]
    assert not any(".00" in name for name in second["materials"])
    user_indices = (np.arange(len(obj.data.polygons)) % 3 == 0).astype(np.int32)
    assert np.array_equal(
        second["material_indices"], np.where(labels2 >= 0, 2 + labels2, user_indices)
    )
    assert np.array_equal(results.read_segmentation(obj)["face_labels"], labels2)


def test_clear_restores_exactly():
    obj = _grid_object()
    before = _state(obj)
    labels, confidence = _labels(obj, seed=3)
    writeback.write_segmentation(obj, PARTS, labels, confidence)
    writeback.write_segmentation(obj, PARTS, labels[::-1].copy(), confidence)
    assert writeback.clear_segmentation(obj) is True
    after = _state(obj)
    assert np.array_equal(after.pop("material_indices"), before.pop("material_indices"))
    assert after == before
    assert results.read_segmentation(obj) is None
    assert writeback.clear_segmentation(obj) is False


def test_clear_on_plain_mesh_and_shared_material_kept():
    obj = _grid_object("A", with_user_state=False)
    attributes_before = sorted(a.name for a in obj.data.attributes)
    other_mesh = obj.data.copy()
    other = bpy.data.objects.new("B", other_mesh)
    bpy.context.collection.objects.link(other)
    labels, confidence = _labels(obj, seed=4)
    writeback.write_segmentation(obj, PARTS, labels, confidence)
    writeback.write_segmentation(other, PARTS, labels, confidence)
    assert len([m for m in bpy.data.materials if m.name.startswith("PartDistill")]) == 3
    writeback.clear_segmentation(obj)
    assert len(obj.data.materials) == 0
    assert len(obj.material_slots) == 0, "no empty slot left on the object either"
    # Including no leftover "material_index" attribute, which Blender omits while all are 0.
    assert sorted(a.name for a in obj.data.attributes) == attributes_before
    assert len(obj.vertex_groups) == 0
    # Still used by B: kept.
    assert "PartDistill back" in bpy.data.materials
    writeback.clear_segmentation(other)
    assert not [m for m in bpy.data.materials if m.name.startswith("PartDistill")]


@pytest.mark.parametrize(
    "parts, labels, confidence, message",
    [
        (PARTS, "short", None, "one label per polygon"),
        (PARTS, "high", None, "must lie in -1..2"),
        (PARTS, "low", None, "must lie in -1..2"),
        (PARTS, None, "short", "face_confidence has shape"),
        (PARTS, None, "nan", "finite"),
        ([], None, None, "non-empty"),
        (["a", "a", "b"], None, None, "distinct"),
    ],
)
def test_invalid_input_raises_before_changing_anything(parts, labels, confidence, message):
    obj = _grid_object()
    good_labels, good_confidence = _labels(obj, seed=5)
    writeback.write_segmentation(obj, PARTS, good_labels, good_confidence)
    before = _state(obj)
    bad_labels = good_labels.copy()
    bad_confidence = good_confidence.copy()
    if labels == "short":
        bad_labels = bad_labels[:-1]
    elif labels == "high":
        bad_labels[5] = 3
    elif labels == "low":
        bad_labels[5] = -2
    if confidence == "short":
        bad_confidence = bad_confidence[:-1]
    elif confidence == "nan":
        bad_confidence[0] = np.nan
    with pytest.raises(ValueError, match=message):
        writeback.write_segmentation(obj, parts, bad_labels, bad_confidence)
    after = _state(obj)
    assert np.array_equal(after.pop("material_indices"), before.pop("material_indices"))
    assert after == before
    assert np.array_equal(results.read_segmentation(obj)["face_labels"], good_labels)


def test_part_colours_distinct_and_deterministic():
    colours = palette.part_colors(40)
    assert colours == palette.part_colors(40) and palette.part_colors(3) == colours[:3]
    rgb = np.array(colours)[:, :3]
    assert np.all((rgb >= 0) & (rgb <= 1)) and np.all(np.array(colours)[:, 3] == 1.0)
    gaps = np.linalg.norm(rgb[:, None] - rgb[None], axis=-1) + 10 * np.eye(40)
    assert gaps[:10, :10].min() > 0.2  # the hand-picked ones are clearly different
    assert gaps.min() > 0.02  # and no two of 40 are the same colour
