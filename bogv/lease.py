"""One replica at a time imports the shared incoming folder: a lease file in that folder.

Several API replicas behind a load balancer all see ``IMAGE_INC_PATH``; exactly one may
import it. The lease lives *in the folder it protects* rather than in Milvus: Milvus has no
compare-and-set, so a lease row there cannot exclude two writers, while creating a file
with ``O_CREAT | O_EXCL`` is atomic on local disks and on NFS (v3+), and replicas that do
not share a folder rightly import their own folders independently.

The holder rewrites the file (host, pid and a beat counter) every ``ttl / 4`` seconds. A
replica that finds the file watches it with its own monotonic clock, so no two machines'
clocks are ever compared: a beat within ``ttl`` means a live holder (it skips the import);
no beat for ``ttl`` means the holder died, and the file is moved aside and taken over. A
holder on the same host whose process is gone is taken over at once, so a single replica
restarted after a crash does not wait ``ttl``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import uuid
from pathlib import Path

__all__ = ["LEASE_FILE", "FolderLease"]

log = logging.getLogger(__name__)

LEASE_FILE = ".bogv-import.lease"
_HELD: set[str] = set()
"""Holders of leases in this process (several apps may share one, as in tests)."""


class FolderLease:
    """Exclusive, self-expiring right to import ``folder``."""

    def __init__(self, folder: Path, *, ttl: float = 60.0) -> None:
        self.path = folder / LEASE_FILE
        self.ttl = ttl
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.other = ""
        """Who held the lease when ``acquire`` gave up."""
        self._beats = 0
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self, stop: threading.Event) -> bool:
        """True when this replica holds the lease; ``stop`` is set if it is ever lost."""
        while not stop.is_set():
            if self._create():
                _HELD.add(self.holder)
                self._thread = threading.Thread(target=self._beat, args=(stop,),
                                                name="bogv-import-lease", daemon=True)
                self._thread.start()
                return True
            seen = self._read()
            if seen is None:
                continue  # released while we looked
            if not self._died_here(seen) and self._changes_within_ttl(seen, stop):
                self.other = seen.rsplit(" ", 1)[0]
                return False
            self._break(seen)
        return False

    def release(self) -> None:
        self._done.set()
        _HELD.discard(self.holder)
        if self._thread is not None:
            self._thread.join()
            if self._is_ours():
                self.path.unlink(missing_ok=True)

    def _token(self) -> str:
        return f"{self.holder} {self._beats}"

    def _create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            f.write(self._token())
        return True

    def _read(self) -> str | None:
        try:
            return self.path.read_text()
        except FileNotFoundError:
            return None

    def _is_ours(self) -> bool:
        return (self._read() or "").startswith(f"{self.holder} ")

    def _died_here(self, token: str) -> bool:
        """A holder on this host whose process is gone (a crash, or this very process's
        previous life in a restarted container) needs no ``ttl`` of watching."""
        host, _, rest = token.partition(":")
        pid = rest.partition(":")[0]
        if host != socket.gethostname() or not pid.isdigit():
            return False
        if int(pid) == os.getpid():  # this process, or an earlier one that had our pid
            return token.partition(" ")[0] not in _HELD
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False  # alive, another user's
        return False

    def _changes_within_ttl(self, seen: str, stop: threading.Event) -> bool:
        for _ in range(8):
            if stop.wait(self.ttl / 8):
                return True  # shutting down: behave as if someone else holds it
            if self._read() != seen:
                return True
        return False

    def _break(self, stale: str) -> None:
        """Move a dead holder's file aside; put it back if a live one slipped in meanwhile."""
        aside = self.path.with_name(f"{LEASE_FILE}.stale.{uuid.uuid4().hex[:8]}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        if aside.read_text() != stale:
            with contextlib.suppress(FileExistsError):  # a newer holder already took it
                os.link(aside, self.path)
        else:
            log.warning("import lease of %s expired (%s); taking over", self.path.parent,
                        stale.rsplit(" ", 1)[0])
        aside.unlink()

    def _beat(self, stop: threading.Event) -> None:
        while not self._done.wait(self.ttl / 4):
            if not self._is_ours():
                log.error("import lease of %s was taken over; stopping this import",
                          self.path.parent)
                stop.set()
                return
            self._beats += 1
            with self.path.open("r+") as f:
                f.write(self._token())
                f.truncate()
