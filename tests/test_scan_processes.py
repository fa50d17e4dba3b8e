"""The duplicate scan's checks in worker processes (``bogv.scan_processes``), and the
groups anchored in them (``bogv.anchoring.in_processes``)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

from bogv import anchoring, duplicates, scan_processes
from bogv.config import Settings
from bogv.copy_checks import Seen
from bogv.duplicates import Duplicates
from bogv.errors import BogvError
from bogv.scan_processes import ScanProcesses
from bogv.service import Service
from bogv.store import Candidate
from bogv.verdicts import pair

from .images import edited_copy, encode, photo
from .test_duplicates import add_files, names, two_groups


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


def test_groups_anchored_in_processes_are_the_groups_threads_anchor(
        service: Service, photos: dict[str, bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``processes`` set and ``ANCHORED_APART`` images or more to anchor, worker
    processes anchor the components: the groups are those this process's threads make, and
    the progress reaches every image."""
    ids = two_groups(service, service.settings.allowed_roots[0], photos)
    scan = Duplicates(service)
    scan.scan()
    # A false pair joining the two components: anchoring checks the pairs the scan did not.
    scan.verdicts.save([pair(ids["coffee"], ids["chelsea"], "copy", 0.9, "copy")])
    saved: dict[str, list[tuple[str, str]]] = {}

    def saving(dups: Duplicates, name: str) -> Duplicates:
        """``dups``, keeping the pairs it would save in ``saved[name]``, not saving them:
        each way anchors from the scan's pairs alone."""
        monkeypatch.setattr(dups.verdicts, "save", lambda pairs: saved.setdefault(
            name, []).extend(sorted((p.key, p.verdict) for p in pairs)))
        return dups

    threads = saving(Duplicates(service), "threads").groups()
    entered: list[int] = []
    started = anchoring.in_processes

    @contextmanager
    def spy(processes: int, settings: Settings) -> Iterator[ProcessPoolExecutor]:
        entered.append(processes)
        with started(processes, settings) as pool:
            yield pool

    monkeypatch.setattr(duplicates, "in_processes", spy)
    monkeypatch.setattr(duplicates, "ANCHORED_APART", 6)
    few = saving(Duplicates(service, processes=2), "few")
    few.kept.clear()
    assert few.groups() == threads and entered == []  # 5 images: threads
    monkeypatch.setattr(duplicates, "ANCHORED_APART", 5)
    apart = saving(Duplicates(service, processes=2), "processes")
    apart.kept.clear()
    seen: list[tuple[int, int]] = []
    assert apart.groups(on_progress=lambda done, total: seen.append((done, total))) == threads
    assert entered == [2] and seen[-1] == (5, 5)
    assert saved["processes"] == saved["threads"] != []  # the pairs anchoring checked
    assert apart.anchoring._sizes == {}  # nothing anchored in this process
    assert threads


def test_a_worker_anchoring_the_groups_that_dies_ends_them_with_an_error(
        service: Service) -> None:
    """Never a bare ``BrokenProcessPool`` (a 500 in the API): the error says what ended."""
    with (pytest.raises(BogvError, match="a worker process anchoring the groups ended"),
          anchoring.in_processes(1, service.settings) as pool):
        pool.submit(os._exit, 1).result()
