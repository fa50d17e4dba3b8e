"""Hostile files, made on the fly: bombs, impostors and polyglots (no binaries in the repo)."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

from PIL import Image

from .images import encode, photo

__all__ = [
    "eps", "gif_frames", "gif_js_polyglot", "html", "ico", "jpeg_declaring", "pdf",
    "png_declaring", "png_html_polyglot", "png_text_bomb", "svg", "tiff_pages", "zip_of",
]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def _png(width: int, height: int, *extra: bytes, idat: bytes | None = None) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    pixels = idat if idat is not None else zlib.compress(b"\0" * (width + 1) * min(height, 4))
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + b"".join(extra)
            + _chunk(b"IDAT", pixels) + _chunk(b"IEND", b""))


def png_declaring(width: int, height: int) -> bytes:
    """A few hundred bytes claiming ``width`` x ``height`` pixels: a decompression bomb."""
    return _png(width, height, idat=zlib.compress(b"\0" * 4096, 9))


def png_text_bomb() -> bytes:
    """A valid 4x4 PNG whose compressed text chunk inflates to 64 MB."""
    text = b"Comment\0\0" + zlib.compress(b"A" * 64_000_000, 9)
    return _png(4, 4, _chunk(b"zTXt", text))


def png_html_polyglot() -> bytes:
    """A PNG signature and header followed by an HTML page instead of pixels."""
    return _png(16, 16, idat=b"<html><script>alert(document.domain)</script></html>")


def jpeg_declaring(width: int, height: int) -> bytes:
    """A real JPEG whose frame header is patched to claim another size."""
    data = bytearray(encode(photo("coffee").resize((64, 48)), quality=80))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def gif_frames(count: int) -> bytes:
    """A valid GIF of ``count`` 1x1 frames (15 bytes each), built byte by byte."""
    header = b"GIF89a" + struct.pack("<HH", 1, 1) + bytes([0x80, 0, 0]) + b"\0\0\0\xff\xff\xff"
    frame = b"\x2c" + struct.pack("<HHHH", 0, 0, 1, 1) + b"\0" + b"\x02\x02\x44\x01\x00"
    return header + frame * count + b"\x3b"


def gif_js_polyglot() -> bytes:
    """The classic GIF/JavaScript polyglot: a GIF header whose size bytes open a comment."""
    return b"GIF89a/*\x00\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00*/=1;alert(document.cookie);"


def tiff_pages(count: int) -> bytes:
    pages = [Image.new("L", (1, 1), i % 256) for i in range(count)]
    buf = io.BytesIO()
    pages[0].save(buf, "TIFF", save_all=True, append_images=pages[1:])
    return buf.getvalue()


def svg() -> bytes:
    return (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="64" '
            b'height="64"><image href="file:///etc/passwd"/><rect width="64" height="64"/>'
            b"</svg>")


def pdf() -> bytes:
    return (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages"
            b"/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")


def eps() -> bytes:
    """PostScript that Pillow would hand to Ghostscript if EPS were allowed."""
    return (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n"
            b"(/etc/passwd) (r) file pop showpage\n")


def ico() -> bytes:
    """A real image in a format outside bogv's allow-list."""
    return encode(photo("coffee").resize((32, 32)), "ICO")


def zip_of(data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("coffee.jpg", data)
    return buf.getvalue()


def html() -> bytes:
    return b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>"
