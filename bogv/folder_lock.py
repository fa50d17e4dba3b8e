"""One holder at a time among the processes sharing a folder, and among each one's threads.

Two "Keep only this" crossing each other, one keeping the original and deleting the copy,
the other keeping the copy and deleting the original, must not both find the image they
keep still stored: every copy of the picture would be gone. One process orders its own
decisions with a lock, but replicas on one Milvus server are processes, possibly on several
machines, and Milvus has no compare-and-set. What they do share is ``RECORD_DIR``, so
``Duplicates`` takes this lock on a file there.

A POSIX record lock (``fcntl.lockf``), unlike the import's lease (``bogv.lease``, a file
created with ``O_EXCL`` and kept alive by beats): a decision holds it for a second or, to
delete thousands of copies, a minute or two; others wait for it; and the kernel, or NFS's
lock manager, releases it when its holder dies, so a crash leaves nothing to take over.
POSIX locks belong to a process, and closing *any* of its descriptors of the file drops
them, so a lock per file orders the process's own threads first (two apps in one process,
as the tests run them) and only the thread holding it opens the file.

Whether another holds it is probed without taking it (``lockf``'s ``F_TEST``), so a probe
never turns a holder away, and the holder's note (a scan's progress, for the page of
another replica) is a file of its own beside the lock, written whole by rename: NFS shows
another machine a file as it was at its last close, and closing the lock file would drop
the lock.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["FolderLock"]

log = logging.getLogger(__name__)

_THREADS: dict[str, threading.Lock] = {}
"""This process's lock for each lock file, by its absolute path."""
_THREADS_GUARD = threading.Lock()
_HELD: set[str] = set()
"""The lock files a thread of this process holds (not just probes)."""
_POLL = 0.05
"""Seconds between tries while waiting with a timeout."""
_PROBE = 0.1
"""Seconds taking the lock without waiting waits for this process's probes (~2-15 us each)
to let go of the lock per file: a holder keeps it for the whole of its work."""


class FolderLock:
    """Exclusive use of ``folder / name`` for a while, by one thread of one process."""

    def __init__(self, folder: Path, name: str) -> None:
        self.path = folder / name
        self._note = folder / f"{name}.note"
        self._key = os.path.abspath(self.path)
        with _THREADS_GUARD:
            self._threads = _THREADS.setdefault(self._key, threading.Lock())

    @contextmanager
    def held(self, *, wait: bool = True, timeout: float | None = None) -> Iterator[bool]:
        """Hold the lock inside the ``with``, waiting for it (at most ``timeout`` seconds);
        without ``wait``, only if no one holds it: the ``with`` gets whether it does."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if (not wait and self._key in _HELD) or not self._threads.acquire(
                timeout=_PROBE if not wait else -1 if timeout is None else timeout):
            yield False
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                locked = self._locked(fd, wait, deadline)
                if locked:
                    self._note.unlink(missing_ok=True)  # a holder's that died
                    _HELD.add(self._key)
                try:
                    yield locked
                finally:
                    if locked:
                        _HELD.discard(self._key)
                        self._note.unlink(missing_ok=True)
            finally:
                os.close(fd)  # releases the lock
        finally:
            self._threads.release()

    def note(self, text: str) -> None:
        """Say what the holder is doing, for ``holder`` in other processes and threads."""
        part = self._note.with_name(f"{self._note.name}.{os.getpid()}.{threading.get_ident()}")
        try:
            part.write_text(text, encoding="utf-8")
            os.replace(part, self._note)
        except OSError as e:  # the holder's work goes on without its note
            log.warning("cannot write %s (%s)", self._note, e)

    def holder(self) -> str | None:
        """What another thread or process holding the lock last noted (``""``: nothing
        yet), or None when no other holds it."""
        if self._key in _HELD or not self._threads.acquire(timeout=_PROBE):
            return self._noted()  # a holder in this process
        try:
            try:
                fd = os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:  # never taken
                return None
            try:
                os.lockf(fd, os.F_TEST, 0)
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    return None  # e.g. ENOLCK: nothing is kept out, nothing to tell
                return self._noted()
            finally:
                os.close(fd)
            return None
        finally:
            self._threads.release()

    def _noted(self) -> str:
        try:
            return self._note.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return ""

    def _locked(self, fd: int, wait: bool, deadline: float | None) -> bool:
        """Whether the lock is taken, polled until ``deadline``: ``lockf`` waits for ever
        or not at all."""
        while True:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX if wait and deadline is None
                            else fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    # e.g. ENOLCK: an NFS mount without its lock manager
                    log.warning("cannot lock %s (%s): other processes sharing the folder "
                                "are not kept out", self.path, e)
                    return True
            # another process holds it
            if not wait or deadline is None or time.monotonic() >= deadline:
                return False
            time.sleep(_POLL)
