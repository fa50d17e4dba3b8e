"""Second stage: does a candidate share the query's *geometry*, not just its look?

A global CNN vector cannot tell an edited copy from another photo of a similar subject:
on the benchmark, 1% of pictures that are not in the index still find a look-alike (two
star clusters, two drawings in one style) above 0.94, while blurred, cropped or captioned
copies often score less. Local features settle it. Each stored image keeps up to
``MAX_POINTS`` ORB keypoints (position + 32-byte binary descriptor, ~9 KB, in a file beside
its thumbnail: ``bogv.sidecar``); at search time
the query's keypoints are matched against the few best candidates' (ratio test), and RANSAC
fits one similarity transform (shift, scale, rotation: what crops, resizes, screenshots
and small rotations do). A copy keeps dozens to hundreds of consistent matches through
recompression, blur, captions and colour changes; different pictures keep a handful.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from . import scoring

__all__ = ["BORDER", "COVERED", "ENLARGED", "MAX_POINTS", "POOL", "SIDE", "TALLEST",
           "UNCOVERED", "UNCOVERED_SPREAD", "VERSION", "Matched", "count", "covered", "enlarged",
           "grey", "guided", "hashed", "inliers", "keypoints", "keypoints_of", "match",
           "overlay_mask", "parallax", "pool", "shared", "span", "uncovered_keypoints"]

VERSION = "orb320-v1"
"""Changes whenever stored keypoints change (part of the model id, so an index made with
other keypoints is re-embedded, ``bogv reembed``, never matched against these)."""

SIDE = 320
"""Keypoints are found on the image shrunk to fit this square: enough detail, ~3 ms."""
STRONGEST = 250
"""Keypoints kept as ORB ranks them: the strongest corners of each pyramid level..."""
SPREAD = 0
"""... and none more spread over the frame. Text drawn over a picture holds its strongest
corners (78% of a query's strongest 250 lay on captions changing 13% of its pixels,
``bench/quality/quality.py``), so a captioned copy keeps too few on the picture to be verified.
250 more spread over a 4 x 4 grid (``bench/quality/quality_replay.py``) verified twice the copies
with text over them, but lifted the inliers of look-alikes too: recalibrated (84 inliers)
they lost as many crops, squashed and combined copies (README, "what was tried")."""
MAX_POINTS = STRONGEST + SPREAD
GRID = 4
"""Spread keypoints: at most ``_CAP`` times an even share of them in each cell of a
``GRID`` x ``GRID`` split of the frame, per pyramid level."""
_CAP = 1.0
_POOL = 1
"""ORB ranks this many times ``MAX_POINTS`` candidates, among which both kinds are chosen
(4 when spreading: the grid needs weaker candidates to choose from)."""
_LEVELS, _SCALE = 8, 1.2
_RATIO = 0.8
_MIN_MATCHES = 6
_SCALES = (1 / 8, 8)
"""How far a copy's keypoints may be shrunk or enlarged against the original's (both are
found at most ``SIDE`` px, so a wider span needs a picture under 40 px). Outside it lies
RANSAC's degenerate answer: when many query points match one stored keypoint (a stored
image with a handful of keypoints, a chessboard's repeated corners), a transform that
shrinks the query to that point "explains" them all: 142 inliers between skimage's
chessboard and moon, where copies need ``scoring.COPY_INLIERS``."""

COVERED = 0.65
"""Share of the detail two pictures show each other that a copy's matches cover, below
which they count proportionally less (``covered``). Two screenshots of one dialog, with
another panel open, match on their frame alone: 66-114 matches, more than
``scoring.COPY_INLIERS``, in a 4 x 4 grid of the cells that hold ``_CELL_POINTS``
keypoints or more, the matches cover half of them or less. A copy under a caption or text
covers most of them, and its second look (``uncovered_keypoints``), taken outside what is
drawn over, more. On ``bench/quality/quality.py`` not-indexed originals called copies went
1.42% -> 0.71% (a dialog's screenshots; edits 0.77% -> 0.39%) for 0.9550 -> 0.9541
accepted copies; on ``bench/duplicates/duplicates.py`` false pairs 13 -> 9, recall
unchanged. Lowering the count never takes it under ``scoring.LEAST_INLIERS`` (also
``containment.SUPPORTED``): the pixel checks, which verify a copy by its pixels, are
asked only from there (with no floor, the duplicate scan lost small copies under text that
they verify, recall 0.904 -> 0.879). 0.7 and the lower of both pictures' shares instead of
their mean took accepted copies to 0.9505."""
_CELL_POINTS = 10
_CELL_INDEX = np.array([1, GRID])

UNCOVERED = 500
"""Keypoints of a query's second look (``uncovered_keypoints``): more than a stored image
keeps, since whatever is drawn over the query hides some of the stored points..."""
UNCOVERED_SPREAD = 250
"""... of which these are spread over the ``GRID`` (the strongest of each cell), the rest
the strongest anywhere. Letters left out of the overlay mask (joined to a light box's
edge, they count as the picture's own outlines) still hold the strongest corners, and a
star field's stars are weak beside them. With all 500 the strongest,
``bench/quality/quality.py`` called 34 of 3,102 edits of not-indexed pictures copies, 24
with half spread, for as many copies found (0.9391 and 0.9393; dark text 0.800 -> 0.815);
all 500 spread: 20 false, but 0.9373 found."""
_STROKE, _DENSE, _WINDOW, _MARGIN = 150, 0.35, 9, 9
"""Overlay text and shapes (``overlay_mask``): pixels whose 3x3 neighbourhood spans at
least ``_STROKE`` grey levels, where they fill at least ``_DENSE`` of a ``_WINDOW`` px
square, grown by ``_MARGIN`` px (ORB's patch around a point reaches that far)."""

TALLEST = 0.2
"""Strokes joined into a line taller than this share of the picture's longer side are the
outlines of its own shapes, not letters (``overlay_mask(letters=True)``). A drawing's black
outlines are as dense as text: the mask took 30-63% of such pictures, and five drawings of
``bench/quality/quality.py`` with dark text over them kept 0-5 matches with their originals
at the second look, 73-162 outside the letters alone. Joins a pixel thin are opened first:
they tie a caption's letters to a photo's edges. On that bench a search's second look
outside letters alone took accepted copies from 0.919 to 0.921 (dark text 0.70 -> 0.74,
light text 0.915 -> 0.905); 0.1 without the opening lost large letters (light text
0.865)."""

ENLARGED = 2.0
"""How many times a query smaller than ``SIDE`` is enlarged for a third look
(``enlarged``), at most: up to ``SIDE``. A copy shrunk to half its stored size keeps its
detail on ORB's finer pyramid levels, where the stored picture's strongest keypoints lie
on the coarser ones, a scale ratio the 8 levels barely span. On ``bench/quality/quality.py``'s
test split, of copies downscaled to 30% 0.485 kept a copy's matches, 0.97 with the second
look at them enlarged twice (``service.enlarged_look``); of overlays shrunk to 40-60% and
re-compressed, 0.67 -> 0.845. Enlarged more (up to ``SIDE`` whatever the factor, or three
times) they kept fewer: 0.81, 0.82 with both looks; 1.5 times, as many shrunk overlays but
0.96 of the downscaled."""

POOL = 2000
"""Keypoints of a query's guided look (``pool``, ``guided``): every corner ORB finds, up to
this many, weak ones too. Under text drawn over a star field, the stars outside it are
among them, where the 500 strongest go to the letters."""
POOLED = 0.02
"""Share of a query that must seem drawn over (``overlay_mask``) for it to take the guided
look at all: the look is for copies whose strongest corners went to what is drawn over them.
Two screenshots of one app (``bench/quality/quality.py``'s kalzium ``quick-1`` and
``screenshot2``) share most of their pixels, and the look matches them there: 181 matches,
where the ratio test keeps 59. Taken by every query, their re-compressed or brightened
copies were copies too, and the calibration asked 147 matches of every copy instead of 60.
0.3-0.8% of such screenshots seem drawn over, 2.3% or more of 95% of copies under dark
text. Taken by small queries (under ``SIDE``) too, at themselves ``enlarged``: overlays
shrunk and re-compressed 0.790 -> 0.805 called copies, but false copies of edits 0.55% ->
0.77% and recall@1 0.9866 -> 0.9859."""
GUIDED_SEED = 10
"""Matches the pool's own (ratio-tested) transform must explain before ``guided`` trusts
it to say where the stored keypoints lie in the query."""
GUIDED_RADIUS, GUIDED_BITS = 2.5, 28
"""A stored keypoint is matched (``guided``) by the pool's point with the closest
descriptor within ``GUIDED_RADIUS`` px of where the transform puts it, if under
``GUIDED_BITS`` of its 256 bits differ. Other captures of one scene (a stereo pair, a
building from two places, frames of one sequence, dialogs of one app) lie a pixel or two
off one transform and differ in more bits than re-compression changes. Of 285 such pairs
from ``bench/quality/quality.py``'s dev images (four edits of each too), 34 kept a copy's
matches within 4 px and 40 bits, 6 within 2.5 px and 28 bits, 4 within 2 px and 24 bits;
of the test split's copies under dark text (keypoints alone) 0.935, 0.915 and 0.900 did,
against 0.805 at the other looks; of overlays shrunk and re-compressed 0.945, 0.905 and
0.900, against 0.845."""

BORDER = 15
"""Pixels along the frame where ORB finds no keypoint (more on its coarser levels)."""

_PARALLAX_REACH = 8.0
"""Pixels from one affine transform within which ``parallax`` weighs a match: farther
ones are mismatches, or lie at depths no single transform of two views comes near."""


def _orb(nfeatures: int) -> cv2.ORB:
    return cv2.ORB.create(nfeatures=nfeatures, scaleFactor=_SCALE, nlevels=_LEVELS,
                          edgeThreshold=BORDER, patchSize=15, fastThreshold=10)
_MAD_SIGMA = 1.4826  # a median absolute deviation as the standard deviation it estimates
_NEAR = 8  # pool points ``guided`` weighs around each stored point: more never lie in reach
_BITS = np.array([bin(i).count("1") for i in range(256)], np.uint8)
_POINT = np.dtype([("x", "<u2"), ("y", "<u2"), ("d", "u1", 32)])


def grey(img: Image.Image) -> np.ndarray:
    """The picture keypoints are found on: grey, shrunk to fit ``SIDE``."""
    # Only shrunk, never enlarged: enlarging small images to SIDE was measured to find
    # fewer blurred, cropped and screenshotted copies (it moves their keypoints' scales).
    small = img.convert("L")
    small.thumbnail((SIDE, SIDE), Image.Resampling.BILINEAR)
    return np.asarray(small)


def keypoints(img: Image.Image) -> bytes:
    """ORB keypoints of an RGB image, packed: 36 bytes a point."""
    return keypoints_of(grey(img))


def pool(img: Image.Image, least: float = POOLED) -> bytes:
    """A query's guided look (``guided``): up to ``POOL`` ORB keypoints of its ``grey``
    picture, as ORB ranks them, packed; none (``b""``) when less than ``least`` of it seems
    drawn over (``overlay_mask``, outside letters alone)."""
    small = grey(img)
    if overlay_mask(small, letters=True).mean() < least:
        return b""
    return _pooled(small)


def _pooled(small: np.ndarray) -> bytes:
    """Up to ``POOL`` ORB keypoints of a grey picture, as ORB ranks them, packed."""
    points, desc = _orb(POOL).detectAndCompute(small, None)
    return _packed(points, desc) if points else b""


def _enlargement(side: int) -> float:
    """How many times a query whose longer side is ``side`` px is enlarged for a look at
    the scales its stored original's keypoints were found at: ``ENLARGED`` up to ``SIDE``,
    and not at all (1) from ``SIDE`` up."""
    return max(1.0, min(ENLARGED, SIDE / side))


def star_look(small: np.ndarray) -> tuple[bytes, float]:
    """A point field's guided look (``guided``, where its stars put the stored points):
    up to ``POOL`` ORB keypoints of its ``grey`` picture enlarged as ``enlarged`` enlarges
    a small query, and how many times it was. A star field shrunk to half keeps its faint
    stars only enlarged: of 30 such copies under overlays (``bench/quality/quality.py``)
    the stars' transform guided 17 to a copy's matches as they are, 25 enlarged."""
    h, w = small.shape
    factor = _enlargement(max(h, w))
    if factor > 1.0:
        small = cv2.resize(small, (round(w * factor), round(h * factor)),
                           interpolation=cv2.INTER_CUBIC)
    return _pooled(small), max(small.shape) / max(h, w)


def enlarged(img: Image.Image) -> Image.Image | None:
    """A query smaller than ``SIDE`` enlarged ``ENLARGED`` times (up to ``SIDE``), for a
    look at the scales its stored original's keypoints were found at; None when it is not
    smaller. The keypoints a record keeps are never found enlarged (``grey``)."""
    factor = _enlargement(max(img.size))
    if factor == 1.0:
        return None
    return img.resize((round(img.width * factor), round(img.height * factor)),
                      Image.Resampling.BICUBIC)


def overlay_mask(small: np.ndarray, letters: bool = False) -> np.ndarray:
    """Where a ``grey`` picture looks drawn over (True): text, its outline, stickers' and
    emoji's edges. Letters are the densest high-contrast strokes a picture holds, so
    dense ones are taken for an overlay (a photo's own sharpest edges are lines, rarely
    that dense); the picture's own busiest detail is sometimes taken too. ``letters``:
    leave out strokes that join into the outlines of the picture's own shapes
    (``TALLEST``), for the second look, which needs the keypoints on them."""
    k3 = np.ones((3, 3), np.uint8)
    strokes = cv2.morphologyEx(small, cv2.MORPH_GRADIENT, k3) >= _STROKE
    if letters:
        strokes &= ~_outlines(strokes)
    dense = cv2.blur(strokes.astype(np.float32), (_WINDOW, _WINDOW)) >= _DENSE
    grown = cv2.dilate(dense.astype(np.uint8), np.ones((_MARGIN, _MARGIN), np.uint8))
    return grown.astype(bool)


def _outlines(strokes: np.ndarray) -> np.ndarray:
    """The strokes in lines taller than ``TALLEST`` of the picture, once joins a pixel thin
    are opened away."""
    thick = cv2.morphologyEx(strokes.astype(np.uint8), cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
    _, labels, stats, _ = cv2.connectedComponentsWithStats(thick, connectivity=8)
    tall = stats[:, cv2.CC_STAT_HEIGHT] > TALLEST * max(strokes.shape)
    tall[0] = False  # the background
    outlines: np.ndarray = tall[labels]
    return outlines


def uncovered_keypoints(img: Image.Image, least: float = 0.0, *, letters: bool = True
                        ) -> bytes:
    """A query's second look: its ``UNCOVERED`` strongest keypoints outside what seems drawn
    over it (``overlay_mask``; ``letters``: outside its letters alone, as a search looks). A
    caption holds a query's strongest corners (78% of 250 on captions changing 13% of the
    pixels), so the first look keeps too few on the picture to verify a copy; stored images
    keep their usual points (no re-embedding). None (``b""``) when less than ``least`` of the
    picture seems drawn over."""
    small = grey(img)
    mask = overlay_mask(small, letters=letters)
    if mask.mean() < least:
        return b""
    return keypoints_of(small, strongest=UNCOVERED - UNCOVERED_SPREAD, spread=UNCOVERED_SPREAD,
                        pool=4, mask=mask)


def keypoints_of(small: np.ndarray, strongest: int = STRONGEST, spread: int = SPREAD,
                 grid: int = GRID, cap: float = _CAP, pool: int = _POOL,
                 mask: np.ndarray | None = None) -> bytes:
    """ORB keypoints of a ``grey`` picture, packed: the ``strongest`` per pyramid level as
    ORB itself keeps them, and ``spread`` more over a ``grid`` (``bench/quality/quality_replay.py``
    tries other counts), none where ``mask`` is True."""
    # A point's descriptor reads only its patch, so describing every point found and
    # keeping the chosen rows gives the very bytes describing only the chosen points does.
    # Which is cheaper depends on how many are dropped: a second pass builds the pyramid
    # again (0.3 ms an image), while describing a point costs ~1 us. Keeping all that ORB
    # finds (``pool`` 1), one pass; a second look keeps one point in four (``pool`` 4):
    # 3.7 -> 2.6 ms a 256 px thumbnail, the same bytes for the 487 dev images.
    orb = _orb(pool * (strongest + spread))
    if pool > 1:
        points, desc = orb.detect(small, None), None
    else:
        points, desc = orb.detectAndCompute(small, None)
    if mask is not None and points:
        xy = np.rint(cv2.KeyPoint.convert(points)).astype(np.int64)
        xy = np.minimum(np.maximum(xy, 0), [small.shape[1] - 1, small.shape[0] - 1])
        shown = np.flatnonzero(~mask[xy[:, 1], xy[:, 0]])
        points = [points[i] for i in shown.tolist()]
        desc = None if desc is None else desc[shown]
    if not points:
        return b""
    chosen = _choose(points, small.shape, _level_quotas(strongest), _level_quotas(spread),
                     grid, cap)
    level = np.fromiter((points[i].octave for i in chosen), np.int64, len(chosen))
    chosen = chosen[np.argsort(level, kind="stable")]  # ORB's order: level by level
    kept = [points[i] for i in chosen]
    if desc is None:
        # ORB keeps each point it found itself, in this order, at the same place.
        return _packed(*orb.compute(small, kept))
    return _packed(kept, desc[chosen])


def _packed(points: Sequence[cv2.KeyPoint], desc: np.ndarray) -> bytes:
    """Keypoints and their descriptors as stored: 36 bytes a point."""
    xy = np.rint(np.asarray(cv2.KeyPoint.convert(points)) * 8)
    packed = np.zeros(len(points), _POINT)  # 1/8 pixel steps fit in uint16
    packed["x"], packed["y"], packed["d"] = xy[:, 0], xy[:, 1], desc
    return packed.tobytes()


def _level_quotas(n: int) -> np.ndarray:
    """How ORB shares ``n`` keypoints among its pyramid's levels (more on finer ones)."""
    f = 1 / _SCALE
    first = n * (1 - f) / (1 - f ** _LEVELS)
    quotas = [round(first * f ** level) for level in range(_LEVELS - 1)]
    return np.array([*quotas, max(0, n - sum(quotas))])


def _ranks(groups: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Each item's rank within its group, ``order`` listing the items group by group."""
    g = groups[order]
    starts = np.r_[0, np.flatnonzero(np.diff(g)) + 1]
    ranks = np.empty(len(order), np.int64)
    ranks[order] = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(g)]))
    return ranks


def _choose(points: Sequence[cv2.KeyPoint], shape: tuple[int, ...], strong_q: np.ndarray,
            spread_q: np.ndarray, grid: int, cap: float) -> np.ndarray:
    """Indices of the points kept: per pyramid level, the strongest ``strong_q``; then,
    strongest first, ``spread_q`` of the others with at most ``cap`` times an even share
    in any cell of the grid."""
    n = len(points)
    response = np.fromiter((p.response for p in points), np.float32, n)
    level = np.minimum(np.fromiter((p.octave for p in points), np.int64, n), _LEVELS - 1)
    xy = np.asarray(cv2.KeyPoint.convert(points))
    h, w = shape[:2]
    cell = (np.minimum((xy[:, 1] * grid / h).astype(np.int64), grid - 1) * grid
            + np.minimum((xy[:, 0] * grid / w).astype(np.int64), grid - 1))
    strong = _ranks(level, np.lexsort((-response, level))) < strong_q[level]
    rest = np.flatnonzero(~strong)
    key = level[rest] * grid * grid + cell[rest]
    limit = np.maximum(1, (cap * spread_q / grid ** 2).astype(np.int64))
    allowed = rest[_ranks(key, np.lexsort((-response[rest], key))) < limit[level[rest]]]
    rank = _ranks(level[allowed], np.lexsort((-response[allowed], level[allowed])))
    chosen: np.ndarray = np.r_[np.flatnonzero(strong), allowed[rank < spread_q[level[allowed]]]]
    return chosen


def count(data: bytes) -> int:
    """How many keypoints packed ``data`` holds."""
    return len(data) // _POINT.itemsize


def span(data: bytes) -> float:
    """The longer side of the box a picture's packed keypoints lie in, widened by the
    ``BORDER`` ORB leaves free on each side: about the size it was found at (0: none)."""
    if not data:
        return 0.0
    xy, _ = _unpack(data)
    return float((xy.max(axis=0) - xy.min(axis=0)).max()) + 2 * BORDER


_PIECE_BITS = 20
"""Pieces are looked up in a table of ``2 ** _PIECE_BITS`` slots (``shared``): a query's
750 keypoints fill 0.6% of them, so a stored piece hits one by chance that rarely."""


def shared(query: Sequence[bytes], stored: Sequence[bytes]) -> list[int]:
    """How many distinct 4-byte pieces of each ``stored`` keypoint set's descriptors the
    ``query`` sets hold too, at the same place in a descriptor: a cheap vote among
    candidates too many to ``match`` one by one (2.4 ns a pair of descriptors, 11 ms for a
    query's 500 against 40 candidates' 250; this takes 1.5 ms). Copies share their unchanged
    pictures' descriptors bit for bit, so whole pieces of them. On
    ``bench/quality/quality.py`` the original of a copy ranked 11-50 by the vector (and
    verified once matched) got the most votes of all 40 candidates in 71 of 72 searches,
    the third most in the other. Each piece counts once per set: a star field's many alike
    points repeat theirs, and counted each time, look-alikes outvoted the original in 6 of
    those 72."""
    if not stored:  # a search with no candidate past those it checked: no table to fill
        return []
    table = np.zeros(1 << _PIECE_BITS, bool)
    for points in query:
        if points:
            table[_pieces(_unpack(points)[1])] = True
    slots = _pieces(_unpack(b"".join(stored))[1])
    owner = np.repeat(np.arange(len(stored), dtype=np.uint64), [count(p) for p in stored])
    held = table[slots]
    owners = np.broadcast_to(owner[:, None], slots.shape)[held]
    # One vote per distinct (set, piece): of the hits written to one slot each, exactly
    # one reads its own index back, whichever numpy wrote last (a sort costs 1 ms more).
    pair = hashed((owners << np.uint64(_PIECE_BITS)) | slots[held])
    first = np.empty(1 << _PIECE_BITS, np.int32)
    order = np.arange(len(pair), dtype=np.int32)
    first[pair] = order
    votes: list[int] = np.bincount(owners[first[pair] == order].astype(np.intp),
                                   minlength=len(stored)).tolist()
    return votes


def hashed(values: np.ndarray, bits: int = _PIECE_BITS) -> np.ndarray:
    """``values`` (uint64) spread evenly over ``2 ** bits`` slots, by default ``shared``'s
    table's (Fibonacci hashing: the top bits after a multiply, so that every bit of a
    value counts, not its low ones alone)."""
    return (values * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(64 - bits)


def _pieces(descriptors: np.ndarray) -> np.ndarray:
    """Each descriptor's eight 4-byte pieces, tagged with their place, as ``shared``'s
    table slots: (n, 8)."""
    words = descriptors.view("<u4").astype(np.uint64)
    return hashed(words * np.uint64(8) + np.arange(8, dtype=np.uint64))


def pieces(data: bytes, places: int) -> np.ndarray:
    """The distinct table slots (``shared``'s) of the first ``places`` 4-byte pieces of
    each descriptor of packed keypoints ``data``, sorted (uint32): what an index of every
    stored picture's pieces (``bogv.pieces``) files it under."""
    if not data:
        return np.zeros(0, np.uint32)
    return np.unique(_pieces(_unpack(data)[1])[:, :places]).astype(np.uint32)


def _unpack(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    packed = np.frombuffer(data, _POINT)
    xy = np.stack([packed["x"], packed["y"]], axis=1).astype(np.float32) / 8
    return xy, np.ascontiguousarray(packed["d"])


@dataclass(frozen=True)
class Matched:
    """The similarity transform (``matrix``, 2 x 3) that maps ``count`` of the query's
    keypoints onto the stored image's (counted down when they cover little, ``COVERED``),
    and where all the keypoints of each lie (``query_all``, ``stored_all``), in the pixels
    of its keypoint picture (``grey``); ``pairs``: the rows of ``query_all`` and of
    ``stored_all`` the ratio test matched (in step), inliers or not, for ``parallax``;
    int16, since every record the scan checks keeps its pairs' matches in its memo
    (``similar.Stored.matches``): as coordinates, measured while those records still waited
    for Python's cycle collector, they held the 10k scan's peak 35 MB higher."""

    count: int
    matrix: np.ndarray
    query_all: np.ndarray
    stored_all: np.ndarray
    pairs: tuple[np.ndarray, np.ndarray] | None = None


def inliers(query: bytes, stored: bytes) -> int:
    """How many keypoint matches one similarity transform explains (0 when unsure)."""
    matched = match(query, stored)
    return matched.count if matched else 0


def match(query: bytes, stored: bytes) -> Matched | None:
    """The matches one similarity transform explains (``inliers`` counts them), None when
    unsure."""
    if not query or not stored:
        return None
    (qxy, qd), (sxy, sd) = _unpack(query), _unpack(stored)
    if len(qd) < 2 or len(sd) < 2:
        return None
    # Each query point's two nearest stored points, as arrays (no match objects to build).
    dist, nearest = cv2.batchDistance(qd, sd, cv2.CV_32S, normType=cv2.NORM_HAMMING, K=2)
    good = dist[:, 0] < _RATIO * dist[:, 1]
    if good.sum() < _MIN_MATCHES:
        return None
    cv2.setRNGSeed(7)  # RANSAC samples at random: the same pair always gets the same count
    src, dst = qxy[good], sxy[nearest[good, 0]]
    matrix, mask = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC,
                                               ransacReprojThreshold=4.0)
    if mask is None or not _SCALES[0] <= math.hypot(matrix[0, 0], matrix[1, 0]) <= _SCALES[1]:
        return None
    inlying = mask.ravel() == 1
    return Matched(_counted(src[inlying], dst[inlying], qxy, sxy, matrix), matrix, qxy, sxy,
                   (np.flatnonzero(good).astype(np.int16), nearest[good, 0].astype(np.int16)))


def parallax(matched: Matched) -> float:
    """How much farther a pair's matches stray from one affine transform along one
    direction than across it, in keypoint-picture pixels (robust spreads, ~0 for a copy).

    Two photos of one scene from two places (a stereo pair, a building or a rock face
    walked around) match as well as a copy does, and even fit one transform within a pixel
    or two: the depth of what they show shifts each point by its own amount, but always
    along one direction (the line between the two cameras), while a copy's matches stray
    from its transform only by where ORB placed each point, alike in every direction. The
    transform is affine (a squashed or a rotated copy fits it exactly), fitted to the
    matches RANSAC keeps within ``_PARALLAX_REACH`` (and refined on them); the spreads are
    those of the matches' misfits along and across their main direction (median absolute
    deviations). 0 when too few matches to tell. ~0.2 ms."""
    if matched.pairs is None or len(matched.pairs[0]) < 3 * _MIN_MATCHES:
        return 0.0
    src, dst = matched.query_all[matched.pairs[0]], matched.stored_all[matched.pairs[1]]
    cv2.setRNGSeed(7)
    fitted, mask = cv2.estimateAffine2D(src, dst, method=cv2.RANSAC,
                                        ransacReprojThreshold=_PARALLAX_REACH)
    kept = np.zeros(0, bool) if mask is None else mask.ravel() == 1
    if fitted is None or kept.sum() < 3 * _MIN_MATCHES:  # none, or a degenerate answer
        return 0.0
    misfit = dst[kept] - cv2.transform(src[kept][:, None], fitted)[:, 0]
    # The main direction of the misfits' 2 x 2 covariance, in closed form.
    dx, dy = (misfit - misfit.mean(axis=0)).T
    angle = 0.5 * math.atan2(2 * float((dx * dy).sum()), float((dx * dx - dy * dy).sum()))
    cos, sin = math.cos(angle), math.sin(angle)
    along, across = (misfit[:, 0] * cos + misfit[:, 1] * sin,
                     misfit[:, 1] * cos - misfit[:, 0] * sin)
    return float(_spread(along) - _spread(across)) * _MAD_SIGMA


def _spread(values: np.ndarray) -> float:
    """Median absolute deviation."""
    return float(np.median(np.abs(values - np.median(values))))


def guided(query: bytes, stored: bytes, matrix: np.ndarray | None = None) -> int:
    """Matches of a query's pool of keypoints (``query``, made by ``pool``) with a stored
    image's where a transform puts them, 0 when unsure. The transform is ``matrix`` (query
    px to stored px) when given, else the pool's own ``match``; then each stored keypoint
    takes the pool point nearest it in descriptor among
    those the transform puts within ``GUIDED_RADIUS`` px (``GUIDED_BITS``), each pool point
    once, counted as ``match`` counts. Matching by the ratio test alone, a copy under text
    keeps too few: its strongest corners are the letters', and a star field's or a brick
    wall's points look alike, so the second-nearest is as near as the nearest; where the
    transform puts them, the right one is the only one near."""
    if matrix is None:
        seed = match(query, stored)
        if seed is None or seed.count < GUIDED_SEED:
            return 0
        matrix = seed.matrix
    elif not query or not stored:
        return 0
    qxy, qd = _unpack(query)
    sxy, sd = _unpack(stored)
    placed = cv2.transform(qxy[:, None], matrix)[:, 0]
    # The pool points placed nearest each stored point (a few hold any that is in reach).
    gap, nearest = cv2.batchDistance(sxy, placed, cv2.CV_32F, normType=cv2.NORM_L2,
                                     K=min(_NEAR, len(placed)))
    s, k = np.nonzero((gap <= GUIDED_RADIUS) & (nearest >= 0))
    q = nearest[s, k]
    bits = _BITS[np.bitwise_xor(sd[s], qd[q])].sum(axis=1)
    close = bits < GUIDED_BITS
    s, q, bits = s[close], q[close], bits[close]
    # Each stored point and each pool point once, closest descriptors first.
    taken_s, taken_q = np.zeros(len(sd), bool), np.zeros(len(qd), bool)
    picked: list[tuple[int, int]] = []
    for i in np.argsort(bits, kind="stable").tolist():
        if not (taken_s[s[i]] or taken_q[q[i]]):
            taken_s[s[i]] = taken_q[q[i]] = True
            picked.append((q[i], s[i]))
    if not picked:
        return 0
    at_q, at_s = np.array(picked).T
    return _counted(qxy[at_q], sxy[at_s], qxy, sxy, matrix)


def _counted(query_in: np.ndarray, stored_in: np.ndarray, query: np.ndarray,
             stored: np.ndarray, matrix: np.ndarray) -> int:
    """How many matches ``query_in`` -> ``stored_in`` count: fewer when they cover little
    of what the pictures show each other (``COVERED``), never under
    ``scoring.LEAST_INLIERS`` for that."""
    count, floor = len(query_in), scoring.LEAST_INLIERS
    if count > floor:
        share = covered(query, stored, query_in, stored_in, matrix)
        if share < COVERED:
            count = max(int(count * share / COVERED), floor)
    return count


def covered(query: np.ndarray, stored: np.ndarray, query_in: np.ndarray,
            stored_in: np.ndarray, matrix: np.ndarray) -> float:
    """How much of what two pictures show each other their matches cover: of the cells of
    a ``GRID`` x ``GRID`` split holding ``_CELL_POINTS`` of one's keypoints that ``matrix``
    (query to stored) puts on the other, the share holding a match, averaged over both
    pictures. ``query`` and ``stored`` are all their keypoints, ``query_in`` and
    ``stored_in`` the matched ones (rows in step). OpenCV calls on a few hundred points:
    about 0.1 ms, a fifth of a match, where numpy's took 0.27 ms."""
    back = cv2.invertAffineTransform(matrix)
    return (_covered(query, _box(stored), query_in, matrix)
            + _covered(stored, _box(query), stored_in, back)) / 2


def _box(xy: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    (x0, x1, _, _), (y0, y1, _, _) = cv2.minMaxLoc(xy[:, 0]), cv2.minMaxLoc(xy[:, 1])
    return (x0, y0), (x1, y1)


def _covered(points: np.ndarray, box: tuple[tuple[float, float], tuple[float, float]],
             matched: np.ndarray, matrix: np.ndarray) -> float:
    placed = cv2.transform(points[:, None], matrix)
    shown = points[cv2.inRange(placed, box[0], box[1])[:, 0] > 0]
    if len(shown) == 0:
        return 1.0
    (x0, y0), (x1, y1) = _box(shown)
    sx, sy = GRID / (x1 - x0 + 1e-6), GRID / (y1 - y0 + 1e-6)
    into_cells = np.array([[sx, 0, -x0 * sx], [0, sy, -y0 * sy]])
    at = cv2.transform(np.concatenate([shown, matched])[:, None], into_cells)[:, 0]
    cells = np.clip(at, 0, GRID - 1).astype(np.intp) @ _CELL_INDEX
    cells[len(shown):] += GRID * GRID  # the matched points' cells, counted apart
    counts = np.bincount(cells, minlength=2 * GRID * GRID)
    detailed = counts[:GRID * GRID] >= _CELL_POINTS
    if not detailed.any():
        return 1.0  # too few keypoints to tell (a small picture)
    return float((detailed & (counts[GRID * GRID:] > 0)).sum() / detailed.sum())
