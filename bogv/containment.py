"""Is a verified pair a duplicate? Only when one picture holds (most of) the other.

A search's keypoint check asks whether two pictures *share pixels*; a duplicate is more: one
picture is an edited version of the whole of the other, or of most of it. Two tiles of one
aerial photo that overlap by a third, two frames of one panorama, two star fields of
overlapping sky, share real pixels, enough for ``scoring.COPY_INLIERS`` matches, yet
neither is a copy of the other, and deleting one loses a picture. A crop lies wholly inside
its original, and the original photo wholly inside its screenshot.

So the transform the matches agree on carries one picture's frame onto the other's, and
their overlap is measured against each: a copy fills the other picture, or is filled by
it, an overlap is a part of both. The frame is read from the keypoints alone (their
bounding box widened by the border ORB leaves free, ``geometry.BORDER``): no image size is
stored beside them, and flat margins without keypoints are no content to share. The hull
of the matched keypoints alone was too sparse a measure: a corner crop's matches spanned
a quarter to all of it on the test photos, as much as tiles sharing a third.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np

from bogv.model import geometry, pixels, scoring
from bogv.model.geometry import Matched
from bogv.results import Hit

__all__ = ["AGREEING", "COVERED", "PARALLAX", "PLAIN", "SMALL", "SUPPORTED", "contained",
           "coverage", "cut", "duplicate", "filled", "pixels_judge", "shares", "supported"]

COVERED = 0.85
"""Share of one picture's frame the other must fill (``coverage``): the highest (in steps
of 0.05) that keeps every keypoint-verified copy pair of the calibration half of
``bench/duplicates/duplicates.py`` (lowest 0.86), where it drops 17 of its 37 false pairs
(tiles of one aerial mosaic, two screenshots of one dialog). Overlapping tiles measure
about their share of each other (0.5-0.8 for tiles sharing 40% of a photo's width), a
corner crop of half a photo 0.8-1, a screenshot 1: a corner crop of half a photo with
few keypoints near its own edges can fall under it."""

SUPPORTED = 20
"""Keypoint matches, short of ``scoring.COPY_INLIERS`` but making one picture contain the
other, that let a copy the pixel check verified one way only stand without the other way
round. A combination of edits (crop, colour, re-compression) or a caption keeps a copy's
pixels like its original's one way only, while a few dozen of its keypoints still land
where the original's are; a star field that looks like another at pixel-check size has
no such matches. The highest (in steps of 5, from 15) that keeps all 6 pairs it gains on
the calibration half of ``bench/duplicates/duplicates.py``, none of them false there
(among pixel-verified pairs with 15-59 matches, no false pair even reaches one-way
pixels)."""

PLAIN = 100
"""Keypoints under which a picture is too small or too plain for them to judge a copy of it
(a stored picture keeps up to ``geometry.MAX_POINTS``, 250): a 60 px drawing keeps a dozen,
a blank-skied copy none, and only the pixel check can verify it."""

AGREEING = 10
"""Keypoint matches a copy only the pixel check verified must still keep when both pictures
hold ``PLAIN`` keypoints or more. Galaxies and star clusters are round blurs alike at the
pixel check's size (0.92-0.96 both ways), yet their rich star fields share few matches: 13
of the 14 false star pairs of ``bench/duplicates/duplicates.py`` kept 0-8 (the 14th, a
galaxy of 50 keypoints, is too plain for the rule); a flipped chessboard, text over a
photo, a squashed and captioned one and a shrunk combination of edits kept 10-15. The
highest that keeps every such copy of the bench's calibration half. Chance reaches it too,
on about 1% of neighbour pairs of unrelated dev images that rich: a filter, not a proof."""


PARALLAX = 1.0
"""Pixels (``geometry.parallax``) from which a pair's matches stray along one direction as
two views of one scene's do. On ``bench/duplicates/duplicates.py`` two stereo pairs (a
rock face, a motorcycle) kept 54-72 matches, a copy's, and strayed 1.37-2.66 px either way
round; of 43,749 copy pairs with a copy's matches (``bench/duplicates/parallax.py``: 1,461
dev images, each of the quality benchmark's 22 edits, both ways round) 18 strayed 1.0 px or
more (keypoints sliding along a smooth wallpaper's edges), 99.9% under 0.82, and those meet
the pixel check instead. Other views of one building or tower stray 0.1-0.7 px: too little
to tell."""

SMALL = 128
"""Pixels under which the box a picture's keypoints span is too small for them to judge a
copy of it, however many they are: skimage's astronaut shrunk to 77 px keeps 138 of them,
yet its thumbnail-size copies are the pixel check's to verify (``PLAIN``). On
``bench/quality/quality.py`` it gives back two of the 17 copies the rule for pixels alone
(``pixels_judge``) costs a search; on ``bench/duplicates/duplicates.py`` one more false
pair (13 against 12)."""


def coverage(matched: Matched) -> float:
    """How much of the better-filled picture the two pictures' overlap is, 0..1: 1 when
    one lies wholly inside the other, a third for tiles of one photo overlapping by a
    third."""
    return max(_shares(matched))


def filled(matched: Matched) -> float:
    """How much of the stored picture the query's overlap fills, 0..1: 1 for a copy of the
    whole of it, under half for a photo in a screenshot's window."""
    return _shares(matched)[1]


def _shares(matched: Matched) -> tuple[float, float]:
    """The two pictures' overlap as a share of the query's frame and of the stored one's."""
    return shares(_frame(matched.query_all), _frame(matched.stored_all), matched.matrix)


def shares(query: np.ndarray, stored: np.ndarray, matrix: np.ndarray) -> tuple[float, float]:
    """The overlap of two frames (convex polygons, each in its own picture's pixels) once
    ``matrix`` carries the query's onto the stored one's, as a share of each: 0 of a frame
    without area, since nothing can be said to hold a picture of unknown size."""
    moved = cv2.transform(query[None], matrix)[0].astype(np.float32)
    overlap, _ = cv2.intersectConvexConvex(moved, stored)
    areas = cv2.contourArea(moved), cv2.contourArea(stored)
    first, second = (min(1.0, overlap / a) if a > 0 else 0.0 for a in areas)
    return first, second


def cut(matched: Matched | None, query: np.ndarray, stored: np.ndarray) -> bool:
    """Whether the matches make the query a part cut from the stored picture: ``SUPPORTED``
    of them place (``COVERED``) all of the query's frame inside the stored one's, which it
    fills less than ``COVERED`` of (a centre crop keeping 70% of a photo's sides fills half
    of it). The frames are the whole pictures (``query``, ``stored``: polygons in each
    one's keypoint pixels), not their keypoints' bounds: a crop into margins with few
    keypoints fills those as its original does."""
    if matched is None or matched.count < SUPPORTED:
        return False
    inside, fills = shares(query, stored, matched.matrix)
    return inside >= COVERED > fills


def contained(matched: Matched | None, covered: float = COVERED) -> bool:
    """Whether the matches make one picture a copy of (most of) the other."""
    return matched is not None and coverage(matched) >= covered


def _frame(points: np.ndarray) -> np.ndarray:
    """The bounding box of a picture's keypoints widened by the border ORB leaves free
    (``geometry.BORDER``), as a polygon."""
    (x0, y0), (x1, y1) = points.min(axis=0) - geometry.BORDER, points.max(axis=0) + geometry.BORDER
    x0, y0 = max(x0, 0.0), max(y0, 0.0)
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)


