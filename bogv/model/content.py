"""Where the picture is inside a query: undoing screenshots and pasted-in copies, and
looking past what is drawn over it (``uncovered_cells``).

A screenshot shows the picture inside flat UI (title bar, side panel, margins), which
dominates a whole-frame vector: on ``bench/quality/quality.py`` screenshots were the weakest edit
(0.58 recall@1 from the vector alone). UI is flat, pictures are not. So the busy pixels are
found (a 3x3 neighbourhood spanning more than a few grey levels), thin lines and text
removed (opening: a window's edges and labels are thin), the gaps inside the picture filled
(closing: a sky is smooth), and the largest busy region's box taken. A query whose box
leaves out enough of the frame is also searched as that crop (both its vector and its
keypoints: more of the picture's detail survives the keypoints' 320 px); stored images
never are. On the benchmark: screenshots 0.62 -> 0.90 recall@1, copies accepted 0.33 ->
0.74.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from bogv.model import geometry
from bogv.model.preprocess import SIZE

__all__ = ["CELLS", "content_box", "drawn_over", "framed", "query_views", "stickers",
           "text_boxes", "uncovered_cells"]

_SIDE = 256
_BUSY = 3
"""Grey levels a 3x3 neighbourhood must span to count as picture, not flat UI."""
_OPEN, _CLOSE = np.ones((5, 5), np.uint8), np.ones((9, 9), np.uint8)
_KEEP = 0.8
"""A box with at least this share of the frame's area is the whole frame."""


def content_box(img: Image.Image) -> tuple[int, int, int, int] | None:
    """The box ``(left, top, right, bottom)`` of the picture inside ``img``, or None when
    that is (nearly) the whole frame.

    The picture is the largest busy region; failing that, whatever the flat UI around it
    leaves: a dark photo shown in a dark window is flat (black sky) except for a small
    bright core, yet the window's own flat colours reach it only up to its edge.
    """
    small = img.convert("L")
    small.thumbnail((_SIDE, _SIDE), Image.Resampling.BILINEAR)
    grey = np.asarray(small)
    k3 = np.ones((3, 3), np.uint8)
    flat = (cv2.dilate(grey, k3).astype(np.int16) - cv2.erode(grey, k3)) <= _BUSY
    box = _largest(~flat, grey.size)
    if box is None:
        box = _largest(~_reaching_the_frame(flat), grey.size)
    if box is None:
        return None
    x, y, w, h = box
    sx, sy = img.width / grey.shape[1], img.height / grey.shape[0]
    return (round(x * sx), round(y * sy), round((x + w) * sx), round((y + h) * sy))


_AROUND = 0.4
"""Share of a picture that must lie outside a part of it for that part to be framed."""
_FLATTER = 0.42
"""How much less busy than the part itself what lies around it is, at most, when the part is
framed. On ``bench/duplicates/duplicates.py``'s groups, around a photo inside its
screenshot 0.07-0.34 of it (25 pairs), around a crop inside its original or a rotated copy
0.52-1.65 (15): a window's bars and panels are flat but for their labels, a photo goes on
around its crop. A drawing on a white page around a crop of it would count as framed too."""


def framed(grey: np.ndarray, part: np.ndarray, around: float = _AROUND) -> bool:
    """Whether the ``part`` of a picture (a polygon in the pixels of ``grey``) is framed in
    flat UI, as a photo is in its screenshot, rather than cut from a larger picture; never
    when less than ``around`` of the picture lies outside it (0: asked of any margin, such
    as a caption banner below a photo)."""
    inside = np.zeros(grey.shape, np.uint8)
    cv2.fillConvexPoly(inside, np.round(part).astype(np.int32), 1)
    shown = inside.astype(bool)
    if (~shown).mean() < around or shown.all() or not shown.any():
        return False
    k3 = np.ones((3, 3), np.uint8)
    busy = (cv2.dilate(grey, k3).astype(np.int16) - cv2.erode(grey, k3)) > _BUSY
    return float(busy[~shown].mean()) < _FLATTER * float(busy[shown].mean())


def _reaching_the_frame(flat: np.ndarray) -> np.ndarray:
    """The flat pixels connected to the frame's edge through flat pixels: the UI."""
    _, labels = cv2.connectedComponents(flat.astype(np.uint8), connectivity=4)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    return np.isin(labels, edge[edge > 0])


def _largest(mask: np.ndarray, size: int) -> tuple[int, int, int, int] | None:
    """The box ``(x, y, w, h)`` of the largest region of ``mask`` once thin lines and text
    are opened away and gaps closed; None when it is (nearly) the whole frame or tiny."""
    mask = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, _OPEN)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, _CLOSE)
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count < 2:
        return None
    x, y, w, h, area = stats[1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))]
    if w * h >= _KEEP * size or area < 0.05 * size:
        return None
    return int(x), int(y), int(w), int(h)


def query_views(img: Image.Image) -> list[Image.Image]:
    """What a query is searched as: the whole frame, and the picture inside it when that
    is not the whole frame."""
    box = content_box(img)
    return [img] if box is None else [img, img.crop(box)]


