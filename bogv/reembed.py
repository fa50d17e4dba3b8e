"""Model migration: re-embed every record into a new collection, then move the name over.

A collection is stamped with the model that made its vectors and bogv refuses to mix two
models, so a new model means a new collection. ``bogv reembed`` builds it beside the old
one, keeping every record's id, key and filepath, while the old collection goes on serving
searches; then it moves the collection name over in one step (``catalog.point``: a Milvus
alias on a server). Replicas keep the collection they opened, so each one serves one model
until it is restarted with the new version.

The vectors cannot be converted, so the images are read again: from the stored filepath
when that file still has the stored SHA-256, else from any file with that content below the
``--images`` folders. Records whose bytes are nowhere (uploads whose files were not kept,
URLs) are reported; the switch waits for them unless ``allow_missing`` drops them.

Resumable and incremental: records already in the new collection are skipped, and each
pass also copies records added to, and removes records deleted from, the old collection
since the previous pass. Passes repeat until one finds nothing to do, then the switch.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bogv import catalog
from bogv.config import Settings
from bogv.errors import BogvError
from bogv.ingest import find_files
from bogv.model.descriptor import DIM
from bogv.model.embedder import Embedder
from bogv.service import KEYPOINTS, STARS, Prepared, prepare
from bogv.sidecar import Sidecar
from bogv.store import Record, Store

__all__ = ["Report", "reembed"]

log = logging.getLogger(__name__)
MAX_PASSES = 5


@dataclass
class Report:
    source: str
    target: str
    copied: int = 0
    removed: int = 0
    missing: list[tuple[int, str]] = field(default_factory=list)
    """(id, filepath) of records whose image bytes were not found."""
    switched: bool = False


def _hash_folders(folders: Iterable[Path]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in folders:
        for path in find_files(folder):
            try:
                found.setdefault(hashlib.sha256(path.read_bytes()).hexdigest(), path)
            except OSError:
                continue
    return found


def _bytes_of(record: Record, by_hash: dict[str, Path]) -> bytes | None:
    for path in (Path(record.filepath), by_hash.get(record.sha256)):
        if path is None:
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if hashlib.sha256(data).hexdigest() == record.sha256:
            return data
    return None


class _Migration:
    def __init__(self, old: Store, new: Store, embedder: Embedder, settings: Settings,
                 by_hash: dict[str, Path], on_copied: Callable[[int], None] | None) -> None:
        self.old, self.new, self.embedder, self.settings = old, new, embedder, settings
        self.by_hash, self.on_copied = by_hash, on_copied
        self.files = Sidecar(settings.record_path)
        self.missing: dict[int, str] = {}

    def copy_pass(self) -> int:
        """Embed into the new collection what the old one has and the new one lacks."""
        copied = 0
        for page in self.old.scan(batch=self.settings.batch_size * 8):
            have = {r.id for r in self.new.with_ids([r.id for r in page])}
            todo = [r for r in page if r.id not in have and r.id not in self.missing]
            for start in range(0, len(todo), self.settings.batch_size):
                copied += self._copy(todo[start:start + self.settings.batch_size])
        return copied

    def _copy(self, records: list[Record]) -> int:
        ready: list[tuple[Record, Prepared]] = []
        for record in records:
            data = _bytes_of(record, self.by_hash)
            try:
                prepared = (prepare(data, self.settings, thumbnail=False)
                            if data is not None else None)
            except BogvError:  # the stored bytes no longer decode (e.g. a newer size limit)
                prepared = None
            if prepared is None:
                self.missing[record.id] = record.filepath
                continue
            ready.append((record, prepared))
        if not ready:
            return 0
        vectors = self.embedder.embed_tensors(np.stack([p.tensor for _, p in ready]))
        for record, prepared in ready:  # before the rows: a searchable row has its points
            self.files.save(record.id, KEYPOINTS, prepared.keypoints)
            if prepared.stars:
                self.files.save(record.id, STARS, prepared.stars)
        self.new.insert([(r.key, r.filepath, r.sha256) for r, _ in ready], vectors,
                        ids=[r.id for r, _ in ready])
        if self.on_copied is not None:
            self.on_copied(len(ready))
        return len(ready)

    def prune_pass(self) -> int:
        """Remove from the new collection what was deleted from the old one meanwhile."""
        gone: list[int] = []
        for page in self.new.scan(batch=self.settings.batch_size * 8):
            ids = [r.id for r in page]
            alive = {r.id for r in self.old.with_ids(ids)}
            gone.extend(i for i in ids if i not in alive)
        for i in list(self.missing):
            if not self.old.with_ids([i]):
                del self.missing[i]
        return len(self.new.delete_ids(gone))


def reembed(settings: Settings, embedder: Embedder, *, images: Iterable[Path] = (),
            source: str | None = None, allow_missing: bool = False,
            on_copied: Callable[[int], None] | None = None) -> Report:
    """Build ``COLLECTION`` anew with ``embedder``'s model and switch the name to it."""
    uri, name = settings.store_uri, settings.collection
    new = Store.from_settings(settings, model_id=embedder.model_id, dim=DIM, alias=False,
                              collection=catalog.physical_name(name, embedder.model_id))
    found = new.locate(source or name)
    if found is None:
        new.close()
        raise BogvError(f"no collection '{source or name}' at {uri}")
    current, stamp = found
    old = Store.from_settings(settings, model_id=stamp, dim=DIM, collection=current,
                              alias=False)
    target = new.name
    report = Report(current, target)
    try:
        work = _Migration(old, new, embedder, settings, _hash_folders(images), on_copied)
        for _ in range(MAX_PASSES):
            copied, removed = work.copy_pass(), work.prune_pass()
            report.copied += copied
            report.removed += removed
            if not copied and not removed:
                break
        report.missing = sorted(work.missing.items())
        if current != target and (allow_missing or not report.missing):
            new.take_name(name)
            report.switched = True
            log.info("collection %s now means %s (%s)", name, target, embedder.model_id)
    finally:
        old.close()
        new.close()
    return report
