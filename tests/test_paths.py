"""Server paths: links inside the allowed folders work, and what is opened is checked again,
so a folder swapped for a link after the check cannot lead outside."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bogv import sources
from bogv.errors import PathForbidden


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    (allowed / "real").mkdir(parents=True)
    outside.mkdir()
    (allowed / "real" / "a.jpg").write_bytes(b"inside")
    (outside / "a.jpg").write_bytes(b"secret")
    return allowed, outside


def test_links_that_stay_inside_are_followed(folders: tuple[Path, Path]) -> None:
    allowed, _ = folders
    (allowed / "alias").symlink_to(allowed / "real")
    (allowed / "b.jpg").symlink_to(allowed / "real" / "a.jpg")
    for path in (allowed / "alias" / "a.jpg", allowed / "b.jpg"):
        assert sources.read_path(str(path), roots=[allowed], limit=100) == b"inside"


def test_a_folder_swapped_for_a_link_after_the_check_is_caught(
        folders: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Plays the race: the check sees a plain folder, the open meets a link to outside."""
    allowed, outside = folders
    (allowed / "swapped").symlink_to(outside)
    checked_view = str(allowed / "swapped" / "a.jpg")
    monkeypatch.setattr(sources.os.path, "realpath",
                        lambda p: checked_view if str(p) == checked_view else os.fspath(p))
    with pytest.raises(PathForbidden, match="outside the allowed folders"):
        sources.read_path(checked_view, roots=[allowed], limit=100)
