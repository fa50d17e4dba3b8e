"""The vector store: one Milvus collection through pymilvus ``MilvusClient``.

The same code serves embedded Milvus Lite (a file path) and a Milvus server or cluster
(``http://host:19530``). Each backend answers some calls differently (Lite's ``delete``
returns the ids really deleted, a server echoes the request), so counts are taken from what
a query finds first, never from a delete's answer. Every pymilvus failure is translated to a
bogv error in ``_milvus_errors`` and nowhere else.

One row per image: its id, key, filepath, content digest and descriptor. The thumbnail and
keypoints live in files (``bogv.sidecar``): Milvus would hold them all in memory.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bogv import catalog
from bogv._pymilvus import DataType, MilvusClient, MilvusException, RpcError, last_write_ts
from bogv._types import Vectors
from bogv.config import Settings, is_server
from bogv.errors import BackendUnavailable, BogvError, ModelMismatch
from bogv.fields import MAX_FILEPATH, MAX_KEY, UTF8_BYTES
from bogv.indexing import METRIC, IndexSpec, index_spec
from bogv.session import Session

__all__ = ["INSERT_ROWS", "MAX_BATCH", "Candidate", "IdAllocator", "Page", "Record", "Store"]

log = logging.getLogger(__name__)

MAX_BATCH = 16_384
"""Milvus answers at most this many rows per query; larger sets are paged."""
INSERT_ROWS = 512
"""Rows per insert call. Milvus Lite 2.5.1 takes 20-30 s of CPU for one insert of 2,048
rows of 1280-d vectors but 0.2 s for four of 512 (measured, bench/speed/speed.py)."""
MAX_TOPK = 16_384
"""Milvus returns at most this many rows per search."""
_FIELDS = ["id", "key", "filepath", "sha256"]
_TEXT_BYTES = {"key": MAX_KEY * UTF8_BYTES, "filepath": MAX_FILEPATH * UTF8_BYTES}
"""VARCHAR sizes of new collections: a server counts bytes, the limits count characters."""
_EPOCH_MS = 1_704_067_200_000  # 2024-01-01
_OWN_LITE_FILES: set[Path] = set()
"""Milvus Lite files this process has opened (see ``lite_file_in_use``)."""


@dataclass(frozen=True)
class Record:
    id: int
    key: str
    filepath: str
    sha256: str


@dataclass(frozen=True)
class Page:
    """Records newest first, and the cursor (``before``) of the next page, None at the end."""

    records: list[Record]
    next: int | None


@dataclass(frozen=True)
class Candidate:
    """An image found by a search, with its vector's inner product with the query."""

    id: int
    key: str
    filepath: str
    sha256: str
    similarity: float

    @classmethod
    def unranked(cls, id_: int) -> Candidate:
        """A stored image found by the descriptor pieces it shares (``bogv.pieces``), not
        by its vector: its similarity, key and path are not read, until a search's vote
        has matched it (``service.Deeper``) or at all (the duplicate scan saves a pair by
        ids, and a copy's score comes from its matches)."""
        return cls(id_, "", "", "", 0.0)


