"""From a raw similarity to what users see: a calibrated ``score`` and a ``match`` label.

The similarity of a hit is the cosine of the query's vector and the stored image's
(``bogv.model.descriptor``). It ranks look-alikes well but cannot decide what a copy is: an
edited copy and another photo of the same subject can both reach 0.9 (a stereo pair 0.91,
two screenshots of one dialog 0.89 on ``bench/quality/quality.py``). So similarity alone never
makes a copy. The best candidates go through a keypoint check (``bogv.model.geometry``):
one that keeps ``COPY_INLIERS`` consistent matches is a copy. When none does, the best
candidate's thumbnail is compared with the query pixel by pixel (``bogv.model.pixels``,
``COPY_PIXELS``): copies too small or too plain for keypoints. Failing both, a candidate
whose keypoint matches are too few but place one picture inside the other has its pixels
compared where they put them (``bogv.placed``, ``COPY_ALIGNED``): rotated, screenshotted
and captioned copies. A query smaller than ``FULL_SIDE`` needs proportionally fewer
keypoint matches (``copy_inliers``). The thresholds were chosen
on the calibration split of ``bench/quality/quality.py`` (images never used for the test figures):
the lowest at which at most 1% of searches for *not-indexed* pictures (and edits of them)
would call their best hit a copy. The score puts them at exactly 0.5:

    unverified: score = 0.5 * similarity, or 0.5 * inliers / copy_inliers if higher
    verified:   score = 0.5 .. 1, rising with the keypoint matches or the pixel likeness
    exact:      score = 1

so ``min_score=0.5`` (``COPY_SCORE``) keeps only copies whatever the model's raw scale.
``scores`` is the one implementation, on arrays: a search scores its hits with it, and
``bench/quality/quality.py`` scores thousands of searches at once under the thresholds it is
calibrating.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = ["COPY_ALIGNED", "COPY_INLIERS", "COPY_PIXELS", "COPY_SCORE", "EXACT_SIMILARITY",
           "FULL_SIDE", "LEAST_INLIERS", "MATCH_SIMILARITY", "MIRROR_SIMILARITY",
           "PIXELS_SIMILARITY", "UNCOVERED_SIMILARITY", "Match", "check_aligned",
           "check_far", "check_mirror", "check_more", "check_pixels", "check_uncovered",
           "copy_inliers", "match", "matches", "score", "scores", "star_inliers", "verified"]

Match = Literal["exact", "copy", "similar"]

COPY_INLIERS = 60
"""Keypoint matches one transform must explain for the second stage to call a copy. (76
while the calibration split counted derivatives of the index's own pictures, such as a
drawing recoloured with an arrow added, as false copies: ``bench/quality/related.csv``.)"""
FULL_SIDE = 256
"""Long side (px) from which a query counts as full size for ``COPY_INLIERS``: a smaller
one needs proportionally fewer matches (``copy_inliers``). A small picture's keypoints lie
on few pixels, so a copy of it keeps fewer matches, and a look-alike of it hardly any: on
``bench/quality/quality.py`` no search for a not-indexed picture under 128 px kept 15
matches with any candidate, while shrunk copies under overlays kept 18-58 with their
originals. With it the thresholds calibrate unchanged and the test split's accepted copies
rise from 0.913 to 0.919 (shrunk overlays 0.58 -> 0.67), for one more false copy among
3,102 edits of not-indexed pictures and none among their originals. Counting from 320 px
(``geometry.SIDE``) instead, replayed on the same searches: 0.1% more copies, one more false
one. A stored image's thumbnail (``bogv.thumbs``, 256 px) tells its size up to this."""
LEAST_INLIERS = 20
"""The fewest matches ``copy_inliers`` asks of however small a query (``containment``'s
``SUPPORTED``): 10, 15 and 20 verified the same copies on the benchmark."""
COPY_PIXELS = 0.918
"""Pixel likeness (``bogv.model.pixels``) from which the best candidate counts as a copy
when no candidate's keypoints made it one; chosen after ``COPY_INLIERS`` on the same
calibration split, so that both tests together keep the 1% budget."""
COPY_ALIGNED = 0.96
"""Pixel likeness where a candidate's keypoint matches put it on the query
(``bogv.placed``) from which it counts as a copy when neither of the tests above made any
candidate one; chosen after ``COPY_PIXELS`` on the same calibration split. Stricter than
the duplicate scan's ``pixels.ALIGNED`` (0.95, chosen on its own bench): two screenshots
of one app window reach 0.957 there, and two of that pair's 23 calibration searches
(0.962, 0.963) are the false copies it adds within the budget."""
MATCH_SIMILARITY = 0.3
"""Lowest similarity at which a candidate's keypoints are matched at all: 0.5% of the
candidates the keypoint check verified on the benchmark were below 0.33, and half of the
candidates of searches for pictures that are not indexed are below 0.3."""
PIXELS_SIMILARITY = 0.35
"""Lowest best similarity at which a search compares pixels (``check_pixels``): 1% of the
copies the pixel check verified on the benchmark were below it, and half of the searches
for pictures that are not indexed, which it spares the check."""
UNCOVERED_SIMILARITY = MATCH_SIMILARITY
"""Lowest best similarity at which a search takes its second look (``check_uncovered``):
where candidates are matched at all. Overlaid copies look further off than other edits
(text over 10-30% of a photo hides much of what the vector sees), so the second look waits
for no closer hit; it costs about one more keypoint extraction."""
COPY_SCORE = 0.5
"""Score from which a hit is a copy (or the same pixels): below it only look-alikes."""
EXACT_SIMILARITY = 0.9999
"""Similarity of the same pixels in another file (float noise only)."""
STAR_VOTES = 10
"""Star triangles (``bogv.starfields``) agreeing on one transform from which the point field
they name is a copy, if ``LEAST_INLIERS`` keypoints match where they put it
(``star_inliers``). Of 12,350 searches of ``bench/quality/quality.py``'s calibration and
test splits, copies and pictures not stored, the 29 that named a field not their own all
did so with 5 votes (``LEAST_VOTES``, the fewest that name one), while their own original
was named with 10 or more in 1,715 of 1,881. A tile of one photo that shares a sixth of
another's stars can get 7 (``tests/test_stars.py``'s Hubble tiles)."""
MIRROR_SIMILARITY = 0.75
"""Lowest best similarity at which a search also matches its mirror image's keypoints
(``check_mirror``). Flipped copies on the benchmark kept at least 0.79 (1%: 0.83); 4% of
searches for pictures not in the index reach 0.75 and so pay for the extra check."""


