"""One holder at a time among processes sharing a folder (``bogv.folder_lock``)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bogv import folder_lock
from bogv.folder_lock import FolderLock

HOLDER = """
import sys
from pathlib import Path
from bogv.folder_lock import FolderLock
lock = FolderLock(Path(sys.argv[1]), sys.argv[2])
with lock.held():
    print("held", flush=True)
    lock.note(sys.stdin.readline().strip())
    print("noted", flush=True)
    sys.stdin.readline()
"""


def hold(folder: Path, name: str = "x.lock") -> subprocess.Popen[str]:
    """Another process holding ``folder / name`` once it prints "held": the next line sent
    is its note ("noted"), the one after lets go."""
    return subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), name],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def tell(holder: subprocess.Popen[str], line: str) -> None:
    assert holder.stdin is not None
    holder.stdin.write(f"{line}\n")
    holder.stdin.flush()


def test_another_process_holding_the_lock_keeps_this_one_out(tmp_path: Path) -> None:
    holder = hold(tmp_path)
    assert holder.stdout is not None and holder.stdin is not None
    try:
        assert holder.stdout.readline() == "held\n"
        entered = threading.Event()

        def take() -> None:
            with FolderLock(tmp_path, "x.lock").held():
                entered.set()

        with FolderLock(tmp_path, "x.lock").held(wait=False) as got:
            assert not got
        taker = threading.Thread(target=take)
        taker.start()
        assert not entered.wait(0.5)
        tell(holder, "")
        tell(holder, "go on")
        assert entered.wait(10)  # as soon as the holder lets go
        taker.join()
    finally:
        holder.kill()
        holder.wait()


def test_threads_of_one_process_take_it_in_turn(tmp_path: Path) -> None:
    """POSIX locks belong to a process: its threads are kept apart by the lock per file."""
    inside, overlapped = [0], []

    def take() -> None:
        with FolderLock(tmp_path / "new", "x.lock").held():  # made on first use
            inside[0] += 1
            overlapped.append(inside[0] > 1)
            threading.Event().wait(0.05)
            inside[0] -= 1

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlapped == [False] * 4
    lock = FolderLock(tmp_path / "new", "x.lock")
    with lock.held(wait=False) as got, FolderLock(tmp_path / "new", "x.lock").held(
            wait=False) as again:
        assert (got, again) == (True, False)
    with lock.held(wait=False) as got:
        assert got


def test_a_folder_that_cannot_lock_is_used_unlocked_and_said(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An NFS mount without its lock manager answers ENOLCK: decisions go on as before the
    lock, ordered within this process only, and the log says so."""
    def no_locks(fd: int, how: int) -> None:
        raise OSError(37, "No locks available")

    monkeypatch.setattr(folder_lock.fcntl, "lockf", no_locks)
    with FolderLock(tmp_path, "x.lock").held():
        pass
    assert "other processes sharing the folder are not kept out" in caplog.text


def test_another_process_holding_the_lock_is_told_with_its_note(tmp_path: Path) -> None:
    """A replica's page asks how far another replica's scan is: whether another process
    holds the lock, and what it last noted beside it."""
    lock = FolderLock(tmp_path, "x.lock")
    assert lock.holder() is None  # never taken
    holder = hold(tmp_path)
    assert holder.stdout is not None
    try:
        assert holder.stdout.readline() == "held\n"
        assert lock.holder() == ""  # held, nothing noted yet
        tell(holder, "512 100000 1765130000.000")
        assert holder.stdout.readline() == "noted\n"
        assert lock.holder() == "512 100000 1765130000.000"
        tell(holder, "done")
        assert holder.wait(10) == 0
        assert lock.holder() is None
        assert list(tmp_path.iterdir()) == [tmp_path / "x.lock"]  # the note went with it
    finally:
        holder.kill()
        holder.wait()


def test_a_thread_holding_the_lock_is_told_with_its_note(tmp_path: Path) -> None:
    """Another app in this process holds it (replicas as the tests run them)."""
    lock, inside, leave = FolderLock(tmp_path, "x.lock"), threading.Event(), threading.Event()

    def hold() -> None:
        with FolderLock(tmp_path, "x.lock").held() as got:
            assert got
            FolderLock(tmp_path, "x.lock").note("1 2 3")
            inside.set()
            assert leave.wait(10)

    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(hold)
        assert inside.wait(10)
        assert lock.holder() == "1 2 3"
        leave.set()
        held.result()
    assert lock.holder() is None


def test_a_probe_never_turns_a_holder_away(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The page asks every second whether another replica scans: a scan started at that
    instant, here or there, must still start. The probe takes no lock (another process
    would find it), and one in this process only waits a moment for the probe."""
    with FolderLock(tmp_path, "x.lock").held():  # the file exists
        pass
    probing, go_on, taken = threading.Event(), threading.Event(), []
    test = os.lockf

    def slow_test(fd: int, command: int, length: int) -> None:
        probing.set()
        assert go_on.wait(10)
        test(fd, command, length)

    def no_taking(fd: int, how: int) -> None:
        taken.append(threading.current_thread())

    monkeypatch.setattr(folder_lock.os, "lockf", slow_test)
    monkeypatch.setattr(folder_lock.fcntl, "lockf", no_taking)
    with ThreadPoolExecutor(1) as pool:
        probe = pool.submit(FolderLock(tmp_path, "x.lock").holder)
        assert probing.wait(10)
        threading.Timer(0.02, go_on.set).start()
        with FolderLock(tmp_path, "x.lock").held(wait=False) as got:
            assert got
        assert probe.result() is None
    assert taken == [threading.current_thread()]  # the holder's, not the probe's
