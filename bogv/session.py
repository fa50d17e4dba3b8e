"""What one replica has just written to a Milvus server, so it reads its own writes at once.

A Milvus server makes a write visible to reads when its time tick passes it (every 200 ms by
default, measured ~0.25 s p50 and ~0.4 s at most on 2.3.5). A ``Strong`` read waits for the
next tick on every request (~0.2-0.6 s per search). bogv reads instead at:

- the timestamp of this replica's own last write, while that write is recent: the read waits
  only when this replica wrote in the last few hundred milliseconds, and then sees that write
  (read-your-writes, including deletes);
- otherwise ``Bounded``: no wait, and never more stale than the server's
  ``common.gracefulTime`` (5 s by default); in practice ~0.25-0.4 s.

Milvus 2.3.5 answers a delete without its timestamp, so a replica cannot wait for its own
delete that way: the ids it deleted in the last ``FRESH`` seconds are left out of what its
reads return instead (after that, ``Bounded`` reads no longer find them). The re-add check
cannot wait for a tick on each add either (an add would cost ~0.3 s again), so it reads
``Bounded`` and this replica's recent adds and deletes are laid over what it finds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

__all__ = ["FRESH", "Session"]

FRESH = 5.0
"""Seconds a write stays in the session: a ``Bounded`` read sees anything older (the
server's ``common.gracefulTime``, 5 s by default)."""
_BOUNDED = {"consistency_level": "Bounded"}


class Session:
    """One replica's recent writes: the timestamp of the last one, the records it added by
    identity ``(key, sha256)``, and the ids it deleted, each forgotten after ``FRESH`` s."""

    def __init__(self, fresh: float = FRESH) -> None:
        self._lock = threading.Lock()
        self.fresh = fresh
        self._ts, self._at = 0, float("-inf")
        self._added: dict[tuple[str, str], tuple[int, str, float]] = {}
        self._deleted: dict[int, float] = {}

    def wrote(self, ts: int) -> None:
        """A write of this replica was acknowledged with the server timestamp ``ts``."""
        with self._lock:
            self._ts, self._at = max(self._ts, ts), time.monotonic()

    @property
    def last(self) -> int:
        """The server timestamp of this replica's last write (0: none)."""
        return self._ts

    def added(self, rows: Iterable[tuple[int, str, str, str]]) -> None:
        """``(id, key, filepath, sha256)`` of records this replica just inserted."""
        now = time.monotonic()
        with self._lock:
            for id_, key, filepath, sha256 in rows:
                self._added[(key, sha256)] = (id_, filepath, now)

    def deleted(self, ids: Iterable[int]) -> None:
        now = time.monotonic()
        gone = set(ids)
        with self._lock:
            self._deleted.update(dict.fromkeys(gone, now))
            for ident in [i for i, (id_, _, _) in self._added.items() if id_ in gone]:
                del self._added[ident]

    def hidden(self) -> set[int]:
        """Ids this replica deleted that a read may still find."""
        self._expire()
        with self._lock:
            return set(self._deleted)

    def read(self) -> dict[str, Any]:
        """pymilvus arguments for a read that sees this replica's own writes."""
        with self._lock:
            if self._ts and time.monotonic() - self._at < self.fresh:
                return {"consistency_level": "Customized", "guarantee_timestamp": self._ts}
        return dict(_BOUNDED)

    def lookup(self) -> dict[str, Any]:
        """pymilvus arguments for a read that never waits (the re-add check); combine its
        rows with ``overlay``."""
        return dict(_BOUNDED)

    def overlay(self, found: Iterable[tuple[int, str, str, str]],
                digests: Iterable[str]) -> list[tuple[int, str, str, str]]:
        """``found`` ``(id, key, filepath, sha256)`` rows of a ``lookup`` read, without what
        this replica deleted and with what it added (of these ``digests``)."""
        self._expire()
        wanted = set(digests)
        with self._lock:
            rows = {r[0]: r for r in found if r[0] not in self._deleted}
            for (key, sha256), (id_, filepath, _) in self._added.items():
                if sha256 in wanted:
                    rows[id_] = (id_, key, filepath, sha256)
        return list(rows.values())

    def _expire(self) -> None:
        old = time.monotonic() - self.fresh
        with self._lock:
            self._added = {k: v for k, v in self._added.items() if v[2] >= old}
            self._deleted = {k: t for k, t in self._deleted.items() if t >= old}
