"""From a raw similarity to what users see: a calibrated ``score`` and a ``match`` label.

The similarity of a hit is the cosine of the query's vector and the stored image's
(``bogv.model.descriptor``). It ranks look-alikes well but cannot decide what a copy is: an
edited copy and another photo of the same subject can both reach 0.9 (a stereo pair 0.91,
two screenshots of one dialog 0.89 on ``bench/quality.py``). So similarity alone never
makes a copy. The best candidates go through a keypoint check (``bogv.model.geometry``):
one that keeps ``COPY_INLIERS`` consistent matches is a copy. When none does, the best
candidate's thumbnail is compared with the query pixel by pixel (``bogv.model.pixels``,
``COPY_PIXELS``): copies too small or too plain for keypoints. Both thresholds were chosen
on the calibration split of ``bench/quality.py`` (images never used for the test figures):
the lowest at which at most 1% of searches for *not-indexed* pictures (and edits of them)
would call their best hit a copy. The score puts them at exactly 0.5:

    unverified: score = 0.5 * similarity, or 0.5 * inliers / COPY_INLIERS if higher
    verified:   score = 0.5 .. 1, rising with the keypoint matches or the pixel likeness
    exact:      score = 1

so ``min_score=0.5`` keeps only copies whatever the model's raw scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

__all__ = ["COPY_INLIERS", "COPY_PIXELS", "EXACT_SIMILARITY",
           "MATCH_SIMILARITY", "MIRROR_SIMILARITY", "PIXELS_SIMILARITY", "Match",
           "check_mirror", "check_more", "check_pixels", "match", "score"]

Match = Literal["exact", "copy", "similar"]

COPY_INLIERS = 60
"""Keypoint matches one transform must explain for the second stage to call a copy. (76
while the calibration split counted derivatives of the index's own pictures, such as a
drawing recoloured with an arrow added, as false copies: ``bench/related.csv``.)"""
COPY_PIXELS = 0.918
"""Pixel likeness (``bogv.model.pixels``) from which the best candidate counts as a copy
when no candidate's keypoints made it one; chosen after ``COPY_INLIERS`` on the same
calibration split, so that both tests together keep the 1% budget."""
MATCH_SIMILARITY = 0.3
"""Lowest similarity at which a candidate's keypoints are matched at all: 0.5% of the
candidates the keypoint check verified on the benchmark were below 0.33, and half of the
candidates of searches for pictures that are not indexed are below 0.3."""
PIXELS_SIMILARITY = 0.35
"""Lowest best similarity at which a search compares pixels (``check_pixels``): 1% of the
copies the pixel check verified on the benchmark were below it, and half of the searches
for pictures that are not indexed, which it spares the check."""
EXACT_SIMILARITY = 0.9999
"""Similarity of the same pixels in another file (float noise only)."""
MIRROR_SIMILARITY = 0.75
"""Lowest best similarity at which a search also matches its mirror image's keypoints
(``check_mirror``). Flipped copies on the benchmark kept at least 0.79 (1%: 0.83); 4% of
searches for pictures not in the index reach 0.75 and so pay for the extra check."""


def score(similarity: float, inliers: int = 0, pixels: float = 0.0) -> float:
    """The calibrated score in [0, 1]; 0.5 is the copy threshold.

    An unverified candidate scores half its similarity, or ``0.5 * inliers /
    COPY_INLIERS`` when that is higher: keypoint matches short of a copy are still evidence
    of shared pixels, so a copy that kept 40 of them but looks further off than a look-alike
    (a star field among star fields) ranks above it. A candidate the keypoint check verified
    (``inliers >= COPY_INLIERS``) scores ``1 - 0.5 * COPY_INLIERS / inliers``: 0.5 at the
    threshold, rising towards 1. One the pixel check verified (``pixels >= COPY_PIXELS``)
    scores at least 0.5, rising linearly to 1 at identical pixels.
    """
    s = min(max(similarity, 0.0), 1.0)
    if s >= EXACT_SIMILARITY:
        return 1.0
    if inliers >= COPY_INLIERS:
        by_points = 1.0 - 0.5 * COPY_INLIERS / inliers
    else:
        by_points = 0.5 * max(inliers, 0) / COPY_INLIERS
    by_pixels = 0.0
    if pixels >= COPY_PIXELS:
        by_pixels = 0.5 + 0.5 * (min(pixels, 1.0) - COPY_PIXELS) / (1.0 - COPY_PIXELS)
    return max(0.5 * s, by_points, by_pixels)


def match(similarity: float, *, same_bytes: bool, inliers: int = 0, pixels: float = 0.0
          ) -> Match:
    """``exact``: the same bytes, or the same pixels; ``copy``: verified by keypoints or
    pixels; else ``similar``, however close it looks."""
    if same_bytes or similarity >= EXACT_SIMILARITY:
        return "exact"
    if inliers >= COPY_INLIERS or pixels >= COPY_PIXELS:
        return "copy"
    return "similar"


def check_mirror(similarities: Sequence[float], inliers: Sequence[int]) -> bool:
    """Whether a search should also match its mirror image's keypoints against the checked
    candidates: its best hit looks close but is not yet a copy.

    ORB keypoints do not survive a mirror, so a flipped copy is otherwise a copy only when
    the pixel check (which tries the mirror image too) verifies it. Most searches skip it:
    a copy is already verified, an unrelated picture scores lower.
    """
    return _close_but_unverified(similarities, inliers, MIRROR_SIMILARITY)


def check_more(similarities: Sequence[float], inliers: Sequence[int]) -> bool:
    """Whether a search should match the keypoints of its next candidates too
    (``service.MORE_CHECKED``): none of the first is a copy yet.

    Among thousands of look-alikes (star fields, drawings in one style) an edited copy can
    rank sixth to tenth by its vector; a search whose copy is already verified skips them.
    """
    return _close_but_unverified(similarities, inliers, MATCH_SIMILARITY)


def check_pixels(similarities: Sequence[float], inliers: Sequence[int]) -> bool:
    """Whether a search should compare its pixels with its best candidate's thumbnail
    (``bogv.model.pixels``): no candidate is a copy by its keypoints.

    It is the last resort of copies that keep too few keypoints (small or plain ones); a
    search whose copy is already verified skips it, and so does one whose best hit is
    too far off to be a copy (``PIXELS_SIMILARITY``).
    """
    return _close_but_unverified(similarities, inliers, PIXELS_SIMILARITY)


def _close_but_unverified(similarities: Sequence[float], inliers: Sequence[int],
                          lowest: float) -> bool:
    """The best hit is at least ``lowest`` similar, not the same pixels, and no candidate
    is a copy by its keypoints: what the extra checks wait for."""
    return (bool(similarities) and lowest <= similarities[0] < EXACT_SIMILARITY
            and max(inliers, default=0) < COPY_INLIERS)