def duplicate(hit: Hit, views: Sequence[Callable[[], bytes]], stored: bytes,
              back: Callable[[], float],
              match: Callable[[bytes, bytes], Matched | None] = geometry.match, *,
              ahead: Callable[[], float] = lambda: 0.0) -> bool:
    """Whether a candidate the search's checks labelled (``hit``) is a duplicate of the
    query: the same bytes or pixels; a copy whose keypoint matches make one picture
    contain the other; or a copy only the pixel check verified, when it verifies the other
    way round too (``back``: the candidate's pixels against the query's thumbnail). That
    check compares whole frames (or a crop keeping half of one), so it finds no partial
    overlaps, but one star field or galaxy looks like another at its size, and a scan
    runs it for far more pairs than a search does; unless ``SUPPORTED`` keypoint matches
    make one picture contain the other. Nor does it judge alone two pictures that both keep
    ``PLAIN`` keypoints: a copy of those keeps ``AGREEING`` matches. ``views`` make the
    query's keypoints (its own, its mirror image's, its second look's: the first that
    verifies the copy is measured, else the one with the most matches), ``stored`` are the
    candidate's; ``match`` is ``geometry.match`` or a memo of it (``similar.Stored.match``).

    Matches that stray from one transform along one direction (``PARALLAX``) are two
    photos of one scene rather than a copy; only their pixels, compared either way round
    (``ahead``: the query's against the candidate's thumbnail, as a search compares them),
    can make them one."""
    if hit.match != "copy":
        return hit.match == "exact"
    best: Matched | None = None
    for view in views:
        matched = match(view(), stored)
        if matched is not None and matched.count >= scoring.COPY_INLIERS:
            if not contained(matched):
                return False
            return (geometry.parallax(matched) < PARALLAX
                    or max(ahead(), back()) >= scoring.COPY_PIXELS)
        if matched is not None and (best is None or matched.count > best.count):
            best = matched
    if best is not None and best.count >= SUPPORTED and contained(best):
        return True
    if not pixels_judge(views[0](), stored, best.count if best is not None else 0):
        return False
    return back() >= scoring.COPY_PIXELS


def pixels_judge(query: bytes, stored: bytes, matches: int) -> bool:
    """Whether the pixel check alone may verify a copy of two pictures whose keypoints
    (``query``, ``stored``) keep ``matches`` of them: when either is too plain (``PLAIN``)
    or too small (``SMALL``) for keypoints to judge, or they keep ``AGREEING``. A search
    and the scan ask it alike: on ``bench/quality/quality.py`` it halved a search's false
    copies (not-indexed originals 2.8% -> 1.4%: two galaxies alike at 32 px; their edits
    1.6% -> 1.0%) for 0.3% of the copies (accepted 0.917 -> 0.913)."""
    return (matches >= AGREEING
            or min(geometry.count(query), geometry.count(stored)) < PLAIN
            or min(geometry.span(query), geometry.span(stored)) < SMALL)


def supported(matched: Matched | None, likeness: Sequence[Callable[[], float]],
              aligned: Callable[[Matched], float] | None = None) -> float:
    """The pixel likeness that makes a candidate the search's checks left unverified a
    duplicate after all, 0 when none does: ``SUPPORTED`` keypoint matches (``matched``)
    that make one picture contain the other, and the pixel check verifying it either way
    (``likeness``, run only then), or else their pixels agreeing where the matches put
    them (``aligned``: ``pixels.aligned``, from ``pixels.ALIGNED``). A search runs the
    pixel check for its best candidate alone, while among an original's copies a
    re-compressed combination or a captioned copy is rarely the best candidate of the
    other; and that check never finds a photo shown in a quarter of a screenshot."""
    if matched is None or matched.count < SUPPORTED or not contained(matched):
        return 0.0
    found = next((p for p in (f() for f in likeness) if p >= scoring.COPY_PIXELS), 0.0)
    if found or aligned is None:
        return found
    agree = aligned(matched)
    return agree if agree >= pixels.ALIGNED else 0.0
