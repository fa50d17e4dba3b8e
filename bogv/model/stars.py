"""Point fields (star fields, night skies): their brightest points, and where they lie.

A star field shrunk to half its size, recompressed and drawn over is the copy no other
check finds: its vector is mostly the overlay's (0.15-0.25 similar to its original's), and
ORB's corners go to the letters, while thousands of stored star fields look alike to both.
What survives is the pattern of its brightest points: triangles of neighbouring stars keep
their shape (the ratios of their sides) under any shift, scale and turn. On
``bench/quality/quality.py``'s test split, those of the 24 brightest points named the
original first for 27 of the 30 Stellarium copies under an overlay, shrunk and recompressed
that no other look found, with 8-59 triangles agreeing on one transform against 1-5 for a
look-alike; that transform then guides the keypoint match (``geometry.guided``).

Points are found on the picture keypoints are found on (``geometry.grey``), brought to
``CANON`` px so that a shrunk copy and its original are smoothed alike; a point is a local
maximum standing out from the ring around it, which strokes of letters do not (their ring
is as bright). Only dark pictures (``DARK``) with ``LEAST`` points or more are point fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["VERSION", "Aligned", "codes", "first_field", "partly_dark", "points", "shifted",
           "unpack"]

VERSION = "1"
"""Names the record files of points (``service.STARS``): changes whenever ``points`` does."""
CANON = 256
"""Longer side, in px, at which points are found (a shrunk copy is enlarged to it)."""
STARS = 24
"""Points kept, brightest first: 40 named 2 fewer of the calibration split's shrunk overlaid
copies first (27 of 32 against 29)."""
DARK = 40.0
"""Median grey level above which a picture is no point field (of the quality bench's 4,855
stored images, 1,804 made from Stellarium's sky pictures, 1,712 are point fields)."""
LEAST = 6
"""Points a point field has at least."""
PART = 0.15
"""Share of a picture that must be dark (``DARK`` or darker) for a point field to be looked
for inside it (``partly_dark``)."""
NEAREST = 5
"""Each point makes triangles with pairs of its nearest this many."""
SHORTEST = 0.02
"""Triangles whose longest side is under this share of the longer side are left out: a pixel
of noise turns them."""
_RISE, _STANDS = 8.0, 0.5
"""A point is ``_RISE`` grey levels over the sky behind it (``_background``) and stands out
from its ring by ``_STANDS`` of that."""
_CELL = 4
_MIRRORED = 2.0
_Y, _X = np.mgrid[-4:5, -4:5]
_RING = ((np.hypot(_Y, _X) >= 3) & (np.hypot(_Y, _X) <= 4.5)).astype(np.uint8)


@dataclass(frozen=True)
class Aligned:
    """A stored point field whose triangles agree with a query's on one transform:
    ``matrix`` takes the query's grey picture's px to the stored one's; ``votes``: the
    query triangles that agree."""

    id: int
    votes: int
    matrix: np.ndarray


def points(grey: np.ndarray) -> bytes:
    """A point field's brightest points in ``grey``'s px (``float32``: its longer side,
    then x, y of each), ``b""`` when ``grey`` is no point field."""
    h, w = grey.shape
    side = max(h, w)
    f = CANON / side
    canon = cv2.resize(grey, (max(1, round(w * f)), max(1, round(h * f))),
                       interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC)
    if _median(canon) > DARK:
        return b""
    smooth = cv2.GaussianBlur(canon.astype(np.float32), (0, 0), 1.0)
    rise = smooth - _background(canon)
    peak = ((rise >= cv2.dilate(rise, np.ones((5, 5), np.uint8))) & (rise > _RISE)
            & (rise - cv2.dilate(rise, _RING) > _STANDS * rise))
    ys, xs = np.nonzero(peak)
    if len(xs) < LEAST:
        return b""
    order = np.argsort(-rise[ys, xs], kind="stable")[:STARS]
    xy = np.stack([xs[order], ys[order]], 1).astype(np.float32) / f
    return _packed(side, xy)


def first_field(greys: Sequence[np.ndarray]) -> tuple[bytes, np.ndarray]:
    """The points of the first of a query's views (their grey pictures) that is a point
    field, and that view's grey picture; no points and the first view's when none is. A
    screenshot of a star field is bright around it, the picture inside it (the second view,
    ``content.query_views``) is not: of the quality bench's Stellarium pictures in
    screenshots, the picture inside named its original for 53 of 69, none of 53 that are
    not stored named any."""
    for grey in greys:
        seen = points(grey)
        if seen:
            return seen, grey
    return b"", greys[0]


def partly_dark(grey: np.ndarray) -> bool:
    """Whether enough of a picture that is no point field is dark for one to lie inside it,
    as a star field does in a screenshot of a bright window (``PART``)."""
    return float(np.count_nonzero(grey <= DARK)) >= PART * grey.size


def shifted(data: bytes, left: int, top: int, side: int) -> bytes:
    """The points of a part of a picture (``points``), moved into the picture's px: the part
    lies ``left``, ``top`` px in, and the picture's longer side is ``side``."""
    if not data:
        return b""
    _, xy = unpack(data)
    moved = xy + np.array([left, top], np.float32)
    return _packed(side, moved)


def _median(grey: np.ndarray) -> float:
    """``np.median`` of a ``uint8`` picture, from its histogram: every photo a search or an
    import sees is asked whether it is dark, and sorting it took three times as long."""
    below = np.cumsum(cv2.calcHist([grey], [0], None, [256], [0, 256]).ravel())
    lower, upper = np.searchsorted(below, [(grey.size - 1) // 2, grey.size // 2], "right")
    return (float(lower) + float(upper)) / 2


def _background(canon: np.ndarray) -> np.ndarray:
    """The sky behind the points: the median of 5 x 5 cells of 4 x 4 px around each, as
    ``float32`` at ``canon``'s size (a median of 15 px cost 2.5 ms, this 0.1 ms)."""
    h, w = canon.shape
    cells = cv2.resize(canon, (max(1, w // _CELL), max(1, h // _CELL)),
                       interpolation=cv2.INTER_AREA)
    sky = cv2.medianBlur(cells, 5) if min(cells.shape) >= 3 else cells
    return cv2.resize(sky, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)


def _packed(side: float, xy: np.ndarray) -> bytes:
    """Points as a record keeps them (``unpack`` reads them back): the picture's longer
    side, then x, y of each, ``float32``."""
    return np.concatenate([[side], xy.ravel()]).astype(np.float32).tobytes()


def unpack(data: bytes) -> tuple[float, np.ndarray]:
    """A picture's longer side and its points' ``(n, 2)`` px (``points``)."""
    values = np.frombuffer(data, np.float32)
    return float(values[0]), values[1:].reshape(-1, 2)


def codes(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """The triangles of a point field (``points``): each one's shape, ``(t, 2)`` (its
    shorter sides over its longest, alike under any shift, scale and turn; ``_MIRRORED``
    added to the first for a triangle whose corners turn clockwise), and its
    corners' px, ``(t, 3, 2)``, ordered by the side facing them so that two triangles of
    one shape pair their corners. No point field (``b""``): none."""
    side, xy = unpack(data) if data else (0.0, np.zeros((0, 2), np.float32))
    if len(xy) < 3:
        return np.zeros((0, 2), np.float32), np.zeros((0, 3, 2), np.float32)
    gaps = np.linalg.norm(xy[:, None] - xy[None], axis=2)
    near = np.argsort(gaps, axis=1, kind="stable")[:, 1:NEAREST + 1]
    found = {tuple(sorted((i, a, b))) for i, row in enumerate(near.tolist())
             for j, a in enumerate(row) for b in row[j + 1:]}
    tris = np.array(sorted(found))
    corners = xy[tris]
    facing = np.stack([np.linalg.norm(corners[:, 1] - corners[:, 2], axis=1),
                       np.linalg.norm(corners[:, 0] - corners[:, 2], axis=1),
                       np.linalg.norm(corners[:, 0] - corners[:, 1], axis=1)], 1)
    order = np.argsort(facing, axis=1, kind="stable")
    sides = np.take_along_axis(facing, order, 1)
    keep = sides[:, 2] > SHORTEST * side
    ordered = np.take_along_axis(corners, order[:, :, None], 1)[keep]
    shape = sides[keep, :2] / sides[keep, 2:]
    # A triangle and its mirror image are two shapes: a copy is not flipped (a flip is found
    # by its mirror keypoints), and half the look-alikes' triangles then pair with none.
    a, b = ordered[:, 1] - ordered[:, 0], ordered[:, 2] - ordered[:, 0]
    shape[:, 0] += _MIRRORED * (a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0] < 0)
    return shape.astype(np.float32), ordered.astype(np.float32)
