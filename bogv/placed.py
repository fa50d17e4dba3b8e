"""Pixels where the keypoint matches put one picture on the other: the check that verifies
a copy whose matches alone are too few.

A copy keeps its original's pixels, whatever else was done to it; a look-alike keeps some of
its keypoints (a building front from a step aside, one dialog with another tab open) but
not its pixels everywhere they overlap. The pixel check (``pixels.likeness``) looks for a
whole frame, or a crop keeping half of one, inside the other; the matches already say
where, at any scale and rotation: a photo a quarter of a screenshot's size, or rotated.
Both the duplicate scan (``containment.supported``) and a search (``service.verify``) ask
it, each at its own threshold.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from bogv import thumbs
from bogv.model import geometry, pixels
from bogv.model.content import drawn_over, text_boxes

__all__ = ["decode", "likeness"]


def decode(thumbnail: bytes) -> Image.Image:
    """A thumbnail as an RGB image; a blank one (no keypoints, a flat pattern that matches
    nothing) when it is missing or unreadable."""
    img = thumbs.decode(thumbnail)
    return Image.new("RGB", (pixels.SIDE, pixels.SIDE)) if img is None else img


def likeness(mine: np.ndarray, drawn: np.ndarray | None, scales: tuple[float, ...],
             thumbnail: bytes, matched: geometry.Matched, enough: float) -> float:
    """``pixels.aligned`` of a grey picture (``mine``, with what is ``drawn`` over it) and a
    stored thumbnail's where ``matched`` (of ``mine``'s keypoints and the stored ones) puts
    them, clear of what is drawn over either, lines of text with the box they are drawn on
    (``content.text_boxes``; letters over the other, checked from the original's side, had
    cost a copy 0.07-0.18): the best at the sizes ``mine``'s keypoints
    may have been found at (``scales``: its pixels per keypoint pixel) and the thumbnail's
    (``thumbs.keypoint_scales``), stopping at the first that reaches ``enough``. The
    thumbnail is decoded here and not kept (a scan checks many)."""
    other = decode(thumbnail)
    theirs = geometry.grey(other)
    drawn, drawn_there = text_boxes(drawn), text_boxes(drawn_over(theirs))
    linear, shift = matched.matrix[:, :2].astype(np.float64), matched.matrix[:, 2:]
    best = -1.0
    for here in scales:
        for there in thumbs.keypoint_scales(other):
            matrix = np.hstack([linear * (there / here), shift * there])
            best = max(best, pixels.aligned(mine, theirs, matrix, drawn, drawn_there))
            if best >= enough:
                return best
    return best
