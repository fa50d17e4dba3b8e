"""Folder import: walk, skip what is stored, decode and embed in batches on every core, insert.

Every file gets an outcome (added, skipped, failed with a reason); one bad file never stops
the import. Crash safety comes from the order of steps: a file is inserted, *then* moved to
the pool. After a crash the file is still in the folder, its content is found in the store,
and it is skipped and moved: nothing is lost or stored twice, and finished work is not
redone because stored files are recognised by hash before they are decoded.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import shutil
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np

from bogv._types import Vectors
from bogv.config import Settings
from bogv.errors import BogvError
from bogv.lease import FolderLease
from bogv.model.descriptor import DIM
from bogv.service import Incoming, Prepared, Service

__all__ = ["Outcome", "Summary", "find_files", "import_folder", "import_settings", "start_import",
           "stored_name"]

log = logging.getLogger(__name__)
startup_log = logging.getLogger("bogv.startup")
"""The API's start-up import logs apart: ``bogv import`` quiets ``bogv.ingest``'s per-file
warnings (its summary lists them), which must not silence a server's start-up in the
same process."""
T = TypeVar("T")

CHUNK = 32
"""Files per round trip to the store (one skip query, one insert). A Milvus Lite insert
costs 30-100 ms whatever its size, so chunks are larger than inference batches; they are
small enough that the few chunks in flight hold little memory."""
SERVER_CHUNK = 128
"""The same against a Milvus server, where a round trip crosses the network. Chosen when
each skip check waited ~300 ms for Strong consistency (128-file chunks: 115 images/s into
the test server, 32-file ones 53); the checks no longer wait (``bogv.session``)."""


@dataclass(frozen=True)
class Outcome:
    path: Path
    status: Literal["added", "skipped", "failed"]
    reason: str = ""
    id: int | None = None


@dataclass
class Summary:
    added: int = 0
    skipped: int = 0
    failed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)

    def count(self, outcome: Outcome) -> None:
        setattr(self, outcome.status, getattr(self, outcome.status) + 1)
        if outcome.status == "failed":
            self.failures.append((str(outcome.path), outcome.reason))


def find_files(folder: Path) -> list[Path]:
    """Regular files below ``folder``, sorted, hidden files and folders left out."""
    found: list[Path] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(root) / f for f in sorted(files) if not f.startswith("."))
    return found


def import_settings(settings: Settings) -> Settings:
    """Settings for a process whose work is an import (``bogv import``).

    Each of the ``WORKERS`` runs inferences of its own, so each gets its share of the cores
    as onnxruntime threads (one on 2 cores with 2 workers) unless ``INTRA_OP_THREADS`` says
    otherwise: every thread then always has work of its own, where two-thread inferences
    made each core wait at every layer for the other, which was busy decoding.
    """
    if settings.intra_op_threads:
        return settings
    share = max(1, (os.cpu_count() or 1) // settings.workers)
    return settings.model_copy(update={"intra_op_threads": share})


def stored_name(path: Path) -> str:
    """``path`` as the UTF-8 text Milvus stores: file-name bytes that are not UTF-8 (kept by
    Python as lone surrogates) are written as ``\\xNN`` escapes instead of failing the insert."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _pool_target(path: Path, folder: Path, pool: Path) -> Path:
    """Where an imported file will live: its place below the pool, renamed if taken."""
    target = pool / path.relative_to(folder)
    stem, n = target, 1
    while target.exists():
        target = stem.with_name(f"{stem.stem}-{n}{stem.suffix}")
        n += 1
    return target


@dataclass
class _Batch:
    """Up to ``BATCH_SIZE`` images prepared and embedded by one worker, in file order."""

    ready: list[tuple[Path, Prepared]]
    failed: list[Outcome]
    """Files that could not be decoded."""
    vectors: Vectors


@dataclass
class _Chunk:
    """The files of one store round trip on their way through the pipeline."""

    batches: list[Future[_Batch]]
    early: list[Outcome]
    """Files settled before decoding: unreadable, or already stored."""


