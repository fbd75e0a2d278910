"""Writing a file so that a reader never sees half of it, for both halves of the extension."""

from __future__ import annotations

import os
import pathlib


def write_atomically(path: os.PathLike | str, write) -> None:
    """Call ``write(temporary)`` with a path beside ``path``, then move the file into place.

    A failure (an exception, a writer that wrote nothing) leaves ``path`` as it was and no
    temporary file behind. The temporary name keeps ``path``'s suffix, because some writers
    (Blender's ``render.render(write_still=True)``) append the format's extension otherwise.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        write(temporary)
        os.replace(temporary, path)
    except OSError as exc:
        if exc.errno is None:
            raise
        # Name the file the user asked for (a full disk's error names none, or the temporary).
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    finally:
        if temporary.exists():
            temporary.unlink()
