"""One way to write a file so that nobody sees half of it."""

from __future__ import annotations

import pytest
from partdistill.backend.atomic_write import write_atomically


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "labels.json"
    path.write_text("old")

    def fail(temporary):
        temporary.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomically(path, fail)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["labels.json"]


def test_the_writer_gets_a_temporary_with_the_same_suffix_in_a_new_folder(tmp_path):
    path = tmp_path / "out" / "preview.png"
    seen = []

    def write(temporary):
        seen.append(temporary)
        temporary.write_bytes(b"png")

    write_atomically(path, write)
    assert path.read_bytes() == b"png"
    assert seen[0].suffix == ".png" and seen[0].parent == path.parent and seen[0] != path
    assert [p.name for p in path.parent.iterdir()] == ["preview.png"]