class IdAllocator:
    """Unique, time-ordered ids below 2**53, so they survive JavaScript's ``Number``.

    ``(milliseconds since 2024) << 12 | sequence``: 4096 ids per millisecond per process,
    borrowing from the next millisecond when a batch needs more, for the next 69 years.
    The sequence starts at a random point so two API replicas rarely meet.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0

    def take(self, n: int) -> list[int]:
        with self._lock:
            now = (int(time.time() * 1000) - _EPOCH_MS) << 12 | random.randrange(1024)
            start = max(now, self._last + 1)
            self._last = start + n - 1
        if self._last >= 1 << 53:
            raise BogvError("id space exhausted")
        return list(range(start, start + n))

    @staticmethod
    def first_of(ms: int) -> int:
        """The smallest id a record made at Unix time ``ms`` (milliseconds) can have."""
        return max(ms - _EPOCH_MS, 0) << 12

    @staticmethod
    def time_of(id_: int) -> int:
        """When a record was made, Unix milliseconds (later by a few ms for big batches)."""
        return (id_ >> 12) + _EPOCH_MS

    @classmethod
    def earlier(cls, id_: int, seconds: float) -> int:
        """The smallest id a record made ``seconds`` before ``id_`` can have; an id of 0 or
        less (nothing read yet) as it is."""
        return id_ if id_ <= 0 else cls.first_of(cls.time_of(id_) - round(seconds * 1000))


@contextmanager
def _milvus_errors(action: str) -> Iterator[None]:
    try:
        yield
    except MilvusException as exc:
        raise BackendUnavailable(f"Milvus failed to {action}: {exc.message}") from exc
    except RpcError as exc:  # a deadline passed (``Store.calls``): pymilvus lets it by
        raise BackendUnavailable(f"Milvus did not answer ({action}) in time") from exc
    except (ConnectionError, TimeoutError, OSError) as exc:
        raise BackendUnavailable(f"Milvus is unreachable ({action}): {exc}") from exc


def _quote_all(values: Sequence[str]) -> str:
    return json.dumps(list(values), ensure_ascii=False)


def _ids_in(ids: Iterable[int]) -> str:
    """A filter for these ids, as Python ints (numpy's print as ``np.int64(1)``)."""
    return f"id in {[int(i) for i in ids]}"


class Store:
    """Owns the Milvus connection and the collection's schema, ids and model stamp."""

    def __init__(self, uri: str, *, model_id: str, dim: int, collection: str = "images",
                 token: str = "", db_name: str = "",
                 index: IndexSpec | None = None, alias: bool = True,
                 search_consistency: str = "Session", timeout: int = 30) -> None:
        """``collection`` is the name clients use (an alias on a server); ``alias=False``
        opens or creates exactly that physical collection (``bogv reembed``'s target).

        ``search_consistency`` ``Session`` (the default) reads as ``bogv.session`` says;
        another Milvus level is used as it is for searches. Milvus Lite answers every read
        at once, so it is always read ``Strong``.

        ``timeout``: seconds each read or write on a server may take (0: no limit).
        """
        self.uri, self.model_id, self.dim, self.alias = uri, model_id, dim, collection
        self.index = index or IndexSpec("IVF_FLAT", {"nlist": 1024}, {"nprobe": 64})
        self.search_consistency = search_consistency
        self.session = Session()
        self.on_server = is_server(uri)
        self.calls: dict[str, Any] = {"timeout": timeout} if self.on_server and timeout else {}
        """What every read and write passes pymilvus: a deadline, else a stalled server
        holds the call for ever. A whole number of seconds, which pymilvus also takes as
        the bound of its retries."""
        if not self.on_server:
            Path(uri).parent.mkdir(parents=True, exist_ok=True)
            _OWN_LITE_FILES.add(Path(uri).resolve())
        # A connection of its own: pymilvus shares one per URI by default, and closing any
        # client would cut off every other store of this process (replicas in tests, the
        # two collections of a migration).
        kwargs: dict[str, Any] = {"uri": uri, "alias": f"bogv-{uuid.uuid4().hex}"}
        if token:
            kwargs["token"] = token
        if db_name:
            kwargs["db_name"] = db_name
        with _milvus_errors("connect"):
            self.client = MilvusClient(**kwargs)
        self.ids = IdAllocator()
        self.text_bytes: dict[str, int] = {}
        """Bytes the collection's ``key`` and ``filepath`` hold where the backend enforces
        them (a server); collections older than ``_TEXT_BYTES`` hold fewer."""
        self.page_window = 1024
        """Most ids ``newest`` reads at once: ~1k cost about one narrowing count query."""
        self.name = self._open(alias)

    @classmethod
    def from_settings(cls, settings: Settings, *, model_id: str, dim: int,
                      collection: str | None = None, alias: bool = True) -> Store:
        """The store the settings describe: the one way the service and a migration open
        one. ``collection`` (default ``COLLECTION``) and ``alias`` as in ``__init__``."""
        return cls(settings.store_uri, model_id=model_id, dim=dim,
                   collection=collection or settings.collection, token=settings.store_token,
                   db_name=settings.milvus_db_name, index=index_spec(settings), alias=alias,
                   search_consistency=settings.search_consistency,
                   timeout=settings.milvus_timeout)

    @property
    def backend(self) -> str:
        return "milvus-server" if self.on_server else "milvus-lite"

    def _open(self, alias: bool) -> str:
        """The physical collection behind ``self.alias``, created when missing, loaded.

        The store keeps using the collection it opened even when ``bogv reembed`` later
        moves the name to another model's collection, so one process never mixes models.
        """
        with _milvus_errors("open the collection"):
            if alias:
                name = catalog.resolve(self.client, self.uri, self.alias) or self._create(True)
            else:
                exists = self.client.has_collection(self.alias)
                name = self.alias if exists else self._create(False)
            described = self.client.describe_collection(name)
            stamp = described.get("description", "")
            if stamp != self.model_id:
                raise ModelMismatch(
                    f"collection '{self.alias}' at {self.uri} holds vectors of model "
                    f"'{stamp}', not '{self.model_id}'; mixing them would corrupt search. "
                    "Re-embed it into a new collection with `bogv reembed`")
            self.client.load_collection(name)
        if self.on_server:
            self.text_bytes = {f["name"]: int(f["params"]["max_length"])
                               for f in described.get("fields", [])
                               if f["name"] in _TEXT_BYTES and "max_length" in f.get("params", {})}
        return name

    def _create(self, alias: bool) -> str:
        """A new collection: on a server ``<alias>__<model>`` behind the alias, on Lite the
        name itself (Lite has no aliases). Two replicas racing here end on one collection."""
        server = alias and self.on_server
        name = catalog.physical_name(self.alias, self.model_id) if server else self.alias
        schema = self.client.create_schema(auto_id=False, description=self.model_id)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("key", DataType.VARCHAR, max_length=_TEXT_BYTES["key"])
        schema.add_field("filepath", DataType.VARCHAR, max_length=_TEXT_BYTES["filepath"])
        schema.add_field("sha256", DataType.VARCHAR, max_length=64)
        schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=self.dim)
        index = self.client.prepare_index_params()
        index.add_index("embedding", index_type=self.index.type, metric_type=METRIC,
                        params=dict(self.index.build))
        if self.on_server:
            # Adds, imports and deletes look rows up by key and by digest. Without an index a
            # server scans every row for that: 5.5 ms at 200k rows on Milvus 2.3.5, growing
            # with the collection; 1.5 ms with one. The server picks the kind (a trie on 2.3,
            # inverted from 2.4). Milvus Lite keeps all rows in one growing segment, which
            # no scalar index serves.
            for field in ("key", "sha256"):
                index.add_index(field)
        try:
            self.client.create_collection(name, schema=schema, index_params=index,
                                          consistency_level="Strong")
            if server:
                catalog.point(self.client, self.uri, self.alias, name)
        except MilvusException:
            ready = (catalog.resolve(self.client, self.uri, self.alias) if alias
                     else name if self.client.has_collection(name) else None)
            if ready != name:
                raise
        log.info("created collection %s (%s) at %s for %s", name, self.index.type, self.uri,
                 self.model_id)
        return name

    def close(self) -> None:
        self.client.close()

    def locate(self, name: str) -> tuple[str, str] | None:
        """The physical collection ``name`` means at this URI now, with its model stamp."""
        with _milvus_errors("find a collection"):
            physical = catalog.resolve(self.client, self.uri, name)
            if physical is None:
                return None
            return physical, self.client.describe_collection(physical).get("description", "")

    def take_name(self, name: str) -> None:
        """Make ``name`` mean this store's collection from now on (a model migration)."""
        with _milvus_errors("switch the collection name"):
            catalog.point(self.client, self.uri, name, self.name)

    # --- writes -------------------------------------------------------------------------

    def insert(self, rows: Sequence[tuple[str, str, str]], vectors: Vectors,
               ids: Sequence[int] | None = None) -> list[int]:
        """Insert ``(key, filepath, sha256)`` images with their ``(n, dim)`` vectors. Returns
        their ids: new ones, or ``ids`` (a re-embedded record stays the record clients know).
        """
        if vectors.shape != (len(rows), self.dim):
            raise ValueError(f"expected vectors of shape ({len(rows)}, {self.dim}), "
                             f"got {vectors.shape}")
        ids = list(ids) if ids is not None else self.ids.take(len(rows))
        data = [{"id": i, "key": k, "filepath": f, "sha256": s, "embedding": vec}
                for i, (k, f, s), vec in zip(ids, rows, vectors, strict=True)]
        with _milvus_errors("insert"):
            for first in range(0, len(data), INSERT_ROWS):
                self.client.insert(self.name, data[first:first + INSERT_ROWS], **self.calls)
                self.session.wrote(last_write_ts(self.name))
        self.session.added((i, k, f, s) for i, (k, f, s) in zip(ids, rows, strict=True))
        return ids

    def delete_ids(self, ids: Sequence[int]) -> list[int]:
        """Delete these images; returns those that existed.

        Deletes read ``Strong`` (they are rare): the count is what really existed, written
        through any replica, and everything of a key goes.
        """
        found = list(self.existing(ids))
        self._delete(found)
        return found

    def delete_keys(self, keys: Sequence[str]) -> list[int]:
        """Delete every image of these keys, however many; returns their ids."""
        deleted: list[int] = []
        while keys and (found := self._ids_where(f"key in {_quote_all(keys)}", strong=True)):
            self._delete(found)
            deleted += found
        return deleted

    def _delete(self, ids: list[int]) -> None:
        if ids:
            with _milvus_errors("delete"):
                self.client.delete(self.name, ids=ids, **self.calls)
            self.session.deleted(ids)  # a 2.3 server answers a delete without its timestamp

    # --- reads --------------------------------------------------------------------------

    def _reads(self, level: str = "Session") -> dict[str, Any]:
        """How a read waits for writes (``bogv.session``); Lite never waits."""
        if self.backend == "milvus-lite":
            return {"consistency_level": "Strong"}
        return self.session.read() if level == "Session" else {"consistency_level": level}

    def _hidden(self) -> set[int]:
        """Ids this replica deleted that the server may still return (never on Lite)."""
        return self.session.hidden() if self.backend == "milvus-server" else set()

    def _ids_where(self, expr: str, *, strong: bool = False) -> list[int]:
        """Ids only (at most ``MAX_BATCH``): cheaper than whole records."""
        with _milvus_errors("query"):
            rows = self.client.query(self.name, filter=expr, output_fields=["id"],
                                     limit=MAX_BATCH, **self.calls,
                                     **self._reads("Strong" if strong else "Session"))
        hidden = set() if strong else self._hidden()
        return [int(r["id"]) for r in rows if int(r["id"]) not in hidden]

    def query(self, expr: str, *, limit: int = MAX_BATCH, offset: int = 0,
              reads: dict[str, Any] | None = None) -> list[Record]:
        """Images matching a filter on ``id``, ``key``, ``filepath``, ``sha256``."""
        with _milvus_errors("query"):
            rows = self.client.query(self.name, filter=expr or "id >= 0",
                                     output_fields=_FIELDS, limit=limit, offset=offset,
                                     **self.calls, **(reads or self._reads()))
        hidden = set() if reads else self._hidden()
        return [_record(r) for r in rows if int(r["id"]) not in hidden]

    def scan(self, expr: str = "", batch: int = 1000) -> Iterator[list[Record]]:
        """Every record matching ``expr``, page by page in id order (any size)."""
        with _milvus_errors("scan"):
            pages = self.client.query_iterator(self.name, batch_size=batch,
                                               filter=expr or "id >= 0",
                                               output_fields=_FIELDS, **self.calls)
        try:
            while True:
                with _milvus_errors("scan"):
                    page = pages.next()
                if not page:
                    return
                yield [_record(r) for r in page]
        finally:
            pages.close()

    def with_ids(self, ids: Sequence[int]) -> list[Record]:
        """The records of these ids that exist (any order)."""
        return self.query(_ids_in(ids), limit=len(ids)) if ids else []

    def existing(self, ids: Sequence[int]) -> set[int]:
        """Which of these ids are stored, read ``Strong``: an image another replica deleted a
        moment ago is gone (a decision to keep it must not delete its copies)."""
        found: set[int] = set()
        for first in range(0, len(ids), MAX_BATCH):
            found.update(self._ids_where(_ids_in(ids[first:first + MAX_BATCH]), strong=True))
        return found

    def with_filepaths(self, filepaths: Sequence[str]) -> list[Record]:
        """Records stored under these filepaths (a path may hold several keys' images)."""
        return (self.query(f"filepath in {_quote_all(filepaths)}", limit=4 * len(filepaths))
                if filepaths else [])

    def with_contents(self, digests: Sequence[str], *, seen_at: int | None = None
                      ) -> list[Record]:
        """Records whose bytes have one of these sha256 digests (idempotent adds, import).

        Never waits for the server: what it finds plus this replica's recent adds, minus its
        recent deletes (``bogv.session``). ``seen_at``: instead, everything written up to
        that server timestamp, through any replica (waits until the server has it).
        """
        unique = sorted(set(digests))
        if not unique:
            return []
        expr = f"sha256 in {_quote_all(unique)}"
        if self.backend == "milvus-lite":
            return self.query(expr)
        if seen_at is not None:
            return self.query(expr, reads={"consistency_level": "Customized",
                                           "guarantee_timestamp": seen_at})
        found = self.query(expr, reads=self.session.lookup())
        rows = self.session.overlay(((r.id, r.key, r.filepath, r.sha256) for r in found),
                                    unique)
        return [Record(*row) for row in rows]

    def search(self, vectors: Vectors, limit: int, *, per: str = "image",
               among: Sequence[int] = ()) -> list[Candidate]:
        """The ``limit`` best images for the query's ``(n, dim)`` vectors (its views), each
        image scored by its best similarity to any of them; only those with ids ``among``
        when given.

        ``per="key"`` keeps only the best image of each key. Rows are over-fetched and
        deduplicated here rather than with Milvus's ``group_by_field``, which a Milvus 2.3
        server lacks; the fetch widens until enough distinct keys are found.
        """
        hidden = self._hidden() if self.search_consistency == "Session" else set()
        fetch = min(limit + len(hidden), MAX_TOPK)
        while True:
            with _milvus_errors("search"):
                results = self.client.search(
                    self.name, data=vectors.tolist(), anns_field="embedding", limit=fetch,
                    output_fields=_FIELDS[1:], search_params=self.index.search_params(fetch),
                    filter=_ids_in(among) if among else "", **self.calls,
                    **self._reads(self.search_consistency))
            best: dict[object, Candidate] = {}
            for row in (row for rows in results for row in rows):
                if int(row["id"]) in hidden:
                    continue
                e = row["entity"]
                found = Candidate(int(row["id"]), e["key"], e["filepath"], e["sha256"],
                                  float(row["distance"]))
                group = found.id if per == "image" else found.key
                if group not in best or found.similarity > best[group].similarity:
                    best[group] = found
            if (len(best) >= limit or max(map(len, results)) < fetch
                    or fetch == MAX_TOPK):
                break
            fetch = min(fetch * 4, MAX_TOPK)
        return sorted(best.values(), key=lambda c: -c.similarity)[:limit]

    def count(self, expr: str = "") -> int:
        """How many images match ``expr``."""
        hidden = sorted(self._hidden())
        if hidden:
            return (self._count(expr) - self._count(f"({expr}) and {_ids_in(hidden)}" if expr
                                                    else _ids_in(hidden)))
        return self._count(expr)

    def _count(self, expr: str) -> int:
        with _milvus_errors("count"):
            rows = self.client.query(self.name, filter=expr, output_fields=["count(*)"],
                                     **self.calls, **self._reads())
        return int(rows[0]["count(*)"])

    def newest(self, limit: int, *, before: int | None = None, key: str | None = None) -> Page:
        """The ``limit`` newest records with ``id < before`` (and this key), newest first.

        Milvus queries have no ORDER BY, and reading every id to sort them grows with the
        collection (~0.1 s at 100k). Ids are time-ordered, so a window of ids just below
        ``before`` holds the newest records: counts (cheap) widen the window until it holds
        ``limit`` records and narrow it while it holds more than ``cap``; the window's ids are
        read and sorted here, and the page's records fetched by id. Keyset paging by
        ``before`` stays correct while records are added or deleted: new ids are larger, and
        a deleted record is simply not found.
        """
        hi = before if before is not None else 1 << 53
        where = f"key == {json.dumps(key, ensure_ascii=False)} and " if key is not None else ""

        def count(lo: int) -> int:
            return self.count(f"{where}id >= {lo} and id < {hi}")

        total, cap = count(0), max(4 * limit, self.page_window)
        lo = 0 if total <= cap else self._window(count, hi, limit, cap)
        ids = sorted(self._ids_where(f"{where}id >= {lo} and id < {hi}"), reverse=True)[:limit]
        records = sorted(self.with_ids(ids), key=lambda r: -r.id)
        return Page(records, ids[-1] if ids and total > limit else None)

    # --- the duplicate scan (``bogv.duplicates``) ---------------------------------------

    def vectors(self, expr: str = "", batch: int = 1000) -> Iterator[tuple[list[int], Vectors]]:
        """Stored ids and their vectors, page by page: the scan searches with the stored
        vectors themselves rather than re-embedding anything."""
        with _milvus_errors("read vectors"):
            pages = self.client.query_iterator(self.name, batch_size=batch,
                                               filter=expr or "id >= 0",
                                               output_fields=["id", "embedding"],
                                               **self.calls)
        try:
            while True:
                with _milvus_errors("read vectors"):
                    page = pages.next()
                if not page:
                    return
                yield ([int(r["id"]) for r in page],
                       np.asarray([r["embedding"] for r in page], np.float32))
        finally:
            pages.close()

    def neighbours(self, vectors: Vectors, limit: int) -> list[list[Candidate]]:
        """The ``limit`` best images of each row of ``vectors``, one list per row: one
        batched search answers many images' neighbours at once."""
        with _milvus_errors("search"):
            results = self.client.search(
                self.name, data=vectors.tolist(), anns_field="embedding", limit=limit,
                output_fields=_FIELDS[1:], search_params=self.index.search_params(limit),
                **self.calls, **self._reads(self.search_consistency))
        return [[Candidate(int(r["id"]), r["entity"]["key"], r["entity"]["filepath"],
                           r["entity"]["sha256"], float(r["distance"])) for r in rows]
                for rows in results]

    @staticmethod
    def _window(count: Callable[[int], int], hi: int, limit: int, cap: int) -> int:
        """A lower bound ``lo`` whose window ``[lo, hi)`` holds ``limit..cap`` records.

        Widens a window that ends at now (+1 min of clock skew) 16-fold until it is full
        enough, then narrows it, alternating interpolation (few steps when records are
        spread evenly) with bisection (a bound when they come in bursts).
        """
        anchor = min(hi, IdAllocator.first_of(int(time.time() * 1000) + 60_000))
        span, few, f = 1 << 22, hi, 0  # ~1 s of ids; count(few) = f < limit
        lo = max(anchor - span, 0)
        while (n := count(lo)) < limit:  # the caller saw more than limit, so lo reaches 0
            few, f, span = lo, n, span * 16
            lo = max(anchor - span, 0)
        step = 0
        while n > cap and few - lo > 1:  # each id is one record at most, so this ends
            step += 1
            guess = few - (few - lo) * ((limit + cap) / 2 - f) / (n - f)
            mid = int(guess) if step % 2 else (lo + few) // 2
            mid = min(max(mid, lo + 1), few - 1)
            if (m := count(mid)) < limit:
                few, f = mid, m
            else:
                lo, n = mid, m
        return lo


def _record(row: dict[str, Any]) -> Record:
    return Record(int(row["id"]), row["key"], row["filepath"], row["sha256"])


def lite_file_in_use(uri: str) -> bool:
    """True when another process holds Milvus Lite's lock on this data file.

    Never probes a file this process opened: POSIX record locks belong to the process and
    closing *any* descriptor of the lock file drops them, which would stop our own engine.
    """
    import fcntl

    path = Path(uri).resolve()
    lock = path.parent / f".{path.name}.lock"
    if path in _OWN_LITE_FILES or not lock.exists():
        return False
    with lock.open("a") as f:
        try:
            fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.lockf(f, fcntl.LOCK_UN)
    return False
