"""Small JPEG thumbnails of stored images, one file per record id under ``THUMB_DIR``.

The page shows results with thumbnails, and a record's ``filepath`` is often not readable by
the service (a client's name, a URL gone stale), so a thumbnail is made from the decoded
image at add time and kept until the record is deleted.

Why files and not a Milvus field: Milvus keeps every scalar field of a loaded collection in
memory, so ~8 KB thumbnails of 100k records would cost ~0.8 GB of RAM (more as base64 in a
VARCHAR; Milvus 2.5 has no binary scalar type) for bytes that are only read one at a time,
by id. Files cost disk only and are sent by the OS. Ids are never reused, so a thumbnail
never changes and clients may cache it for good. With several API replicas on one Milvus
server, point ``THUMB_DIR`` at a shared volume.

A failed write is logged, never fatal: the record is already stored, and a missing
thumbnail only shows as a placeholder.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path

from PIL import Image

__all__ = ["SIDE", "Thumbs", "make_thumbnail"]

log = logging.getLogger(__name__)

SIDE = 256
"""Longest side in pixels: sharp in a ~128 CSS px grid cell on a 2x screen."""
_QUALITY = 80


def make_thumbnail(img: Image.Image) -> bytes:
    """A JPEG no larger than ``SIDE`` on its longest side (never enlarged)."""
    scale = SIDE / max(img.size)
    small = img if scale >= 1 else img.resize(
        (max(round(img.width * scale), 1), max(round(img.height * scale), 1)),
        Image.Resampling.BILINEAR, reducing_gap=2.0)  # cheap next to decoding: imports call it
    buf = io.BytesIO()
    small.save(buf, "JPEG", quality=_QUALITY)
    return buf.getvalue()


class Thumbs:
    """Thumbnail files named by record id, spread over 256 folders to keep each small."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, id_: int) -> Path:
        return self.root / f"{id_ & 0xFF:02x}" / f"{id_}.jpg"

    def save(self, id_: int, data: bytes) -> None:
        path = self.path(id_)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(data)
            tmp.replace(path)  # readers never see half a file
        except OSError as exc:
            log.warning("thumbnail of record %d not saved: %s", id_, exc)
            with suppress(OSError):
                tmp.unlink(missing_ok=True)

    def find(self, id_: int) -> Path | None:
        path = self.path(id_)
        return path if path.is_file() else None

    def delete(self, ids: Iterable[int]) -> None:
        for id_ in ids:
            try:
                self.path(id_).unlink(missing_ok=True)
            except OSError as exc:
                log.warning("thumbnail of record %d not removed: %s", id_, exc)
