"""The sidebar panels, part list, presets and add-on preferences, with the real bpy module in
background mode. The panels' draw() runs with ``checked_layout.CheckedLayout`` in place of the
UILayout that background mode cannot make: every call is checked against the real UILayout's
RNA. The real window runs them too (.ci/ui_*.sh).
"""

import pathlib
import re
import tempfile

import bpy
import pytest
from checked_layout import CheckedLayout, draw
from partdistill.backend.config import PartDistillConfig
from partdistill.partdistill_blender import (
    addon,
    model_manager,
    panels,
    part_list,
    preferences,
    presets,
    properties,
    results,
)
from ui_fixtures import chair_scene


def test_part_list_operators(ui):
    chair_scene(ui)
    bpy.ops.partdistill.part_add()
    bpy.ops.partdistill.part_add()
    assert [p.name for p in ui.parts] == ["back", "part", "part 2", "seat", "leg", "arm"]
    ui.active_part = 5
    bpy.ops.partdistill.part_move(direction="UP")
    bpy.ops.partdistill.part_remove()
    assert [p.name for p in ui.parts] == ["back", "part", "part 2", "seat", "leg"]


def test_presets_builtin_datasets_and_user(ui, monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the user presets folder
    groups = presets.preset_groups()
    assert groups["Built-in"]["Chair"] == ["back", "seat", "leg", "arm"]
    assert groups["ShapeNetPart"]["Chair"] == ["back", "seat", "leg", "armrest"]
    assert groups["PartNet-Ensemble"]["Table"][:2] == ["door", "drawer"]
    assert groups["My Presets"] == {}

    bpy.ops.partdistill.apply_preset(group="ShapeNetPart", name="Airplane")
    assert [p.name for p in ui.parts] == ["body", "wing", "tail", "engine"]
    assert ui.category == "airplane"
    bpy.ops.partdistill.save_preset(name="Plane")
    assert presets.load_user_presets() == {"Plane": ["body", "wing", "tail", "engine"]}
    assert str(presets.user_presets_path()).startswith(str(tmp_path))
    bpy.ops.partdistill.delete_preset(name="Plane")
    assert presets.load_user_presets() == {}
    with pytest.raises(RuntimeError, match="no preset 'Stool'"):
        bpy.ops.partdistill.apply_preset(group="Built-in", name="Stool")


def test_panels_are_registered_and_their_data_functions_work(ui):
    for name in ("PARTDISTILL_PT_main", "PARTDISTILL_PT_advanced", "PARTDISTILL_PT_results"):
        assert getattr(bpy.types, name).bl_category == "PartDistill"
    assert panels.object_summary(bpy.context) == "Select a mesh object"
    obj = chair_scene(ui)
    faces = len(obj.data.polygons)
    assert panels.object_summary(bpy.context) == f"Chair: {faces:,} faces"
    assert panels.PARTDISTILL_PT_advanced.FIELDS  # every advanced field exists on settings
    for name in panels.PARTDISTILL_PT_advanced.FIELDS:
        assert name in ui.bl_rna.properties


def test_draw_code_uses_real_icons_and_layout_functions():
    # draw() itself needs a window; what it would fail on here is a wrong icon or call name.
    icons = {
        e.identifier
        for e in bpy.types.UILayout.bl_rna.functions["label"].parameters["icon"].enum_items
    }
    source = "".join(
        pathlib.Path(m.__file__).read_text()
        for m in (panels, part_list, presets, preferences, model_manager)
    )
    used = set(re.findall(r'icon="([A-Z_0-9]+)"', source))
    assert used and used <= icons, used - icons
    functions = bpy.types.UILayout.bl_rna.functions
    assert {"factor", "type", "text"} <= {p.identifier for p in functions["progress"].parameters}
    assert "ui_units_x" in bpy.types.UILayout.bl_rna.properties


def test_panels_draw_without_and_with_a_result(ui):
    # Nothing selected: the panel says so, and still offers the part list and settings.
    main = draw(panels.PARTDISTILL_PT_main, bpy.context)
    assert main.labels()[0] == "Select a mesh object"
    assert ("list", "parts") in main.drawn
    assert ("menu", "PARTDISTILL_MT_presets", None) in main.drawn
    header = draw(panels.PARTDISTILL_PT_main, bpy.context, "draw_header_preset")
    assert header.operators() == [("preferences.addon_show", {"module": addon.ADDON_PACKAGE})]

    obj = chair_scene(ui)
    main = draw(panels.PARTDISTILL_PT_main, bpy.context)
    assert main.labels()[0] == f"Chair: {len(obj.data.polygons):,} faces"
    assert [name for name, _ in main.operators()][-1] == "partdistill.segment_parts"
    assert "one_student" not in main.props()  # only with several meshes selected
    advanced = draw(panels.PARTDISTILL_PT_advanced, bpy.context)
    assert advanced.props() == list(panels.PARTDISTILL_PT_advanced.FIELDS)
    assert draw(panels.PARTDISTILL_PT_results, bpy.context).labels() == [
        "No segmentation on the active object"
    ]

    bpy.ops.partdistill.segment_parts()
    shown = draw(panels.PARTDISTILL_PT_results, bpy.context)
    rows = results.result_rows(obj)
    for row in rows:
        assert row.name in shown.labels()
        assert f"{row.face_count:,} · {row.mean_confidence:.0%}" in shown.labels()
        for action in ("select_part", "hide_part", "isolate_part"):
            assert (f"partdistill.{action}", {"index": row.index}) in shown.operators()
    labelled = results.read_segmentation(obj)["face_labels"] >= 0  # direct mode leaves gaps
    assert sum(r.face_count for r in rows) == labelled.sum() > 0
    assert "simulated, 10 views" in shown.labels()  # how the result was made
    assert ("partdistill.clear_segmentation", {"keep_corrections": False}) in shown.operators()

    # In edit mode (after Select) the face attributes cannot be read: the rows read before.
    bpy.ops.partdistill.select_part(index=0)
    assert obj.mode == "EDIT"
    in_edit_mode = draw(panels.PARTDISTILL_PT_results, bpy.context)
    assert in_edit_mode.labels() == shown.labels()


def test_panel_draws_progress_and_one_student_choice(ui):
    obj = chair_scene(ui)
    second = obj.copy()
    second.data = obj.data.copy()
    bpy.context.scene.collection.objects.link(second)
    second.select_set(True)
    main = draw(panels.PARTDISTILL_PT_main, bpy.context)
    assert main.labels()[0] == f"Chair: {len(obj.data.polygons):,} faces (+1 selected)"
    assert "one_student" in main.props()
    ui.progress, ui.progress_text = 0.4, "Training the student"
    layout = CheckedLayout()
    panels.draw_progress(layout, ui)
    assert ("progress", "Training the student") in layout.drawn
    assert layout.operators() == [("partdistill.cancel", {})]


def test_checked_layout_refuses_what_blender_would(ui):
    layout = CheckedLayout()
    with pytest.raises(AttributeError, match="no property 'nonsense'"):
        layout.prop(ui, "nonsense")
    with pytest.raises(TypeError, match="no keyword 'txt'"):
        layout.label(txt="x")
    with pytest.raises(ValueError, match="no icon 'NOT_AN_ICON'"):
        layout.label(text="x", icon="NOT_AN_ICON")
    with pytest.raises(AssertionError, match="no operator 'partdistill.nonsense'"):
        layout.operator("partdistill.nonsense")
    with pytest.raises(AttributeError, match="has no property 'indx'"):
        layout.operator("partdistill.select_part").indx = 1
    with pytest.raises(AttributeError, match="no settable property 'ui_unit_x'"):
        layout.ui_unit_x = 2


def test_preferences_feed_the_config(ui, monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the fallback user directory
    assert preferences.PARTDISTILL_AP_preferences.bl_idname == "partdistill"
    assert addon.get_preferences() is None  # not enabled as an add-on yet
    entry = bpy.context.preferences.addons.new()
    entry.module = "partdistill"
    try:
        prefs = addon.get_preferences()
        assert prefs.model == PartDistillConfig().model
        prefs.model, prefs.device, prefs.allow_downloads = "/models/clip", "cpu", True
        config = properties.config_from_settings(ui, prefs)
        assert (config.model, config.device) == ("/models/clip", "cpu")
        # Downloads need Blender's online access too, which is off in background mode.
        assert config.allow_downloads is bpy.app.online_access is False
        assert config.cache_dir == str(tmp_path / "partdistill" / "cache")
        ui.device = "auto"  # the panel's choice wins over the preferences
        assert properties.config_from_settings(ui, prefs).device == "auto"
    finally:
        bpy.context.preferences.addons.remove(entry)
