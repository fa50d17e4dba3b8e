"""Record files: what is saved is read back whole, a missing or unreadable file is none, and
a delete removes every file of its records and nothing else."""

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


def test_a_delete_removes_every_file_of_its_records_and_only_theirs(tmp_path: Path) -> None:
    files = Sidecar(tmp_path)
    # 263 shares 7's folder (by its low byte), 71 and 2630 its first digits
    for id_ in (7, 263, 71, 2630, 9):
        files.save(id_, "jpg", b"t")
        files.save(id_, "orb320-v1.kp", b"k")
    files.save(7, "orb250-v0.kp", b"old")  # a former version's keypoints
    files.save(7, "stars1", b"s")
    files.delete([7, 263, 12345])  # 12345: a record that never had files
    left = sorted(p.name for p in tmp_path.rglob("*"))
    assert left == sorted(["07", "09", "46", "47", "71.jpg", "71.orb320-v1.kp", "2630.jpg",
                           "2630.orb320-v1.kp", "9.jpg", "9.orb320-v1.kp"])
