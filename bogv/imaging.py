"""Bytes to an RGB ``PIL.Image``: the one place that decodes images.

The format is judged by the bytes, never the file name, and only raster formats on an
allow-list are opened (Pillow would otherwise try EPS through Ghostscript, or PSD, or ICO).
The decode is forced here so that a corrupt file fails as ``NotAnImage`` at the edge rather
than inside the model. JPEGs are decoded at a reduced DCT scale (``draft``) when the caller
only needs a small image: most of ingest time is decoding full-size photos otherwise.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager

from PIL import Image, ImageOps, UnidentifiedImageError

from bogv.errors import NotAnImage, TooLarge

try:  # HEIC/HEIF where the optional decoder is installed
    from pillow_heif import register_heif_opener

    register_heif_opener()
    _HEIF: tuple[str, ...] = ("HEIF",)
except ImportError:  # pragma: no cover - depends on the install
    _HEIF = ()

__all__ = ["FORMATS", "decode"]

Image.init()
FORMATS = tuple(f for f in ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "AVIF", *_HEIF)
                if f in Image.OPEN)
"""Pillow format names bogv accepts where this install can decode them; anything else is 415."""


@contextmanager
def _pillow_errors(max_pixels: int) -> Iterator[None]:
    """Translate Pillow's exceptions into bogv errors, in one place."""
    try:
        yield
    except Image.DecompressionBombError as exc:
        raise TooLarge(f"image has more than {max_pixels} pixels (MAX_PIXELS)",
                       field="file") from exc
    except UnidentifiedImageError as exc:
        raise NotAnImage("not an image in a supported format "
                         f"({', '.join(FORMATS)})", field="file") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise NotAnImage(f"image data is corrupt or truncated: {exc}", field="file") from exc


def decode(data: bytes, *, max_pixels: int, max_frames: int = 1000,
           min_side: int = 0, min_long: int = 0) -> Image.Image:
    """Decode the first frame of ``data`` to an upright RGB image.

    ``min_side`` > 0 lets JPEG decoding drop resolution while both sides stay at least
    that large, and the longer side at least ``min_long``. EXIF orientation is applied;
    transparency is composited onto white, since transparent pixels often hide arbitrary
    colours.
    """
    # The size is checked from the header, before any pixel is decoded. Pillow's own bomb
    # check (a global) stays at its default and only matters for MAX_PIXELS above it.
    if not data:
        raise NotAnImage("the image is empty (0 bytes)", field="file")
    with _pillow_errors(max_pixels):
        img = Image.open(io.BytesIO(data), formats=FORMATS)
        if img.width * img.height > max_pixels:
            raise TooLarge(f"image is {img.width}x{img.height}, over {max_pixels} pixels "
                           "(MAX_PIXELS)", field="file")
        if _more_frames_than(img, data, max_frames):
            raise TooLarge(f"image has more than {max_frames} frames (MAX_FRAMES)",
                           field="file")
        if min_side and img.format in ("JPEG", "MPO"):
            long = max(min_long, min_side)
            img.draft("RGB", (long, min_side) if img.width >= img.height else (min_side, long))
        img.load()
        return _to_rgb(ImageOps.exif_transpose(img))


def _more_frames_than(img: Image.Image, data: bytes, limit: int) -> bool:
    """Whether the image has more than ``limit`` frames, at a cost bounded by ``limit``.

    PNG, WebP, AVIF and HEIF declare their frame count in a header. GIF and TIFF do not,
    and Pillow's ``n_frames`` walks the whole file to count (about 11 s for a 50 MB GIF of
    tiny frames), so those are counted only up to ``limit + 1``.
    """
    if img.format == "GIF":
        return _gif_frames(data, stop=limit + 1) > limit
    if img.format == "TIFF":  # pages are a chain of directories; seeking reads no pixels
        try:
            img.seek(limit)
        except EOFError:
            return False
        finally:
            img.seek(0)
        return True
    return int(getattr(img, "n_frames", 1)) > limit


def _gif_frames(data: bytes, *, stop: int) -> int:
    """Image descriptors in a GIF, counted by walking its blocks until ``stop``."""
    if len(data) < 13:
        return 0
    pos = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)  # global colour table
    frames = 0
    while pos < len(data) and frames < stop:
        if data[pos] == 0x2C:  # image: 10-byte descriptor, local colour table, LZW code size
            frames += 1
            flags = data[pos + 9] if pos + 9 < len(data) else 0
            pos += 11 + ((3 << ((flags & 7) + 1)) if flags & 0x80 else 0)
        elif data[pos] == 0x21:  # extension: introducer and label
            pos += 2
        else:  # trailer or garbage
            break
        while pos < len(data) and data[pos]:  # data sub-blocks up to the 0 terminator
            pos += data[pos] + 1
        pos += 1
    return frames


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        img = img.point(lambda v: v * (1 / 256)).convert("L")
    return img.convert("RGB")
