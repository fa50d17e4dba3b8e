"""The duplicate scan's checks in worker processes (``bogv.scan_processes``)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from bogv import duplicates, scan_processes
from bogv.copy_checks import Seen
from bogv.duplicates import Duplicates
from bogv.errors import BogvError
from bogv.scan_processes import ScanProcesses
from bogv.service import Service
from bogv.store import Candidate
from bogv.verdicts import pair

from .images import edited_copy, encode, photo
from .test_duplicates import add_files, names


def test_a_scan_in_processes_finds_the_copies_threads_find(
        service: Service, photos: dict[str, bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    """Two worker processes, pages of three images in blocks of one: each block goes to
    the worker free, with what the other learned since."""
    images = dict(photos)
    images["coffee-small"] = edited_copy(photo("coffee"))
    images["camera-q30"] = encode(photo("camera"), quality=30)
    ids = add_files(service, service.settings.allowed_roots[0], images)
    monkeypatch.setattr(duplicates, "BATCH", 3)
    monkeypatch.setattr(scan_processes, "BLOCK", 1)
    dups = Duplicates(service, processes=2)
    seen: list[tuple[int, int]] = []
    report = dups.scan(lambda done, total: seen.append((done, total)))
    assert report.scanned == len(images) and seen[-1] == (len(images), len(images))
    assert report.copies == 2 and report.checked > 0
    assert sorted(names(dups.groups(), ids)) == [["camera", "camera-q30"],
                                                 ["coffee", "coffee-small"]]


def test_processes_learn_what_the_others_checked() -> None:
    """Each process keeps its own ``Seen``; told what the others read and found (with its
    next block), an image on a later page skips the keypoints another process matched with
    its own and every check of a pair another found a copy, and copies found in two
    processes link."""
    one, two = Seen(dismissed=set()), Seen(dismissed=set())
    for seen in (one, two):
        seen.page([1, 2])
    one.start(1, [3, 5])
    one.read(1, 3)
    one.found(1, [pair(1, 5, "copy")])
    two.start(2, [4, 5])
    two.found(2, [pair(2, 5, "copy")])
    told = {id(one): two.learned, id(two): one.learned}
    for seen in (one, two):
        seen.done([1, 2])
        assert seen.learned == []
        seen.page([3, 4, 5])
        seen.learn(told[id(seen)])
        assert seen.learned == []  # told, not learned here: not told again
    assert two.start(3, [1]) == ({1}, set())
    assert one.start(5, [1, 2]) == two.start(5, [1, 2]) == (set(), {1, 2})
    assert one.joined(1, 2) and two.joined(1, 2)


def test_a_worker_that_fails_or_dies_ends_the_scan_with_an_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never a scan waiting for ever: the error a worker met, or its end, is the scan's
    (what it saved page by page stays, and the next scan goes on from there)."""
    monkeypatch.setattr(scan_processes, "BLOCK", 1)  # a block for each worker
    with ScanProcesses(tmp_path, [], set(), 2) as workers:
        assert workers.check([1, 2], [[], []]) == [([], 0), ([], 0)]  # nothing stored
        broken: list[list[Candidate]] = [[None], [None]]  # type: ignore[list-item]
        with pytest.raises(BogvError, match="a scan worker process failed: AttributeError"):
            workers.check([1, 2], broken)
    with ScanProcesses(tmp_path, [], set(), 2) as workers:
        worker = workers._workers[1][0]
        assert worker.pid is not None
        os.kill(worker.pid, signal.SIGKILL)
        worker.join(10)
        with pytest.raises(BogvError, match=r"a scan worker process (ended|is gone)"):
            workers.check([1, 2], [[], []])
