"""Folder import: walk, skip what is stored, decode in threads, embed in batches, insert.

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
import shutil
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from bogv.errors import BogvError
from bogv.service import Prepared, Service, check_filepath

__all__ = ["Outcome", "Summary", "find_files", "import_folder", "stored_name"]

log = logging.getLogger(__name__)


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
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(root) / f for f in sorted(files) if not f.startswith("."))
    return found


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
class _Loaded:
    path: Path
    md5: str
    sha256: str
    prepared: Future[Prepared] | None = None


def _read(path: Path) -> tuple[Path, bytes | OSError]:
    try:
        return path, path.read_bytes()
    except OSError as exc:
        return path, exc


def import_folder(service: Service, folder: Path, *, move_to: Path | None = None,
                  on_outcome: Callable[[Outcome], None] | None = None,
                  stop: threading.Event | None = None, workers: int | None = None,
                  files: Sequence[Path] | None = None) -> Summary:
    """Index every file below ``folder`` (key = MD5, filepath = its path) and report."""
    folder = folder.resolve()
    paths = [p.resolve() for p in files] if files is not None else find_files(folder)
    batch = service.settings.batch_size
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

    with ThreadPoolExecutor(workers or service.settings.workers) as pool:
        for chunk, early in _pipeline(service, pool, paths, batch, stop):
            for outcome in early:
                emit(outcome, stored_path(outcome.path))
            for outcome, target in _embed_chunk(service, chunk, stored_path):
                emit(outcome, target)
    return summary


def _pipeline(service: Service, pool: ThreadPoolExecutor, paths: Sequence[Path], batch: int,
              stop: threading.Event | None) -> Iterator[tuple[list[_Loaded], list[Outcome]]]:
    """Yield chunks whose decoding was started one chunk ahead of the model."""
    ahead: deque[tuple[list[_Loaded], list[Outcome]]] = deque()
    for start in range(0, len(paths), batch):
        if stop is not None and stop.is_set():
            break
        loaded, early = [], []
        for path, data in pool.map(_read, paths[start:start + batch]):
            if isinstance(data, OSError):
                early.append(Outcome(path, "failed", f"cannot read: {data.strerror or data}"))
                continue
            loaded.append((path, data, hashlib.md5(data).hexdigest(),
                           hashlib.sha256(data).hexdigest()))
        try:
            stored = {(r.key, r.sha256): r.id for r in
                      service.store.with_contents([item[3] for item in loaded])}
        except BogvError as exc:
            early.extend(Outcome(p, "failed", exc.message) for p, *_ in loaded)
            loaded = []
            stored = {}
        todo = []
        for path, data, md5, sha in loaded:
            if (md5, sha) in stored:
                early.append(Outcome(path, "skipped", "already indexed", stored[(md5, sha)]))
            else:
                todo.append(_Loaded(path, md5, sha, pool.submit(service.prepare, data)))
        ahead.append((todo, early))
        if len(ahead) > 1:
            yield ahead.popleft()
    yield from ahead


def _embed_chunk(service: Service, chunk: list[_Loaded],
                 stored_path: Callable[[Path], Path]) -> list[tuple[Outcome, Path]]:
    ready: list[tuple[_Loaded, Prepared, Path]] = []
    outcomes = []
    for item in chunk:
        assert item.prepared is not None
        try:  # a path the store cannot hold fails its own file, not the whole batch
            target = stored_path(item.path)
            check_filepath(stored_name(target), "filepath")
            ready.append((item, item.prepared.result(), target))
        except BogvError as exc:
            outcomes.append((Outcome(item.path, "failed", exc.message), item.path))
    if not ready:
        return outcomes
    try:
        added = service.add_prepared([p for _, p, _ in ready], [None] * len(ready),
                                     [stored_name(target) for _, _, target in ready])
    except BogvError as exc:
        return outcomes + [(Outcome(item.path, "failed", exc.message), item.path)
                           for item, _, _ in ready]
    return outcomes + [
        (Outcome(item.path, "added" if a.created else "skipped",
                 "" if a.created else "already indexed", a.id), target)
        for (item, _, target), a in zip(ready, added, strict=True)]
