"""Bulk import beyond one process: worker processes on this machine, or a Ray cluster.

One pipeline, two executors. Workers read a batch of files, hash, decode and embed them
(``EmbedBatch``, one onnxruntime session per worker); this process inserts the results in
batches through ``Service.add_vectors``, so workers never need to reach Milvus (Milvus Lite
could not be shared with them anyway) and idempotence stays in one place.

- ``processes``: a spawn-started process pool (fork would copy gRPC and onnxruntime threads).
- ``ray``: Ray Data, ``from_items(paths) -> map_batches(EmbedBatch) -> iter_batches``,
  streaming, on the cluster ``ray.init()`` finds (``RAY_ADDRESS``) or a local one. Ray is the
  optional extra ``bogv[ray]``; the files must be readable at the same path on every node.

Resumable: files whose path is already stored are skipped before anything is read, and a
file stored under another path is skipped by content when its vector arrives.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Literal

import numpy as np

from bogv.config import Settings
from bogv.errors import BogvError, InvalidParameter
from bogv.ingest import Outcome, Summary
from bogv.model.descriptor import DIM
from bogv.model.embedder import Embedder
from bogv.service import Incoming, Service, prepare

__all__ = ["EmbedBatch", "Executor", "bulk_import"]

log = logging.getLogger(__name__)

Executor = Literal["processes", "ray"]
Batch = dict[str, np.ndarray]
"""Ray Data's numpy batch format: column name -> array, one row per file."""


class EmbedBatch:
    """Worker side: ``{"path"}`` in; ``{"path", "md5", "sha256", "vector", "thumbnail",
    "keypoints", "stars", "error"}`` out.

    A failed file keeps its row with a reason in ``error`` (and a zero vector), so one bad
    file never fails a batch. Built once per worker process or Ray actor.
    """

    def __init__(self, settings: dict[str, Any], threads: int = 1) -> None:
        self.settings = Settings.model_validate(settings)
        self.embedder = Embedder(self.settings.model_cache, threads=threads,
                                 precision=self.settings.precision)

    def __call__(self, batch: Batch) -> Batch:
        paths = [str(p) for p in batch["path"]]
        out: Batch = {"path": np.array(paths, dtype=object),
                      "md5": np.full(len(paths), "", dtype=object),
                      "sha256": np.full(len(paths), "", dtype=object),
                      "thumbnail": np.full(len(paths), None, dtype=object),
                      "keypoints": np.full(len(paths), b"", dtype=object),
                      "stars": np.full(len(paths), b"", dtype=object),
                      "error": np.full(len(paths), "", dtype=object),
                      "vector": np.zeros((len(paths), DIM), np.float32)}
        tensors, rows = [], []
        for i, path in enumerate(paths):
            try:
                data = Path(path).read_bytes()
                prepared = prepare(data, self.settings)
            except OSError as exc:
                out["error"][i] = f"cannot read: {exc.strerror or exc}"
                continue
            except BogvError as exc:
                out["error"][i] = exc.message
                continue
            out["md5"][i], out["sha256"][i] = prepared.md5, prepared.sha256
            out["thumbnail"][i] = prepared.thumbnail
            out["keypoints"][i] = prepared.keypoints
            out["stars"][i] = prepared.stars
            tensors.append(prepared.tensor)
            rows.append(i)
        if tensors:
            out["vector"][rows] = self.embedder.embed_tensors(np.stack(tensors))
        return out


_WORKER: EmbedBatch | None = None
"""The process pool's per-process embedder (set by ``_init_worker`` in each child)."""


def _init_worker(settings: dict[str, Any], threads: int) -> None:
    global _WORKER
    _WORKER = EmbedBatch(settings, threads)


def _embed_in_worker(paths: list[str]) -> Batch:
    assert _WORKER is not None
    return _WORKER({"path": np.array(paths, dtype=object)})


def _chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


def _run_processes(settings: dict[str, Any], paths: list[str], workers: int,
                   batch: int) -> Iterator[Batch]:
    threads = max(1, (multiprocessing.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_init_worker, initargs=(settings, threads)) as pool:
        yield from pool.map(_embed_in_worker, _chunks(paths, batch))


def _run_ray(settings: dict[str, Any], paths: list[str], workers: int,
             batch: int) -> Iterator[Batch]:
    try:
        import ray
    except ImportError as exc:
        raise InvalidParameter("--ray needs the optional extra: pip install 'bogv[ray]'",
                               field="ray") from exc
    started = not ray.is_initialized()
    if started:
        ray.init(log_to_driver=False, include_dashboard=False)
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False
        blocks = min(len(paths), max(workers, -(-len(paths) // batch)))
        dataset = ray.data.from_items([{"path": p} for p in paths], override_num_blocks=blocks)
        embedded = dataset.map_batches(EmbedBatch, fn_constructor_kwargs={"settings": settings},
                                       batch_size=batch, batch_format="numpy",
                                       concurrency=workers, num_cpus=1)
        yield from embedded.iter_batches(batch_size=batch, batch_format="numpy",
                                         prefetch_batches=2)
    finally:
        if started:
            ray.shutdown()


def _stored_paths(service: Service, paths: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(paths, 1000):
        found.update(r.filepath for r in service.store.with_filepaths(chunk))
    return found


def bulk_import(service: Service, files: Iterable[Path], *, executor: Executor,
                workers: int = 2,
                on_outcome: Callable[[Outcome], None] | None = None) -> Summary:
    """Index ``files`` (key = MD5, filepath = the resolved path) with parallel workers."""
    paths = [str(p.resolve()) for p in files]
    summary = Summary()

    def emit(outcome: Outcome) -> None:
        summary.count(outcome)
        if on_outcome is not None:
            on_outcome(outcome)

    done = _stored_paths(service, paths)
    for path in (p for p in paths if p in done):
        emit(Outcome(Path(path), "skipped", "already indexed"))
    todo = [p for p in paths if p not in done]
    if not todo:
        return summary
    run = _run_ray if executor == "ray" else _run_processes
    # Only what a worker needs: credentials never travel to Ray workers.
    settings = service.settings.model_dump(mode="json", include={
        "data_dir", "model_dir", "max_pixels", "max_frames"})
    for batch in run(settings, todo, workers, service.settings.batch_size):
        ok = np.flatnonzero(batch["error"] == "")
        for i in np.flatnonzero(batch["error"] != ""):
            emit(Outcome(Path(batch["path"][i]), "failed", str(batch["error"][i])))
        if not len(ok):
            continue
        try:
            added = service.add_vectors(batch["vector"][ok], [
                Incoming(batch["md5"][i], batch["sha256"][i], None, batch["path"][i],
                         batch["thumbnail"][i], batch["keypoints"][i], batch["stars"][i])
                for i in ok])
        except BogvError as exc:
            for i in ok:
                emit(Outcome(Path(batch["path"][i]), "failed", exc.message))
            continue
        for i, a in zip(ok, added, strict=True):
            emit(Outcome(Path(batch["path"][i]), "added" if a.created else "skipped",
                         "" if a.created else "already indexed", a.id))
    return summary