CELLS = SIZE // 32
"""Cells per side of the network's feature map of a view (7 at 224 px)."""
_DRAWN_CELL = 0.1
"""Share of a cell that must seem drawn over (``geometry.overlay_mask``) for it to be left
out, with the cells around it: the network sees 100 px and more around each cell, so
letters on a tenth of one already light up its neighbours."""
_LEAST = 0.01
"""Share of the picture that must seem drawn over for the search to look past it."""
_OUTLINE = 60
"""Grey levels a 3x3 neighbourhood spans on a sticker's outline (``stickers``)."""
_STICKER = (0.002, 0.1)
"""Share of the picture a sticker's flat inside covers: an emoji 10-18% of the shorter side
is 1-3% of the picture, a corner logo 18-30% of it 3-9%; a star's core is smaller."""
_FLAT = 40
"""Mean span of a 3x3 neighbourhood inside a sticker at most: a flat fill, its letters
aside."""


def drawn_over(small: np.ndarray) -> np.ndarray | None:
    """Where something seems drawn over a query's ``geometry.grey`` picture
    (``geometry.overlay_mask``), or None when under ``_LEAST`` of it does: the search then
    looks past it (``uncovered_cells``, the pixel check's ``pixels.pattern(drawn=)``)."""
    mask = geometry.overlay_mask(small)
    return mask if mask.mean() >= _LEAST else None


_LINE = 2.0
"""How many times wider than tall a region drawn over a picture is when it is a line of text."""
_BOX = 0.025
"""How far past its letters, as a share of the picture's longer side, the box a line of text
is drawn on is taken to reach (``overlay_mask`` has grown them by its margin already; the
quality bench draws its boxes a third of a letter's height past them)."""


def text_boxes(drawn: np.ndarray | None) -> np.ndarray | None:
    """What is drawn over a picture (``drawn_over``) with the box each line of text is drawn
    on: every drawn region ``_LINE`` times wider than tall, filled to its bounding box
    grown by ``_BOX``. Text is often drawn on a box, opaque or see-through, whose flat
    inside ``overlay_mask`` does not see: the pixels compared there are the box's. Dark
    text on a light box over a smooth wallpaper: 0.81 -> 0.99 where its keypoint matches
    put it on its original (``placed.likeness``). A drawing's own strokes, taken for drawn
    over, join into regions about as tall as wide and are left as they are."""
    if drawn is None:
        return None
    _, _, stats, _ = cv2.connectedComponentsWithStats(drawn.astype(np.uint8), connectivity=8)
    boxed = drawn.copy()
    pad = round(_BOX * max(drawn.shape))
    for x, y, w, h, _ in stats[1:]:
        if w >= _LINE * h:
            boxed[max(0, y - pad):y + h + pad, max(0, x - pad):x + w + pad] = True
    return boxed


def stickers(small: np.ndarray) -> np.ndarray:
    """Where a ``grey`` picture shows stickers (True): flat shapes closed by a sharp outline
    (``_OUTLINE``), away from the frame's edge, each ``_STICKER`` of the picture, as an
    emoji, a badge or a logo's disc is. ``overlay_mask`` finds dense strokes, and a
    sticker's few letters, or none, are not dense: of eight star fields looked at under
    emoji it found nothing drawn over five, under a corner logo over three, and their flat
    colour then held the vector."""
    span = cv2.morphologyEx(small, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    _, labels, stats, _ = cv2.connectedComponentsWithStats(
        (span < _OUTLINE).astype(np.uint8), connectivity=4)
    height, width = small.shape
    x, y, w, h, area = stats.T
    low, high = _STICKER
    flat = np.bincount(labels.ravel(), weights=span.ravel(), minlength=len(area)) <= _FLAT * area
    chosen = (flat & (x > 0) & (y > 0) & (x + w < width) & (y + h < height)
              & (area >= low * small.size) & (area <= high * small.size))
    chosen[0] = False  # the outlines themselves
    grown: np.ndarray = cv2.dilate(chosen[labels].astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    return grown


def uncovered_cells(small: np.ndarray, drawn: np.ndarray | None) -> np.ndarray | None:
    """Which cells of the whole frame's feature map (``CELLS`` x ``CELLS``, 1: kept, 0: left
    out) lie clear of what seems ``drawn`` over a query's ``grey`` picture (``drawn_over``,
    None when nothing is) and of its ``stickers``, for a vector pooled over them alone;
    None when every cell or none is left out.

    Text and stickers hold the strongest activations, which GeM pooling weights most, so a
    caption over a photo moves its vector more than the photo's own content does. Pooled
    outside them the vector finds its original again more often: on
    ``bench/quality/quality.py``'s overlay edits recall@1 0.83 -> 0.87 (calibration split),
    0.82 -> 0.84 (test); mostly star fields, whose whole frame is a few faint dots beside
    the letters. Stickers too (test split, the vector's first candidate): star fields with
    emoji 0.51 -> 0.61, with a corner logo 0.79 -> 0.90; all star fields' edits 0.808 ->
    0.819, the other pictures' 0.987 -> 0.989.
    """
    found = stickers(small)
    if drawn is not None:
        found |= drawn
    share = cv2.resize(found.astype(np.float32), (CELLS, CELLS), interpolation=cv2.INTER_AREA)
    covered = cv2.dilate((share > _DRAWN_CELL).astype(np.uint8), np.ones((3, 3), np.uint8))
    if covered.all() or not covered.any():
        return None
    cells: np.ndarray = (1 - covered).astype(np.float32)
    return cells
