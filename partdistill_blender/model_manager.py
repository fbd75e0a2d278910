"""The Models box: each teacher's weights, installed or not, with Download (progress, Cancel,
resume), Remove, Use Folder… and Verify; and why Segment Parts is grey while the chosen
teacher's weights are absent. Drawn in the add-on's preferences, and in the sidebar whenever
the chosen model is missing. The files are handled by ``backend.teachers.model_store`` and
``hub_download``; the downloads run in ``model_downloads``' threads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import bpy
from bpy.props import StringProperty

from ..backend.config import PartDistillConfig
from ..backend.teachers.hub_download import format_bytes, format_seconds
from ..backend.teachers.model_store import (
    CATALOG,
    catalog_entry,
    installed_location,
    installed_model,
    is_hub_id,
    partial_bytes,
    remove_model,
    verify_model,
)
from ..backend.teachers.models import (
    DEFAULT_MODELS,
    OPEN_CLIP_PREFIX,
    hub_cache_dir,
    model_for_teacher,
)
from . import model_downloads
from .addon import get_preferences
from .properties import DEFAULTS

ONLINE_OFF = (
    "Blender's online access is off: nothing can be downloaded. Turn on Allow Online Access "
    "(here, or Preferences > System > Network), then press Download"
)
_verified: dict[str, tuple[bool, str]] = {}  # model -> (whole, what Verify said)


@dataclass(frozen=True)
class ChosenModel:
    name: str  # hub id or folder
    teacher: str
    title: str


def cache_dir(context=None) -> str:
    """The hub cache the add-on reads and fills (the preferences', else the default one)."""
    prefs = get_preferences(context)
    if prefs is not None:
        return prefs.effective_cache_dir()
    return str(hub_cache_dir(PartDistillConfig()))


def chosen_model(context) -> ChosenModel | None:
    """The model the panel's teacher will load, or None for teachers that need no weights."""
    teacher = context.scene.partdistill.teacher
    if teacher not in DEFAULT_MODELS:
        return None
    prefs = get_preferences(context)
    model = (prefs.model.strip() if prefs is not None else "") or DEFAULTS["model"]
    name = model_for_teacher(teacher, PartDistillConfig(model=model))
    if name.startswith(OPEN_CLIP_PREFIX):
        return None  # open_clip fetches and caches its own weights
    entry = catalog_entry(name)
    return ChosenModel(name, teacher, entry.title if entry else _short_name(name))


def _short_name(name: str) -> str:
    """What a narrow sidebar can show of a hub id or folder: its last part."""
    return name.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1] or name


def missing_model_reason(context) -> str | None:
    """Why Segment Parts cannot run yet (the chosen weights are absent), or None."""
    chosen = chosen_model(context)
    if chosen is None or installed_location(chosen.name, cache_dir(context)) is not None:
        return None
    if is_hub_id(chosen.name):
        named = chosen.title if chosen.title == chosen.name else f"{chosen.title} ({chosen.name})"
        return f"The weights of {named} are not installed: press Download in the Models box"
    if os.path.isdir(chosen.name):
        what = "holds no config.json with weights"
    else:
        what = "does not exist"
    return (
        f"The model folder {chosen.name} {what}: use Models > Use Folder…, or set Model in the "
        "add-on's preferences"
    )


def _prefs_or_error(operator):
    prefs = get_preferences()
    if prefs is None:
        operator.report({"ERROR"}, "PartDistill is not enabled as an add-on")
    return prefs


class PARTDISTILL_OT_model_download(bpy.types.Operator):
    """Download this model's weights in the background (resumes an interrupted download)"""

    bl_idname = "partdistill.model_download"
    bl_label = "Download"
    bl_options = {"INTERNAL"}

    repo_id: StringProperty()

    def execute(self, context):
        if not bpy.app.online_access:
            self.report({"ERROR"}, ONLINE_OFF)
            return {"CANCELLED"}
        model_downloads.start_download(self.repo_id, cache_dir(context))
        _verified.pop(self.repo_id, None)
        return {"FINISHED"}


class PARTDISTILL_OT_model_cancel(bpy.types.Operator):
    """Stop this download; what was fetched is kept, and Download resumes from it"""

    bl_idname = "partdistill.model_cancel"
    bl_label = "Cancel Download"
    bl_options = {"INTERNAL"}

    repo_id: StringProperty()

    def execute(self, context):
        if not model_downloads.cancel_download(self.repo_id):
            self.report({"WARNING"}, f"No download of {self.repo_id} is running")
            return {"CANCELLED"}
        return {"FINISHED"}


