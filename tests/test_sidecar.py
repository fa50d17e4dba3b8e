"""Record files: what is saved is read back whole, and a missing or unreadable file is none."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bogv.sidecar import _CHUNK, Sidecar


def test_a_file_is_read_back_whole_however_many_reads_it_takes(tmp_path: Path) -> None:
    files = Sidecar(tmp_path)
    large, small = os.urandom(3 * _CHUNK + 17), b"kp"
    files.save(1000, "kp", large)
    files.save(7, "jpg", small)
    files.save(7, "kp", b"")
    assert files.read(1000, "kp") == large
    assert files.read(7, "jpg") == small and files.read(7, "kp") == b""


def test_a_missing_or_unreadable_file_reads_as_none(tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    files = Sidecar(tmp_path)
    assert files.read(5, "kp") is None and not caplog.records
    files.path(6, "kp").mkdir(parents=True)  # a folder where the file should be
    assert files.read(6, "kp") is None
    assert "kp of record 6 not read" in caplog.text
