"""Third stage: do the pixels agree, for copies too small for keypoints?

A 200 px drawing shrunk to 60 px keeps a dozen ORB keypoints, far fewer than a copy needs
(``scoring.COPY_INLIERS``), and a shrunk copy's vector drifts from the original's: on
``bench/quality/quality.py`` 30% downscales were found first 0.95 of the time but labelled copy
only 0.43. Their pixels still agree with the original's once both are shown at the same
size, where another picture of the same kind (two star clusters, two drawings) does not.

So the best candidate's stored thumbnail (``bogv.thumbs``, kept for the page anyway) is
compared with the query in grey, in two steps:

1. Coarse: the query squeezed to ``SIDE`` x ``SIDE`` slides over the thumbnail squeezed to
   sizes from ``SIDE`` to ``GROW`` times it, 4% apart (the whole frame, or a crop keeping
   down to half of it), as is and mirrored. This finds where the query lies in the
   thumbnail.
2. Fine: that part of the thumbnail and the query are compared at up to ``FINE`` px (what
   both still resolve), a few pixels and percent around the coarse answer. At 48 px two
   globular clusters (NGC 2808 and 1851) are the same round blur (0.96); at ``FINE`` px
   their stars are not (0.93), while a shrunk copy keeps 0.99.

The likeness is the fine step's normalised cross-correlation: brightness and contrast do
not move it, blur and recompression barely do at this size. Under ``FINE`` px both sides
are softened by a pixel first (``_SOFTEN``). Both steps compare grey; between them, the
part of the thumbnail the query lies on must not be of another hue (``HUE_APART``): two
small galaxies of different colours are one blur in grey.

Both steps leave out what seems drawn over the query when it says (``pattern(drawn=)``):
text over a photo changes a fifth of its pixels, which no threshold that keeps look-alikes
out forgives, while the rest of the picture still agrees pixel for pixel.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

__all__ = ["ALIGNED", "FINE", "GROW", "HUE_APART", "HUE_SIDE", "SIDE", "Pattern", "aligned",
           "hue", "likeness", "pattern"]

SIDE = 32
GROW = 1.45
"""A crop keeping half of the frame is 1/sqrt(0.5) = 1.41 times smaller than the frame."""
FINE = 96
_SHIFT = 3
"""Fine pixels the fine step looks around the coarse answer (half a coarse pixel is 1)."""
_ZOOM = (0.96, 0.98, 1.0, 1.02, 1.04)
"""Sizes the fine step tries around the coarse answer: coarse sizes are 4% apart."""
_SOFTEN = 1.0
"""Gaussian sigma, in pixels, both sides get when the fine step runs under ``FINE`` px:
there a picture's lines are a pixel or two wide and half a pixel of misalignment between a
small copy and its original costs more likeness than a different picture would (combined
edits: 0.75 -> 0.90 accepted, false copies unchanged)."""
_FLAT = 1.0
"""Grey levels a picture must vary by: a blank picture matches anything."""
_CLEAR = 0.99
"""Share of a pattern pixel's area that must be clear of what is drawn over the query for
the pixel to be compared."""
ALIGNED = 0.95
"""Likeness of two pictures' pixels where their keypoint matches put one on the other
(``aligned``) that verifies a copy those matches alone do not. On
``bench/duplicates/duplicates.py``, among neighbour pairs with 20-59 matches making one picture
contain the other, unrelated pictures reached 0.91 on the calibration half (0.92 on the test
half: two screenshots of one app, two frames of one sequence), copies 0.95-1.0 where they
agree; 0.95 keeps a margin over the unrelated."""
_OVERLAP = 0.2
"""Share of the query the other picture must cover for ``aligned`` to compare them."""


HUE_APART = 60.0
"""Degrees between two pictures' hues (``hue``: the query's, the stored part it lies on)
from which their pixels do not agree, however alike in grey. The check compares grey,
where two small galaxies are one round blur and two tiles of one gradient one slope: on
``bench/duplicates/duplicates.py`` three of its nine false pairs were such pairs, verified
by the pixels alone, at 104 and 142 degrees (galaxies) and 49 / 72 (the tiles, either way
round), while the copies the pixels alone verified kept their hue within 25 (an emoji over
one). A greyscale copy has no hue to compare (``_CHROMA``); a copy recoloured by a filter
is lost to this check where keypoints do not verify it."""
_CHROMA = 5.0
"""Chroma (CIELAB a*b* distance from grey, 0-~130) under which a picture has no hue that
``HUE_APART`` compares: a greyscale copy, a drawing in black on white."""
HUE_SIDE = 96
"""Pixels a picture's hue is measured at: a galaxy's core a tenth of a 256 px thumbnail
wide keeps its colour, not its black sky's."""


@dataclass(frozen=True)
class Pattern:
    """A query as the pixel check compares it, as is and mirrored (``(2, side, side)``
    float32 each): ``coarse`` at ``SIDE`` px, ``fine`` at its shorter side, within
    ``SIDE``..``FINE`` px; and, when something seems drawn over it, which of those pixels
    are compared (``coarse_shown``, ``fine_shown``: 1 clear of it, 0 on or beside it);
    its ``hue`` clear of it (None: a grey picture, or one made without it)."""

    coarse: np.ndarray
    fine: np.ndarray
    coarse_shown: np.ndarray | None = None
    fine_shown: np.ndarray | None = None
    hue: np.ndarray | None = None


