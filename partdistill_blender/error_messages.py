"""What a user reads when a run fails, in the panel's reports and the batch's log."""

from __future__ import annotations

from ..backend.contracts import TeacherUnavailable

# What to do about missing weights in Blender (the backend's remedy speaks of the command line).
MODEL_REMEDY = (
    "Set Model in the add-on's preferences (the gear of the PartDistill panel) to a Hugging "
    "Face id or to a folder holding a saved model, or turn on Allow Downloads there (Blender's "
    "online access must be on too); or pick another teacher."
)


def error_message(exc: BaseException) -> str:
    """What a user reads when a run fails: the exception's own words, else its type. A missing
    teacher's command-line remedy is replaced by what to do in Blender."""
    if isinstance(exc, TeacherUnavailable) and exc.remedy:
        return f"{exc.problem} {MODEL_REMEDY}"
    text = str(exc).strip()
    return text if text else type(exc).__name__