def copy_inliers(side: float, full: float = COPY_INLIERS) -> float:
    """Keypoint matches that make a copy of a query whose longer side is ``side`` px:
    ``full`` (``COPY_INLIERS``) from ``FULL_SIDE`` up, proportionally fewer below, never
    fewer than ``LEAST_INLIERS`` (nor than ``full``). ``full`` is a parameter only so the
    calibration can try others."""
    return max(min(full, LEAST_INLIERS), full * min(1.0, side / FULL_SIDE))


def star_inliers(votes: int, matches: int, copy_inliers: float) -> int:
    """The keypoint matches a point field named by its stars counts as: its ``matches``
    where the stars put it (``service.star_matches``), or, when ``STAR_VOTES`` or more of
    its triangles agreed (``votes``) and ``LEAST_INLIERS`` of those matched, as many as
    make a copy (``copy_inliers``) times the votes over ``STAR_VOTES``, so that more votes
    score higher. A star field shown full size under an opaque box or a dense watermark
    keeps 18-57 of the 60 matches a copy needs, while its stars still agree."""
    if votes < STAR_VOTES or matches < LEAST_INLIERS:
        return matches
    return max(matches, math.ceil(copy_inliers * votes / STAR_VOTES))


def score(similarity: float, inliers: int = 0, pixels: float = 0.0, *,
          copy_inliers: float = COPY_INLIERS) -> float:
    """The calibrated score in [0, 1] of one hit (``scores``); 0.5 is the copy threshold."""
    return float(scores(similarity, inliers, pixels, copy_inliers=copy_inliers))