class PARTDISTILL_OT_model_remove(bpy.types.Operator):
    """Delete this model's weights from the cache folder (partial downloads too)"""

    bl_idname = "partdistill.model_remove"
    bl_label = "Remove"
    bl_options = {"INTERNAL"}

    repo_id: StringProperty()

    def invoke(self, context, event):
        return context.window_manager.invoke_confirm(self, event)

    def execute(self, context):
        job = model_downloads.job_for(self.repo_id)
        if job is not None and job.running:
            self.report({"ERROR"}, f"{self.repo_id} is downloading: cancel it first")
            return {"CANCELLED"}
        freed = remove_model(self.repo_id, cache_dir(context))
        model_downloads.forget(self.repo_id)
        _verified.pop(self.repo_id, None)
        self.report({"INFO"}, f"Removed {self.repo_id}: {format_bytes(freed)} freed")
        return {"FINISHED"}


class PARTDISTILL_OT_model_use_folder(bpy.types.Operator):
    """Use a folder that holds a saved model (config.json and weights) as the teacher's model"""

    bl_idname = "partdistill.model_use_folder"
    bl_label = "Use Folder…"
    bl_options = {"INTERNAL"}

    directory: StringProperty(subtype="DIR_PATH")
    teacher: StringProperty(default="clip")

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        prefs = _prefs_or_error(self)
        if prefs is None:
            return {"CANCELLED"}
        folder = bpy.path.abspath(self.directory).rstrip("/\\") or self.directory
        problems = verify_model(folder, "", self.teacher)
        if problems:
            self.report({"ERROR"}, f"{folder} cannot be used: {'; '.join(problems)}")
            return {"CANCELLED"}
        prefs.model = folder
        _verified[folder] = (True, "whole")
        self.report({"INFO"}, f"The {self.teacher} teacher now uses {folder}")
        return {"FINISHED"}


class PARTDISTILL_OT_model_verify(bpy.types.Operator):
    """Check that this model is complete and of the right kind (config, weights, the Hub's
    hashes of each file)"""

    bl_idname = "partdistill.model_verify"
    bl_label = "Verify"
    bl_options = {"INTERNAL"}

    name: StringProperty()
    teacher: StringProperty(default="clip")

    def execute(self, context):
        problems = verify_model(self.name, cache_dir(context), self.teacher)
        if problems:
            text = "; ".join(problems)
            _verified[self.name] = (False, text)
            self.report({"ERROR"}, f"{self.name}: {text}")
            return {"CANCELLED"}
        _verified[self.name] = (True, "whole")
        self.report({"INFO"}, f"{self.name} is complete and whole")
        return {"FINISHED"}


def _rows(context) -> list[ChosenModel]:
    """The catalogue, plus the model of the preferences when it is not one of it."""
    rows = [ChosenModel(m.repo_id, m.teacher, m.title) for m in CATALOG]
    chosen = chosen_model(context)
    if chosen is not None and catalog_entry(chosen.name) is None:
        rows.insert(0, chosen)
    return rows


def draw_download_progress(layout, job) -> None:
    """Bytes and speed on a line, then the bar (share done, time left) with Cancel: split so
    that a narrow sidebar cuts neither."""
    progress = job.progress
    if progress is not None:
        text = f"{format_bytes(progress.done_bytes)} of {format_bytes(progress.total_bytes)}"
        if progress.bytes_per_s > 0:
            text += f" · {format_bytes(progress.bytes_per_s)}/s"
        layout.label(text=text, icon="IMPORT")
    else:
        layout.label(text="Connecting…", icon="IMPORT")
    row = layout.row(align=True)
    factor = progress.fraction if progress is not None else 0.0
    if job.cancel.is_set():
        row.progress(factor=factor, type="BAR", text="Cancelling…")
        return
    text = f"{factor:.0%}"
    if progress is not None and progress.seconds_left is not None:
        text += f" · {format_seconds(progress.seconds_left)} left"
    row.progress(factor=factor, type="BAR", text=text)
    row.operator("partdistill.model_cancel", text="", icon="CANCEL").repo_id = job.repo_id


