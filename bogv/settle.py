"""One record per (key, bytes) across replicas, without a ``Strong`` read on each add.

A replica's re-add check sees the records of other replicas only once the server's time tick
has passed them (~0.25-0.4 s). Two replicas adding the same bytes under the same key within
that window both insert. So after each insert a background thread reads those identities
again at the insert's own server timestamp (waiting for the tick off the request path) and
removes every record of an identity but the one with the smallest id. The later of two
racing replicas always sees both records; both replicas keep the same one.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence

from bogv.errors import BogvError
from bogv.store import Store

__all__ = ["Settler"]

log = logging.getLogger(__name__)


class Settler:
    """Checks identities just inserted through ``store``; ``removed`` gets the ids it
    deletes (their record files go too)."""

    def __init__(self, store: Store, removed: Callable[[list[int]], None]) -> None:
        self.store, self.removed = store, removed
        self._todo: queue.Queue[tuple[list[str], int] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="bogv-settle", daemon=True)
        self._thread.start()

    def check(self, digests: Sequence[str], ts: int) -> None:
        """Records with these sha256 digests were inserted at server timestamp ``ts``."""
        if digests:
            self._todo.put((list(digests), ts))

    def wait(self) -> None:
        """Until every check handed in so far is done."""
        self._todo.join()

    def close(self) -> None:
        self._todo.put(None)
        self._thread.join()

    def _run(self) -> None:
        while True:
            item = self._todo.get()
            batch = [item]
            while item is not None and not self._todo.empty():  # one read for a burst
                item = self._todo.get()
                batch.append(item)
            checks = [b for b in batch if b is not None]
            try:
                if checks:
                    self._settle(sorted({d for ds, _ in checks for d in ds}),
                                 max(ts for _, ts in checks))
            except BogvError as exc:
                log.warning("could not check %d new records for duplicates: %s",
                            len(checks), exc.message)
            except Exception:  # the thread must live on, or ``wait`` would never return
                log.exception("duplicate check failed")
            finally:
                for _ in batch:
                    self._todo.task_done()
            if item is None:
                return

    def _settle(self, digests: list[str], ts: int) -> None:
        first: dict[tuple[str, str], int] = {}
        extra: list[int] = []
        for r in sorted(self.store.with_contents(digests, seen_at=ts), key=lambda r: r.id):
            if (r.key, r.sha256) in first:
                extra.append(r.id)
            else:
                first[(r.key, r.sha256)] = r.id
        if extra:
            gone = self.store.delete_ids(extra)
            log.info("removed %d records another replica added at the same moment", len(gone))
            self.removed(gone)