def scores(similarity: npt.ArrayLike, inliers: npt.ArrayLike = 0, pixels: npt.ArrayLike = 0.0,
           *, copy_inliers: float = COPY_INLIERS, copy_pixels: float = COPY_PIXELS
           ) -> npt.NDArray[np.float64]:
    """Calibrated scores in [0, 1], element by element; ``COPY_SCORE`` is the copy threshold.

    An unverified candidate scores half its similarity, or ``0.5 * inliers /
    copy_inliers`` when that is higher: keypoint matches short of a copy are still evidence
    of shared pixels, so a copy that kept 40 of them but looks further off than a look-alike
    (a star field among star fields) ranks above it. A candidate the keypoint check verified
    (``inliers >= copy_inliers``) scores ``1 - 0.5 * copy_inliers / inliers``: 0.5 at the
    threshold, rising towards 1. One the pixel check verified (``pixels >= copy_pixels``)
    scores at least 0.5, rising linearly to 1 at identical pixels. The thresholds are
    parameters only so the calibration can try others; ``copy_pixels=inf``: no pixel check.
    """
    s = np.clip(np.asarray(similarity, dtype=np.float64), 0.0, 1.0)
    n = np.asarray(inliers, dtype=np.float64)
    p = np.asarray(pixels, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):  # only in branches np.where drops
        by_points = np.where(n >= copy_inliers, 1.0 - 0.5 * copy_inliers / n,
                             0.5 * np.maximum(n, 0.0) / copy_inliers)
        by_pixels = np.where(p >= copy_pixels,
                             0.5 + 0.5 * (np.minimum(p, 1.0) - copy_pixels) / (1.0 - copy_pixels),
                             0.0)
    best = np.maximum(np.maximum(0.5 * s, by_points), by_pixels)
    return np.where(s >= EXACT_SIMILARITY, 1.0, best)


def verified(inliers: npt.ArrayLike, pixels: npt.ArrayLike = 0.0, *,
             copy_inliers: float = COPY_INLIERS, copy_pixels: float = COPY_PIXELS
             ) -> npt.NDArray[np.bool_]:
    """Which candidates a check made a copy: enough keypoint matches or pixel likeness."""
    return (np.asarray(inliers) >= copy_inliers) | (np.asarray(pixels) >= copy_pixels)


def match(similarity: float, *, same_bytes: bool, inliers: int = 0, pixels: float = 0.0,
          copy_inliers: float = COPY_INLIERS) -> Match:
    """``exact``: the same bytes, or the same pixels; ``copy``: verified by keypoints or
    pixels; else ``similar``, however close it looks."""
    return matches([similarity], [same_bytes], [inliers], [pixels], copy_inliers=copy_inliers)[0]


def matches(similarities: npt.ArrayLike, same_bytes: npt.ArrayLike, inliers: npt.ArrayLike,
            pixels: npt.ArrayLike, *, copy_inliers: float = COPY_INLIERS) -> list[Match]:
    """``match`` of every hit at once: one numpy call per hit, as ``match`` makes, cost
    0.3 ms of a 20 ms search with ten candidates (1.4 ms with fifty)."""
    exact = (np.asarray(similarities) >= EXACT_SIMILARITY) | np.asarray(same_bytes, bool)
    copy = verified(inliers, pixels, copy_inliers=copy_inliers)
    labels: list[Match] = np.where(exact, "exact", np.where(copy, "copy", "similar")).tolist()
    return labels


def check_mirror(similarities: Sequence[float], inliers: Sequence[int], *,
                 copy_inliers: float = COPY_INLIERS) -> bool:
    """Whether a search should also match its mirror image's keypoints against the checked
    candidates: its best hit looks close but is not yet a copy.

    ORB keypoints do not survive a mirror, so a flipped copy is otherwise a copy only when
    the pixel check (which tries the mirror image too) verifies it. Most searches skip it:
    a copy is already verified, an unrelated picture scores lower.
    """
    return _close_but_unverified(similarities, inliers, MIRROR_SIMILARITY, copy_inliers)