def draw_model_row(layout, cache: str, row: ChosenModel, chosen: bool) -> None:
    """One model's box: its state (installed, downloading, or not) and its buttons; ``cache``
    is the hub cache folder."""
    box = layout.box()
    header = box.row()
    header.label(text=row.title + ("  (chosen)" if chosen else ""),
                 icon="CHECKBOX_HLT" if chosen else "BLANK1")  # fmt: skip
    found = installed_model(row.name, cache)
    job = model_downloads.job_for(row.name)
    is_hub = is_hub_id(row.name)
    downloading = job is not None and job.running
    # What an interrupted download left, which Download resumes and Remove deletes.
    kept = partial_bytes(row.name, cache) if is_hub and found is None and not downloading else 0
    if found is not None:
        where = "cache" if found.in_cache else "folder"
        box.label(text=f"Installed, {format_bytes(found.size_bytes)} in the {where}: "
                  f"{found.location}", icon="CHECKMARK")  # fmt: skip
    elif downloading:
        draw_download_progress(box, job)
    else:
        # Short lines: the sidebar is narrow.
        entry = catalog_entry(row.name)
        if not is_hub:
            found_folder = os.path.isdir(row.name)
            box.label(text="No weights in the folder" if found_folder else "Folder not found",
                      icon="ERROR")  # fmt: skip
        elif entry is not None:
            box.label(text=f"Not installed: {format_bytes(entry.download_bytes)}", icon="ERROR")
        else:
            box.label(text="Not installed", icon="ERROR")
        if kept:
            box.label(text=f"{format_bytes(kept)} fetched: Download resumes", icon="INFO")
    if not downloading and job is not None and job.state in ("failed", "cancelled"):
        box.label(text=job.message, icon="ERROR" if job.state == "failed" else "INFO")
    verdict = _verified.get(row.name)
    if verdict is not None and not verdict[0]:
        box.label(text=f"Verify: {verdict[1]}", icon="ERROR")
    elif verdict is not None:
        box.label(text="Verify: complete and whole", icon="CHECKMARK")

    buttons = box.row(align=True)
    if is_hub and found is None and not downloading:
        sub = buttons.row(align=True)
        sub.enabled = bool(bpy.app.online_access)
        sub.operator("partdistill.model_download", icon="IMPORT").repo_id = row.name
    if found is not None:
        op = buttons.operator("partdistill.model_verify", icon="CHECKMARK")
        op.name, op.teacher = row.name, row.teacher
    if is_hub and not downloading and (found is not None or kept):
        buttons.operator("partdistill.model_remove", icon="TRASH").repo_id = row.name
    buttons.operator("partdistill.model_use_folder", icon="FILE_FOLDER").teacher = row.teacher


def next_step(context, chosen: ChosenModel) -> str:
    """What to press so that Segment Parts can run (one short line, for the sidebar)."""
    if not is_hub_id(chosen.name):
        return "Use Folder… to pick it"
    job = model_downloads.job_for(chosen.name)
    if job is not None and job.running:
        return "Segment Parts waits for it"
    if not bpy.app.online_access:
        return "Allow Online Access, then Download"
    return "Segment Parts needs it: press Download"


def draw_models_box(layout, context, only_chosen: bool = False) -> None:
    """The Models box: every built-in model (or only the chosen one, when its weights are
    absent, with what to press) with its state and buttons."""
    col = layout.column()
    chosen = chosen_model(context)
    if only_chosen and chosen is not None:
        col.label(text=next_step(context, chosen), icon="INFO")
    needs_online = not only_chosen or (chosen is not None and is_hub_id(chosen.name))
    if needs_online and not bpy.app.online_access:
        col.label(text="Online access is off", icon="INFO")
        col.prop(context.preferences.system, "use_online_access", text="Allow Online Access")
    cache = cache_dir(context)
    for row in _rows(context):
        if only_chosen and (chosen is None or row.name != chosen.name):
            continue
        draw_model_row(col, cache, row, chosen is not None and row.name == chosen.name)


CLASSES = (
    PARTDISTILL_OT_model_download,
    PARTDISTILL_OT_model_cancel,
    PARTDISTILL_OT_model_remove,
    PARTDISTILL_OT_model_use_folder,
    PARTDISTILL_OT_model_verify,
)