def _resize(grey: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    shrink = size[0] <= grey.shape[1] and size[1] <= grey.shape[0]
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def pattern(img: Image.Image, drawn: np.ndarray | None = None) -> Pattern:
    """What of a query the pixel check needs (~0.4 ms; made only when a search runs it);
    ``drawn``: where something seems drawn over it (``geometry.overlay_mask``, any size),
    left out of the comparison."""
    grey = np.asarray(img.convert("L"), np.float32)
    both = (grey, np.ascontiguousarray(grey[:, ::-1]))
    fine = int(np.clip(min(grey.shape), SIDE, FINE))
    coarse = np.stack([_resize(g, (SIDE, SIDE)) for g in both])
    fines = np.stack([_resize(g, (fine, fine)) for g in both])
    rgb = _rgb(img)
    if drawn is None:
        return Pattern(coarse, fines, hue=hue(rgb))
    clear = (~drawn).astype(np.float32)
    shown = (clear, np.ascontiguousarray(clear[:, ::-1]))
    return Pattern(coarse, fines, np.stack([_shown(c, SIDE) for c in shown]),
                   np.stack([_shown(c, fine) for c in shown]), hue(rgb, clear))


def hue(rgb: np.ndarray, clear: np.ndarray | None = None) -> np.ndarray | None:
    """A picture's colour (``(h, w, 3)`` uint8 RGB) as its mean CIELAB chroma (a*, b*),
    its brighter part weighing most (a star field's stars, not its sky), over the pixels
    ``clear`` (any size, 1 where compared) alone; None when it is about grey
    (``_CHROMA``) or wholly hidden."""
    if rgb.size == 0:
        return None
    # A mean needs no antialiasing: sampled, a 4000 px photo costs as little as a thumbnail.
    small = cv2.resize(rgb, (HUE_SIDE, HUE_SIDE), interpolation=cv2.INTER_LINEAR)
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float32)
    light = lab[:, 0]
    weight = np.maximum(light - np.median(light), 0.0) + 1e-3  # a flat one: its mean
    if clear is not None:
        weight *= _shown(clear, HUE_SIDE).ravel()
    total = float(weight.sum())
    if total <= 0:
        return None
    chroma: np.ndarray = weight @ lab[:, 1:] / total - 128.0
    return chroma if float(np.hypot(*chroma)) >= _CHROMA else None


def _rgb(img: Image.Image) -> np.ndarray:
    """A picture's RGB pixels, not copied when it is RGB already (a thumbnail, an upload)."""
    return np.asarray(img if img.mode == "RGB" else img.convert("RGB"))


def _apart(one: np.ndarray | None, other: np.ndarray | None) -> bool:
    """Whether two hues (``hue``) lie ``HUE_APART`` or more apart; never for a grey one."""
    if one is None or other is None:
        return False
    cos = float(one @ other) / float(np.hypot(*one) * np.hypot(*other))
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))) >= HUE_APART


def _shown(clear: np.ndarray, side: int) -> np.ndarray:
    """The pixels of a ``side`` x ``side`` pattern wholly clear of what is drawn over it."""
    return (cv2.resize(clear, (side, side), interpolation=cv2.INTER_AREA) >= _CLEAR).astype(
        np.float32)


def _ncc(image: np.ndarray, template: np.ndarray, shown: np.ndarray | None = None
         ) -> tuple[float, tuple[int, int]]:
    """Best normalised cross-correlation of ``template`` inside ``image`` (over the pixels
    ``shown`` alone), and where."""
    scores = cv2.matchTemplate(image, template, cv2.TM_CCOEFF_NORMED, mask=shown)
    if shown is not None:  # a flat window under the mask divides by zero
        scores[~np.isfinite(scores)] = -1.0
    _, best, _, at = cv2.minMaxLoc(scores)
    return float(best), (int(at[0]), int(at[1]))


