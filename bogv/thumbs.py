"""Thumbnails: what the page shows of a stored image whose file the service cannot read.

A record's ``filepath`` is often not readable by the service (a client's name, a URL gone
stale), so a small JPEG is made from the decoded image at add time and kept beside the
record (``bogv.sidecar``) until it is deleted.
"""

from __future__ import annotations

import io

from PIL import Image

__all__ = ["SIDE", "make_thumbnail"]

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
