"""The shared file helpers: an atomic write that leaves nothing behind, and paths shown relative to a root."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from digest.fsutil import atomic_write, rel_path


def test_atomic_write_replaces_the_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_bytes(b"old")
    atomic_write(path, b"new")
    assert path.read_bytes() == b"new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["page.html"]


def test_a_failed_atomic_write_keeps_the_old_file_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "page.html"
    path.write_bytes(b"old")

    def fail(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="No space left"):
        atomic_write(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["page.html"]


def test_rel_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert rel_path(tmp_path / "items" / "a.md", tmp_path) == "items/a.md"
    monkeypatch.chdir(tmp_path)
    assert rel_path(Path("out/2021-03"), tmp_path) == "out/2021-03"  # a relative path, resolved
    assert rel_path(Path("/elsewhere/a.md"), tmp_path) == "/elsewhere/a.md"
    (tmp_path / "real").mkdir()
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "items").symlink_to(tmp_path / "real")
    # a folder linked from elsewhere is still shown where the workspace has it
    assert rel_path(tmp_path / "ws" / "items" / "a.md", tmp_path / "ws") == "items/a.md"