def likeness(query: Pattern, thumbnail: bytes) -> float:
    """How well the query's pixels agree with a stored thumbnail (a JPEG) at the best size
    and place: in [-1, 1], 0 when either is flat, the thumbnail cannot be read, or the
    part of it the query lies on is of another hue (``HUE_APART``)."""
    if not thumbnail or query.coarse[0].std() < _FLAT:
        return 0.0
    try:
        with Image.open(io.BytesIO(thumbnail)) as img:
            stored = np.asarray(img.convert("L"), np.float32)
            colour = _rgb(img) if query.hue is not None else None
    except (OSError, ValueError, Image.DecompressionBombError):
        return 0.0
    if stored.std() < _FLAT:
        return 0.0
    largest = round(SIDE * GROW)
    small = _resize(stored, (2 * largest, 2 * largest))  # one antialiased step, then cheap ones
    shown = [None, None] if query.coarse_shown is None else list(query.coarse_shown)
    coarse = []
    for side in range(SIDE, largest + 1, 2):
        scaled = _resize(small, (side, side))
        coarse += [(_ncc(scaled, t, shown[m]), side, m) for m, t in enumerate(query.coarse)]
    (best, (x, y)), side, mirrored = max(coarse)
    h, w = stored.shape
    box = (x * w / side, y * h / side, (x + SIDE) * w / side, (y + SIDE) * h / side)
    if colour is not None and _apart(query.hue, hue(colour[int(box[1]):int(np.ceil(box[3])),
                                                           int(box[0]):int(np.ceil(box[2]))])):
        return 0.0
    template = query.fine[mirrored]
    fine_shown = None if query.fine_shown is None else query.fine_shown[mirrored]
    fine = int(min(template.shape[0], box[2] - box[0], box[3] - box[1]))
    if fine <= SIDE:  # the thumbnail resolves no more than the coarse step saw
        return best
    if fine < template.shape[0]:
        template = _resize(template, (fine, fine))
        if fine_shown is not None:
            fine_shown = _shown(fine_shown, fine)
    soften = fine < FINE
    if soften:
        template = cv2.GaussianBlur(template, (0, 0), _SOFTEN)
    return max(_fine(stored, box, zoom, template, soften, fine_shown) for zoom in _ZOOM)


def _fine(stored: np.ndarray, box: tuple[float, float, float, float], zoom: float,
          template: np.ndarray, soften: bool, shown: np.ndarray | None = None) -> float:
    """``template`` against the part of ``stored`` in ``box`` (grown by ``zoom``) and a
    margin of ``_SHIFT`` of its pixels, at the template's scale (softened like it)."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half_w, half_h = (box[2] - box[0]) * zoom / 2, (box[3] - box[1]) * zoom / 2
    side = template.shape[0]
    sx, sy = side / (2 * half_w), side / (2 * half_h)
    h, w = stored.shape
    x0, x1 = max(0, int(cx - half_w - _SHIFT / sx)), min(w, int(np.ceil(cx + half_w + _SHIFT / sx)))
    y0, y1 = max(0, int(cy - half_h - _SHIFT / sy)), min(h, int(np.ceil(cy + half_h + _SHIFT / sy)))
    part = stored[y0:y1, x0:x1]
    size = (max(side, round(part.shape[1] * sx)), max(side, round(part.shape[0] * sy)))
    part = _resize(part, size)
    return _ncc(cv2.GaussianBlur(part, (0, 0), _SOFTEN) if soften else part, template,
                shown)[0]


def aligned(query: np.ndarray, stored: np.ndarray, matrix: np.ndarray,
            drawn: np.ndarray | None = None, drawn_stored: np.ndarray | None = None) -> float:
    """Normalised cross-correlation of a query's grey picture and a stored one's where
    ``matrix`` (2 x 3, from the query's pixels to the stored one's: the transform its
    keypoint matches agree on) puts them, over their overlap clear of what is ``drawn``
    over the query (same size as ``query``) and ``drawn_stored`` over the stored one (same
    size as ``stored``), both shrunk to fit ``FINE`` px and softened by ``_SOFTEN``; -1
    when they overlap on less than ``_OVERLAP`` of the query.

    The coarse-to-fine search of ``likeness`` looks for a whole frame, or a crop keeping
    half of one, inside the other; the matches already say where, at any scale and
    rotation: a photo a quarter of a screenshot's size, or rotated."""
    here, there = (min(1.0, FINE / max(g.shape)) for g in (query, stored))
    query, stored = (_fit(g, f) for g, f in ((query, here), (stored, there)))
    matrix = np.hstack([matrix[:, :2] * (there / here), matrix[:, 2:] * there])
    h, w = query.shape
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    warped = cv2.warpAffine(stored, matrix, (w, h), flags=flags)
    clear: np.ndarray = cv2.warpAffine(np.ones_like(stored), matrix, (w, h), flags=flags)
    if drawn is not None:
        clear = clear * cv2.resize((~drawn).astype(np.float32), (w, h),
                                   interpolation=cv2.INTER_AREA)
    if drawn_stored is not None:
        sh, sw = stored.shape
        there_clear = cv2.resize((~drawn_stored).astype(np.float32), (sw, sh),
                                 interpolation=cv2.INTER_AREA)
        clear = clear * cv2.warpAffine(there_clear, matrix, (w, h), flags=flags)
    shown = clear >= _CLEAR
    if shown.mean() < _OVERLAP:
        return -1.0
    a = cv2.GaussianBlur(query, (0, 0), _SOFTEN)[shown]
    b = cv2.GaussianBlur(warped, (0, 0), _SOFTEN)[shown]
    a, b = a - a.mean(), b - b.mean()
    spread = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum()) / spread if spread > 0 else 0.0


def _fit(grey: np.ndarray, scale: float) -> np.ndarray:
    """``grey`` as float, shrunk by ``scale`` (at most 1)."""
    grey = grey.astype(np.float32)
    if scale >= 1:
        return grey
    h, w = grey.shape
    return _resize(grey, (max(1, round(w * scale)), max(1, round(h * scale))))
