"""Which of two copies of one picture was edited from the other.

A group of copies asks a person which one to keep, and no one keeps the captioned copy, the
blurred one or the greyscale one when the original is there. Measured alone, nothing tells
an edit: a busy photo holds as many letter-like strokes as a caption over a plain one, a
soft picture as little detail as a blurred copy of a sharp one (in the groups of
``bench/duplicates/duplicates.py``, the member least drawn over was the original in 35 of
69, the most detailed in 9). Measured *against the other copy* of the same picture, each
edit leaves a trace that runs one way only:

- **drawn over** (a caption, a logo, a sticker, a timestamp, an app's bar): the two copies
  disagree in one part, and there this one has the sharper strokes;
- **blurred**: everywhere less fine detail than the other, with no such part;
- **greyscale**: no colour where the other has some;
- **washed out**: its grey levels pressed together with its blacks lifted: contrast lowered,
  or brightened until its whites clip (a brightened copy that does not clip is only scaled,
  and shows nothing).

The copies are compared as the thumbnails kept for the page, squeezed to ``SIDE`` px, so
only copies framed alike (the whole picture each, as is or mirrored) are judged: a crop, a
rotated copy or a screenshot shows nothing here. Re-compression leaves no trace at
thumbnail size (its files tell it, ``bogv.model.compression``), nor does a flip (nothing
is lost). Against its original, 81 of the 167
copies as large in those groups showed an edit, and 1 original of the 167 pairs did."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

__all__ = ["SIDE", "Look", "edits", "look"]

SIDE = 128
_FRAMED = 0.5
"""Correlation under which two copies are not framed alike: nothing is judged."""
_APART = 1.0
"""Disagreement (in standard deviations of grey, softened over a few pixels) that marks
where something was drawn over one copy."""
_PART = 0.01
"""Share of the picture that must disagree so for something to be drawn over it."""
_SHARPER = 1.3
"""How much more fine detail the copy drawn over has where the two disagree: letters and
a sticker's edges are sharper than what they hide. Measured on the groups of
``bench/duplicates/duplicates.py`` (every copy against its original, as large and framed
alike): 60 of 70 copies under text, a logo, an emoji, a timestamp, an app's bar or a
watermark disagree somewhere, and 56 of them have 1.3 times their original's detail there or
more; an original against any of its copies at most 1.47 (once: a caption that also moved
the picture), else under 1.3."""
SHARP_SIDE = 256
"""The side blur is measured at (``Look.sharpness``): the thumbnail's own (``thumbs.SIDE``).
At ``SIDE`` a Gaussian blur scaled to a photo's size is mostly gone: on the groups of
``bench/duplicates/duplicates.py`` (every copy against its original, as large and framed
alike) blurred copies kept 0.48-0.85 of their original's detail there, 6 of 11 under 0.7,
and at 256 px 0.23-0.70."""
_BLURRED = 0.6
"""Fine detail under which, measured against the other copy's at ``SHARP_SIDE`` and with no
part drawn over, a copy is blurred. On those groups: 9 of the 11 blurred copies under it,
the downscaled copies 0.51-0.97 (a loss of detail too), every other copy 0.87 or more, and
no original under 0.68 of a copy's but under a tiled watermark, which adds fine detail
everywhere (0.42; 0.42 at ``SIDE`` too)."""
_CORNER = 0.025
"""Side of the corner squares ``Look.plain_corners`` looks at, as a share of the picture's:
a turn by 8 degrees within the frame fills a triangle in each corner whose legs measure at
least 4.2% of the sides (a 3:2 picture; 6.5% of a square's), so a square of 2.5% of the
side lies inside each."""
_PLAIN = 24.0
"""Grey levels a plain corner spans at most: JPEG's ringing near the turn's seam."""
_GREY = 1.0
"""Colourfulness (90th percentile of CIELAB chroma) under which a copy has no colour:
greyscale copies' thumbnails measured 0.02-0.07."""
_COLOURED = 4.0
"""Colourfulness the other copy must reach for greyscale to be an edit. Taken at the 90th
percentile, a coloured timestamp or emoji over a grey picture (1-2% of it) does not count."""
_ALIKE = 0.9
"""Correlation two copies need for their grey levels to be compared (``washed out``)."""
_FADED = 0.8
"""Slope of one copy's grey levels against the other's under which, with its blacks lifted
by ``_LIFTED`` or more, its grey levels were pressed together: contrast at 0.6 gives
0.60-0.61, brightening by 1.4 0.71-1.37 (under 0.8 only where whites clip)."""
_LIFTED = 4.0
"""Grey levels (of 255) a washed-out copy's blacks are lifted by: lowered contrast lifted
them by 6-87 (pressing towards a mid grey), while an original against a copy whose slope
is under ``_FADED`` measured -1.4 to -0.3."""


@dataclass(frozen=True)
class Look:
    """What comparing a copy needs of its thumbnail, made once however many copies it is
    compared with: ``grey`` at ``SIDE`` x ``SIDE``, the same standardised (``z``) and its
    fine ``detail``, how colourful it is (``chroma``), its mean fine detail at
    ``SHARP_SIDE`` (``sharpness``), and whether each of its corners is plain
    (``plain_corners``: a picture turned within its frame has its fill there)."""

    grey: np.ndarray
    z: np.ndarray
    detail: np.ndarray
    chroma: float
    sharpness: float
    plain_corners: bool


def look(img: Image.Image, whole: Image.Image | None = None) -> Look:
    """A thumbnail as ``edits`` compares it: ``img`` decoded at ``SIDE`` or more, ``whole``
    at its own size (``img`` when not given)."""
    rgb = img.convert("RGB")
    small = cv2.resize(np.asarray(rgb, np.float32) / 255, (SIDE, SIDE),
                       interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2Lab)
    chroma = float(np.percentile(np.hypot(lab[..., 1], lab[..., 2]), 90))
    grey, fine = _grey(rgb, SIDE), _grey(whole or rgb, SHARP_SIDE)
    z = _z(grey)
    return Look(grey, z, _detail(z), chroma, float(_detail(_z(fine)).mean()),
                _plain_corners(fine))


def _plain_corners(grey: np.ndarray) -> bool:
    """Whether the square of ``_CORNER`` of the side in each corner spans at most ``_PLAIN``
    grey levels."""
    n = max(1, round(grey.shape[0] * _CORNER))
    corners = grey[:n, :n], grey[:n, -n:], grey[-n:, :n], grey[-n:, -n:]
    return all(float(c.max() - c.min()) <= _PLAIN for c in corners)


def _grey(img: Image.Image, side: int) -> np.ndarray:
    grey: np.ndarray = cv2.resize(np.asarray(img.convert("L"), np.float32), (side, side),
                                  interpolation=cv2.INTER_AREA)
    return grey


def edits(a: Look, b: Look) -> tuple[str, ...]:
    """What seems done to copy ``a`` that copy ``b`` does not show (see the module's list),
    empty when nothing does or the two are not framed alike."""
    za, da = a.z, a.detail
    other, zb, db = b.grey, b.z, b.detail
    if float((za * zb).mean()) < float((za * zb[:, ::-1]).mean()):
        other, zb, db = other[:, ::-1], zb[:, ::-1], db[:, ::-1]
    alike = float((za * zb).mean())
    if alike < _FRAMED:
        return ()
    found = []
    apart = cv2.GaussianBlur(np.abs(za - zb), (0, 0), 2) > _APART
    drawn = apart.mean() >= _PART
    if drawn and da[apart].mean() > _SHARPER * db[apart].mean():
        found.append("drawn over")
    if not drawn and a.sharpness < _BLURRED * b.sharpness:
        found.append("blurred")
    if not drawn and a.chroma < _GREY <= _COLOURED <= b.chroma:
        found.append("greyscale")
    if alike >= _ALIKE:
        slope = float(np.cov(a.grey.ravel(), other.ravel())[0, 1] / max(other.var(), 1e-6))
        lift = float(a.grey.mean() - slope * other.mean())
        if slope < _FADED and lift >= _LIFTED:
            found.append("washed out")
    return tuple(found)


def _z(grey: np.ndarray) -> np.ndarray:
    z: np.ndarray = (grey - grey.mean()) / max(float(grey.std()), 1e-3)
    return z


def _detail(z: np.ndarray) -> np.ndarray:
    """Fine detail at each pixel: the magnitude of the lightly softened Laplacian."""
    detail: np.ndarray = np.abs(cv2.Laplacian(cv2.GaussianBlur(z, (0, 0), 0.7), cv2.CV_32F))
    return detail