def _read(path: Path) -> tuple[Path, bytes, str, str] | Outcome:
    """The file's bytes and their (md5, sha256), or its failure."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return Outcome(path, "failed", f"cannot read: {exc.strerror or exc}")
    return path, data, hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest()


def _prepare_and_embed(service: Service, files: Sequence[tuple[Path, bytes, str, str]]
                       ) -> _Batch:
    """One worker's whole share of a batch: decode, keypoints, thumbnail, then one inference.

    Each worker runs its own inference instead of handing tensors to a single embedding
    thread, so every core decodes and embeds (one onnxruntime run per worker at once,
    ``Embedder``), with no stage left waiting for another.
    """
    ready, failed = [], []
    for path, data, md5, sha in files:
        try:
            ready.append((path, service.prepare(data, digests=(md5, sha))))
        except BogvError as exc:
            failed.append(Outcome(path, "failed", exc.message))
    vectors = (service.embed_prepared([p for _, p in ready]) if ready
               else np.zeros((0, DIM), np.float32))
    return _Batch(ready, failed, vectors)


def _ahead(items: Iterator[T], depth: int) -> Generator[T, None, None]:
    """Run ``items`` in a thread, up to ``depth`` items ahead of the caller.

    The producer's exceptions are re-raised in the caller. A caller that stops early (or
    fails) ends the producer at its next item, which closes ``items`` in turn.
    """
    box: queue.Queue[tuple[bool, Any]] = queue.Queue(depth)
    done = threading.Event()

    def put(item: tuple[bool, Any]) -> bool:
        while not done.is_set():
            try:
                box.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put((False, exc))
            return
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()
        put((False, None))

    thread = threading.Thread(target=produce, name="bogv-import-stage", daemon=True)
    thread.start()
    try:
        while True:
            ok, item = box.get()
            if not ok:
                if item is not None:
                    raise item
                return
            yield item
    finally:
        done.set()
        thread.join()


def import_folder(service: Service, folder: Path, *, move_to: Path | None = None,
                  on_outcome: Callable[[Outcome], None] | None = None,
                  stop: threading.Event | None = None, workers: int | None = None,
                  files: Sequence[Path] | None = None) -> Summary:
    """Index every file below ``folder`` (key = MD5, filepath = its path) and report.

    Three stages overlap, so no core waits for the disk or Milvus: a feeder thread reads,
    hashes and skips stored files, one chunk ahead, and queues the rest in batches; each
    worker prepares and embeds a whole batch (``_prepare_and_embed``); and the calling
    thread stores each chunk and reports its outcomes.
    """
    folder = folder.resolve()
    paths = [p.resolve() for p in files] if files is not None else find_files(folder)
    summary = Summary()

    def stored_path(path: Path) -> Path:
        return path if move_to is None else _pool_target(path, folder, move_to)

    def emit(outcome: Outcome, target: Path) -> None:
        summary.count(outcome)
        if outcome.status == "failed":
            log.warning("import: %s failed: %s", outcome.path, outcome.reason)
        elif target != outcome.path:
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(outcome.path, target)
            except OSError as exc:
                log.warning("import: %s indexed but not moved: %s", outcome.path, exc)
        if on_outcome is not None:
            on_outcome(outcome)

    pool = ThreadPoolExecutor(workers or service.settings.workers,
                              thread_name_prefix="bogv-import")
    chunks = _ahead(_feed(service, pool, paths, stop), 1)
    try:
        for chunk in chunks:
            for outcome in chunk.early:
                emit(outcome, stored_path(outcome.path))
            batches = [b.result() for b in chunk.batches]
            for outcome in (o for b in batches for o in b.failed):
                emit(outcome, outcome.path)
            for outcome, target in _store_chunk(service, batches, stored_path):
                emit(outcome, target)
    finally:  # a caller that stops early leaves no thread, nor a batch to decode
        chunks.close()
        pool.shutdown(wait=True, cancel_futures=True)
    return summary


def _feed(service: Service, pool: ThreadPoolExecutor, paths: Sequence[Path],
          stop: threading.Event | None) -> Iterator[_Chunk]:
    """Chunks whose stored files are settled and whose batches are in the workers' queue."""
    size = CHUNK if service.settings.is_embedded else SERVER_CHUNK
    batch = service.settings.batch_size
    for first in range(0, len(paths), size):
        if stop is not None and stop.is_set():
            return
        early: list[Outcome] = []
        loaded: list[tuple[Path, bytes, str, str]] = []
        for item in map(_read, paths[first:first + size]):
            if isinstance(item, Outcome):
                early.append(item)
            else:
                loaded.append(item)
        try:
            stored = {(r.key, r.sha256): r.id for r in
                      service.store.with_contents([sha for *_, sha in loaded])}
        except BogvError as exc:
            early.extend(Outcome(p, "failed", exc.message) for p, *_ in loaded)
            loaded, stored = [], {}
        todo = []
        for path, data, md5, sha in loaded:
            if (md5, sha) in stored:
                early.append(Outcome(path, "skipped", "already indexed", stored[(md5, sha)]))
            else:
                todo.append((path, data, md5, sha))
        yield _Chunk([pool.submit(_prepare_and_embed, service, todo[i:i + batch])
                      for i in range(0, len(todo), batch)], early)