def check_more(similarities: Sequence[float], inliers: Sequence[int], *,
               copy_inliers: float = COPY_INLIERS) -> bool:
    """Whether a search should match the keypoints of its next candidates too
    (``service.MORE_CHECKED``), and once every look at those failed, vote among the stored
    images sharing the most descriptor pieces with it (``Service.deeper``): none of the
    first is a copy yet.

    Among thousands of look-alikes (star fields, drawings in one style) an edited copy can
    rank sixth to fiftieth by its vector; a search whose copy is already verified skips
    them, and so does one whose best hit is too far off to be matched at all: 65 of the 80
    searches for not-indexed pictures that ``bench/quality/quality_cost.py`` times. Those
    vote among their first ten only (``check_far``): voting among 50 in those too (after a
    second look taken for it) found 0.3% more of ``bench/quality/quality.py``'s copies, but
    made searches take 2.8 times the plain descriptor's time instead of 1.9 times.
    """
    return _close_but_unverified(similarities, inliers, MATCH_SIMILARITY, copy_inliers)


def check_far(similarities: Sequence[float], inliers: Sequence[int], *,
              copy_inliers: float = COPY_INLIERS) -> bool:
    """Whether a search whose best hit is too far off to be matched at all
    (``MATCH_SIMILARITY``) should vote among its candidates for one to match anyway
    (``service.DOMINANT``): a watermark tiled over a star field takes its vector that far
    from the original's, not its keypoints."""
    return (bool(similarities) and similarities[0] < MATCH_SIMILARITY
            and max(inliers, default=0) < copy_inliers)


def check_stars(similarities: Sequence[float], inliers: Sequence[int], *,
                copy_inliers: float = COPY_INLIERS) -> bool:
    """Whether a search should ask which stored point field its stars were drawn from
    (``bogv.starfields``): no candidate is a copy by its keypoints, however far off its
    best hit looks (a shrunk star field under text is 0.15-0.25 similar to its original).
    """
    return _close_but_unverified(similarities, inliers, -np.inf, copy_inliers)


def check_uncovered(similarities: Sequence[float], inliers: Sequence[int], *,
                    copy_inliers: float = COPY_INLIERS) -> bool:
    """Whether a search should take a second look with its keypoints outside what seems
    drawn over it (``geometry.uncovered_keypoints``): no candidate is a copy yet.

    Text, stickers and emoji drawn over a copy hold the query's strongest corners, so
    its first look keeps too few on the picture itself to verify the copy.
    """
    return _close_but_unverified(similarities, inliers, UNCOVERED_SIMILARITY, copy_inliers)


def check_pixels(similarities: Sequence[float], inliers: Sequence[int], *,
                 copy_inliers: float = COPY_INLIERS) -> bool:
    """Whether a search should compare its pixels with its best candidate's thumbnail
    (``bogv.model.pixels``): no candidate is a copy by its keypoints.

    It is the last resort of copies that keep too few keypoints (small or plain ones); a
    search whose copy is already verified skips it, and so does one whose best hit is
    too far off to be a copy (``PIXELS_SIMILARITY``).
    """
    return _close_but_unverified(similarities, inliers, PIXELS_SIMILARITY, copy_inliers)


def check_aligned(similarities: Sequence[float], inliers: Sequence[int],
                  likeness: Sequence[float], *, copy_inliers: float = COPY_INLIERS) -> bool:
    """Whether a search should compare pixels where keypoint matches put them
    (``bogv.placed``): neither the keypoints' count nor the pixel check made any
    candidate a copy.

    A copy rotated, shown in a screenshot, or with text over a third of it keeps a few
    dozen matches on the picture itself, and its pixels where they put it, while the
    pixel check's coarse-to-fine search looks for an upright whole frame.
    """
    return (_close_but_unverified(similarities, inliers, MATCH_SIMILARITY, copy_inliers)
            and max(likeness, default=0.0) < COPY_PIXELS)


def _close_but_unverified(similarities: Sequence[float], inliers: Sequence[int],
                          lowest: float, copy_inliers: float) -> bool:
    """The best hit is at least ``lowest`` similar, not the same pixels, and no candidate
    is a copy by its keypoints (``copy_inliers``: as ``copy_inliers()`` asks of the query):
    what the extra checks wait for."""
    return (bool(similarities) and lowest <= similarities[0] < EXACT_SIMILARITY
            and max(inliers, default=0) < copy_inliers)
