"""Per-record files beside the vectors, under ``RECORD_DIR``: thumbnail, keypoints, and the
stars of a point field (``bogv.model.stars``).

Why files and not Milvus fields: Milvus keeps every scalar field of a loaded collection in
memory, so the ~8 KB thumbnail and ~9 KB of keypoints of 100k records would cost ~1.7 GB
of RAM (more as base64 in a VARCHAR; Milvus 2.5 has no binary scalar type) for bytes that
are only read a few at a time, by id: one thumbnail for the page, the keypoints of a
search's five best candidates. Files cost disk only. Ids are never reused, so a file never
changes and clients may cache a thumbnail for good. With several API replicas on one Milvus
server, point ``RECORD_DIR`` at a shared volume.

A failed write is logged, never fatal: the record is already stored. A missing thumbnail
shows as a placeholder; missing keypoints only mean a candidate's copy label rests on its
similarity alone.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path

__all__ = ["Sidecar"]

log = logging.getLogger(__name__)

_CHUNK = 1 << 16
"""Bytes read at a time: a thumbnail or a keypoint file (~8-9 KB) in one read."""


def _shard(id_: int) -> str:
    """The folder of a record's files, one of 256."""
    return f"{id_ & 0xFF:02x}"


class Sidecar:
    """Files named ``<id>.<kind>``, spread over 256 folders by id to keep each small."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._root = str(root)

    def _name(self, id_: int, kind: str) -> str:
        """Where a file is, as a string: filling the index of pieces (``bogv.pieces``)
        builds one for every stored image, and ``Path`` joins cost 4.5 us each."""
        return f"{self._root}/{_shard(id_)}/{id_}.{kind}"

    def path(self, id_: int, kind: str) -> Path:
        return Path(self._name(id_, kind))

    def save(self, id_: int, kind: str, data: bytes) -> None:
        path = self.path(id_, kind)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(data)
            tmp.replace(path)  # readers never see half a file
        except OSError as exc:
            log.warning("%s of record %d not saved: %s", kind, id_, exc)
            with suppress(OSError):
                tmp.unlink(missing_ok=True)

    def find(self, id_: int, kind: str) -> Path | None:
        path = self.path(id_, kind)
        return path if path.is_file() else None

    def read(self, id_: int, kind: str) -> bytes | None:
        # The index of pieces reads every stored image's keypoints, the duplicate scan
        # a dozen an image: by the file descriptor, 7.5 us a file against 25 us by
        # ``Path.read_bytes``.
        try:
            fd = os.open(self._name(id_, kind), os.O_RDONLY)
            try:
                chunks = []
                while chunk := os.read(fd, _CHUNK):
                    chunks.append(chunk)
                return b"".join(chunks)
            finally:
                os.close(fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("%s of record %d not read: %s", kind, id_, exc)
            return None

    def delete(self, ids: Iterable[int]) -> None:
        """Remove every file of these records, whatever its kind (or version: a ``bogv
        reembed`` leaves the old keypoints' files). Each folder they are in is listed once:
        a glob per record read its whole folder too, 0.9-1.1 ms a record among a 100k
        collection's ~900 files a folder, most of "Keep all suggested"'s time."""
        by_folder: dict[str, set[str]] = defaultdict(set)
        for id_ in ids:
            by_folder[_shard(id_)].add(f"{id_}.")
        for shard, prefixes in by_folder.items():
            folder, wanted = f"{self._root}/{shard}", tuple(prefixes)
            try:
                # the names only, matched in C: DirEntry objects and a split per file took
                # 0.7 ms a folder at 100k
                doomed = [f"{folder}/{name}" for name in os.listdir(folder)
                          if name.startswith(wanted)]
            except FileNotFoundError:
                continue  # no file of these records was ever saved
            except OSError as exc:
                log.warning("files of records in %s not removed: %s", shard, exc)
                continue
            for path in doomed:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass  # another replica's delete of the same record
                except OSError as exc:
                    log.warning("%s not removed: %s", path, exc)