def _store_chunk(service: Service, batches: Sequence[_Batch],
                 stored_path: Callable[[Path], Path]) -> list[tuple[Outcome, Path]]:
    """Insert the chunk's new images; a path the store cannot hold fails only its file."""
    outcomes: list[tuple[Outcome, Path]] = []
    ready = [item for b in batches for item in b.ready]
    keep, names, targets = [], [], []
    for i, (path, _) in enumerate(ready):
        target = stored_path(path)
        try:
            names.append(service.check_filepath(stored_name(target), "filepath"))
        except BogvError as exc:
            outcomes.append((Outcome(path, "failed", exc.message), path))
            continue
        keep.append(i)
        targets.append(target)
    if not keep:
        return outcomes
    vectors = np.concatenate([b.vectors for b in batches])
    kept = [ready[i] for i in keep]
    try:
        added = service.add_vectors(vectors[keep], [
            Incoming.prepared(p, None, name) for (_, p), name in zip(kept, names, strict=True)])
    except BogvError as exc:
        return outcomes + [(Outcome(path, "failed", exc.message), path) for path, _ in kept]
    return outcomes + [
        (Outcome(path, "added" if a.created else "skipped",
                 "" if a.created else "already indexed", a.id), target)
        for (path, _), target, a in zip(kept, targets, added, strict=True)]


def start_import(service: Service, stop: threading.Event) -> threading.Thread | None:
    """The API's start-up import of IMAGE_INC_PATH into IMAGE_POOL_PATH, in a thread of
    its own; replicas sharing the folder take turns by its lease (``bogv.lease``). ``stop``
    ends it early when the app shuts down."""
    settings = service.settings
    folder = settings.image_inc_path
    if folder is None:
        return None

    def work() -> None:
        if not folder.is_dir():
            startup_log.warning("IMAGE_INC_PATH %s is not a folder; nothing imported", folder)
            return
        lease = FolderLease(folder, ttl=settings.import_lease_ttl)
        try:
            if not lease.acquire(stop):
                startup_log.info("start-up import of %s: another replica is importing it (%s); "
                         "skipped here", folder, lease.other)
                return
            summary = import_folder(service, folder, move_to=settings.image_pool_path,
                                    stop=stop)
            startup_log.info("start-up import of %s: %d added, %d skipped, %d failed", folder,
                     summary.added, summary.skipped, summary.failed)
        except Exception:
            startup_log.exception("start-up import failed")
        finally:
            lease.release()

    thread = threading.Thread(target=work, name="bogv-startup-import", daemon=True)
    thread.start()
    return thread
