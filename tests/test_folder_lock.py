"""One holder at a time among processes sharing a folder (``bogv.folder_lock``)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bogv import folder_lock
from bogv.folder_lock import FolderLock

HOLDER = """
import sys
from pathlib import Path
from bogv.folder_lock import FolderLock
with FolderLock(Path(sys.argv[1]), "x.lock").held():
    print("held", flush=True)
    sys.stdin.readline()
"""


def test_another_process_holding_the_lock_keeps_this_one_out(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
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
        holder.stdin.write("go on\n")
        holder.stdin.flush()
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
