"""Which of two copies of one picture was JPEG-compressed harder: a re-compressed copy.

Re-saving a picture at a lower JPEG quality keeps all of it in view, so at thumbnail size
nothing tells the re-compressed copy from its original (``bogv.model.edits``), yet no one
keeps it when the original is there. Full size it carries a trace that runs one way only:
JPEG quantises each 8 x 8 block of the picture on its own, so a hard compression removes
fine detail *inside* the blocks of its grid and leaves steps *between* them, and saving it
again, at any quality, keeps both. Blocks shifted by half a block straddle those steps and
keep their fine detail: the ratio of the two (``_blocking``) is near 1 for a picture never
compressed hard, and grows with how hard it was.

A ratio of one image alone says little (a flat picture, text drawn over it, a blur all move
it), so two copies are compared block by block, on the blocks where their pixels agree and
both have detail. Measured on the same-size copies of ``bench/duplicates/duplicates.py``
(every image stored as a JPEG at quality 92, so every copy was saved again after its edit):
a copy re-compressed at quality 30 (alone, or before or after another edit) against one of
the same picture that was not, 1.47-5.17 times its blocking in 13 of 14 pairs (1.33 once);
an original against any of its copies at most 1.14 (109 pairs); other copies at most 1.39,
but for a copy with its contrast lowered against a brightened one (1.60, two edits). The
six test photos saved at quality 75 against 92: 1.40-1.67; saved at 92 against a lossless
copy 1.00-1.43, and the lossless copy against it 0.70-1.00.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

__all__ = ["Grid", "grid", "recompressed"]

REGION = 1024
"""Side of the central part of an image that is compared (aligned on its JPEG grid): enough
blocks (16k) to judge, at a bounded cost for a photo of many megapixels."""
_BLOCK = 8
_FINE = 5
"""Coefficients of a block's 2-D DCT counted as fine detail: those whose two frequencies
add up to this or more (of 0-14). Quality 30 quantises them to nothing."""
_BUSY = 1.0
"""Fine detail (mean absolute DCT coefficient, grey levels) a shifted block needs for its
ratio to count: flat blocks have none to lose."""
_FLOOR = 0.25
"""Least fine detail an aligned block is taken to have, so that a block quantised flat
gives a large, finite ratio."""
_AGREE = 6.0
"""Mean absolute difference (grey levels) under which two copies' blocks show the same
pixels: not text or a sticker drawn over one of them."""
_COMPARED = 40
"""Blocks two copies must agree on for their blocking to be compared: with fewer, other
copies reached 1.5-1.6 (a brightened drawing, 22-33 blocks)."""
HARDER = 1.45
"""Times the other copy's blocking at which a copy was compressed harder than it."""

_DCT = np.array([[np.sqrt((1 if k == 0 else 2) / _BLOCK)
                  * np.cos((2 * x + 1) * k * np.pi / (2 * _BLOCK)) for x in range(_BLOCK)]
                 for k in range(_BLOCK)], np.float32)
_U, _V = np.meshgrid(range(_BLOCK), range(_BLOCK), indexing="ij")
_HIGH = (_U + _V) >= _FINE


@dataclass(frozen=True)
class Grid:
    """What comparing a copy's compression needs: the grey pixels of its central part on
    the shifted grid (``grey``), and per shifted block its ``fine`` detail and its
    ``blocking`` (that detail over the aligned blocks' below it)."""

    grey: np.ndarray
    fine: np.ndarray
    blocking: np.ndarray


def _blocks(grey: np.ndarray) -> np.ndarray:
    h, w = grey.shape[0] // _BLOCK * _BLOCK, grey.shape[1] // _BLOCK * _BLOCK
    return (grey[:h, :w].reshape(h // _BLOCK, _BLOCK, w // _BLOCK, _BLOCK)
            .transpose(0, 2, 1, 3))


def _fine(grey: np.ndarray) -> np.ndarray:
    coefficients = _DCT @ _blocks(grey) @ _DCT.T
    fine: np.ndarray = np.abs(coefficients[..., _HIGH]).mean(axis=-1)
    return fine


def grid(data: bytes, max_pixels: int) -> Grid | None:
    """An image file's ``Grid``, None when it cannot be read (or has more than
    ``max_pixels``). Taken as stored, without its EXIF turn: the grid is the file's."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > max_pixels:
                return None
            left = max(0, (img.width - REGION) // 2) // _BLOCK * _BLOCK
            top = max(0, (img.height - REGION) // 2) // _BLOCK * _BLOCK
            part = img.crop((left, top, min(img.width, left + REGION),
                             min(img.height, top + REGION))).convert("L")  # that part alone
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    grey = np.asarray(part, np.float32)
    half = _BLOCK // 2
    shifted = grey[half:, half:]
    fine, aligned = _fine(shifted), _fine(grey)
    rows, cols = fine.shape
    blocking = fine / np.maximum(aligned[:rows, :cols], _FLOOR)
    return Grid(shifted[:rows * _BLOCK, :cols * _BLOCK].astype(np.uint8), fine, blocking)


def recompressed(a: Grid, b: Grid) -> bool:
    """Whether copy ``a`` was compressed ``HARDER`` than copy ``b`` of the same picture at
    the same size; False when too few of their blocks show the same pixels."""
    if a.grey.shape != b.grey.shape:
        return False
    apart = _blocks(cv2.absdiff(a.grey, b.grey))  # on the uint8 pixels, no float copies
    same = (apart.mean(axis=(-1, -2)) < _AGREE) & (a.fine > _BUSY) & (b.fine > _BUSY)
    if same.sum() < _COMPARED:
        return False
    return bool(np.median(a.blocking[same]) > HARDER * np.median(b.blocking[same]))
