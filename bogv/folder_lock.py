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
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["FolderLock"]

log = logging.getLogger(__name__)

_THREADS: dict[str, threading.Lock] = {}
"""This process's lock for each lock file, by its absolute path."""
_THREADS_GUARD = threading.Lock()


class FolderLock:
    """Exclusive use of ``folder / name`` for a while, by one thread of one process."""

    def __init__(self, folder: Path, name: str) -> None:
        self.path = folder / name
        with _THREADS_GUARD:
            self._threads = _THREADS.setdefault(os.path.abspath(self.path), threading.Lock())

    @contextmanager
    def held(self, *, wait: bool = True) -> Iterator[bool]:
        """Hold the lock inside the ``with``, waiting for it; without ``wait``, only if no
        one holds it: the ``with`` gets whether it does."""
        if not self._threads.acquire(blocking=wait):
            yield False
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                yield self._locked(fd, wait)
            finally:
                os.close(fd)  # releases the lock
        finally:
            self._threads.release()

    def _locked(self, fd: int, wait: bool) -> bool:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EACCES):  # another process holds it
                return False
            # e.g. ENOLCK: an NFS mount without its lock manager
            log.warning("cannot lock %s (%s): other processes sharing the folder are not "
                        "kept out", self.path, e)
        return True
