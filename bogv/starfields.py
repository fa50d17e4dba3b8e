"""Every stored point field's triangles: which one a query's stars were drawn from.

The index of pieces (``bogv.pieces``) finds copies by their ORB descriptors; a star field
shrunk and drawn over keeps too few of those, but the shapes of its star triangles
(``bogv.model.stars``). This index holds the triangles of each stored point field and names
the one whose triangles agree most with a query's on a single transform (a vote per
triangle over the transform's scale and turn, as a Hough transform votes), with that
transform fitted to the stars they pair.

Like the index of pieces it lives in the memory of the process, filled with it from the
record files (``Service.index_pieces``) and following adds and deletes. Most collections
hold few point fields (a photo is no point field: ``stars.DARK``), so it stays small: the
quality bench's 1,712 star fields are 239k triangles, 10 MB (40 bytes a triangle: a
collection of 100k star fields would need ~560 MB). Naming one takes ~6 ms there, 32-36 ms
among the 34k of ``bench/duplicates/duplicates.py``'s 100k images (48-59 ms before its
pairs were read column by column, ``_Grid.near``, and its corners by ``take``).
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable

import cv2
import numpy as np

from . import freed
from .model import geometry, stars
from .model.stars import Aligned

__all__ = ["LEAST_VOTES", "StarFields"]

TOLERANCE = 0.007
"""How far (in side ratios) two triangles' shapes may differ and still pair: 0.01 paired
twice as many by chance, for the same bench figures."""
_BIN = 0.15
"""The vote's bins: of the transform's log scale and of its turn, in radians."""
_BINS = 64
"""Bins of the log scale each way (e ** 9.6 times: more is one bin)."""
LEAST_VOTES = 5
"""Triangles that must agree on a transform before its stored field is named, and the
keypoint match it guides is tried. As first written (mirror images pairing, within 0.01),
on the test split's shrunk overlaid copies the original got 8-59, a look-alike 1-5; under
dark text, a watermark or in a screenshot, 12 originals named with 5-7 kept a copy's
matches, while no look-alike named kept more than 20 (from 4 up: one more original, and
most searches for a star field that is not stored name one)."""
_FITTED = 3.0
"""Px (in the stored grey picture) within which a paired star fits the transform."""
_CHUNK = 32
"""Query triangles a look-up pairs at a time."""
_HASH_BITS = 18
_HASHED = 1 << _HASH_BITS
"""Counters a vote's cells are hashed to before the sort (2 MB)."""
_REBUILT = 0.25
"""Triangles added since the grid was built, as a share of those in it, that rebuild it;
until then they are compared one by one."""


class _Grid:
    """Triangles sorted by the cell their shape falls in (``_FINER`` cells a
    ``TOLERANCE``): those near a shape are in the cells of a rough disc around its own
    (``_WINDOW``)."""

    def __init__(self, parts: list[tuple[np.ndarray, np.ndarray]], ids: np.ndarray,
                 places: np.ndarray) -> None:
        """The triangles of ``parts`` (each: shapes, corners), of the fields ``ids`` by
        ``places``, sorted, one array at a time: the grid of the 100k of
        ``bench/duplicates/duplicates.py`` (34k star fields, 4.7M triangles) is 326 MB
        made all at once, with their corners centred kept too, and lifted the process by
        811 MB while it was made."""
        shapes = np.concatenate([shapes for shapes, _ in parts])
        keys = _cell(shapes)
        order = np.argsort(keys, kind="stable")
        self.keys, self.places, self.ids = keys[order], places[order], ids
        """Each triangle's cell and its field as a place among ``ids`` (int32); the fields'
        ids."""
        self.ratios = np.empty((2, len(order)), shapes.dtype)
        """The shapes' two side ratios, ``(2, t)``: each contiguous, as a look-up reads
        them (``near``), sorted straight into place (no sorted copy of the shapes first)."""
        for ratio, column in zip(self.ratios, shapes.T, strict=True):
            column.take(order, out=ratio)
        del keys, shapes
        # each part's corners put straight to their places (not all concatenated first:
        # 114 MB more at that size)
        sorted_at = np.empty(len(order), np.int32)
        sorted_at[order] = np.arange(len(order), dtype=np.int32)
        del order
        self.corners = np.empty((len(sorted_at), 3, 2), np.float32)
        first = 0
        for _, corners in parts:
            self.corners[sorted_at[first:first + len(corners)]] = corners
            first += len(corners)

    def marked(self, ids: np.ndarray) -> np.ndarray:
        """Which of the grid's fields (by place) are among ``ids``: a look-up leaving out
        the pairs the duplicate scan has decided (tens of ids) tests each triangle once,
        not once an id as ``np.isin`` does with few."""
        where = np.searchsorted(self.ids, ids).clip(max=len(self.ids) - 1)
        mask = np.zeros(len(self.ids), bool)
        mask[where[self.ids[where] == ids]] = True
        return mask

    def near(self, shapes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pairs (query shape, triangle here) within ``TOLERANCE`` of each other, in the
        order of the query's shapes. Each shape reads one run of cells per row of
        ``_WINDOW`` (cells in a row are consecutive keys)."""
        cells = _cells(shapes)
        firsts = cells[:, 0, None] + _WINDOW[None, :, 0]
        low = (firsts * _ROW + cells[:, 1, None] - _WINDOW[None, :, 1]).ravel()
        high = (firsts * _ROW + cells[:, 1, None] + _WINDOW[None, :, 1]).ravel()
        lo = np.searchsorted(self.keys, low, "left")
        sizes = np.searchsorted(self.keys, high, "right") - lo
        at = np.repeat(np.repeat(np.arange(len(shapes)), len(_WINDOW)), sizes)
        hit = np.repeat(lo - np.cumsum(sizes) + sizes, sizes) + np.arange(sizes.sum())
        # the squared distance (``_REACH``), in place, on each ratio's own contiguous array:
        # less than half the time of the distance on rows of two
        ours = np.ascontiguousarray(shapes.T)
        across = self.ratios[0].take(hit)
        across -= ours[0].take(at)
        up = self.ratios[1].take(hit)
        up -= ours[1].take(at)
        across *= across
        up *= up
        across += up
        close = across <= _REACH
        return at[close], hit[close]


def _reach() -> np.float32:
    """The largest squared distance (float32) whose root is within ``TOLERANCE``: compared
    with it, a squared distance pairs exactly the triangles the distance itself would."""
    tolerance = np.float32(TOLERANCE)
    reach = np.float32(tolerance * tolerance)
    while np.sqrt(up := np.nextafter(reach, np.float32(1))) <= tolerance:
        reach = up
    while np.sqrt(reach) > tolerance:
        reach = np.nextafter(reach, np.float32(0))
    return reach


_REACH = _reach()
_FINER = 4
"""Cells a ``TOLERANCE`` spans. A shape's neighbours then lie in the cells of a rough disc
around its own, 4.8 ``TOLERANCE`` squared: a look-up reads 1.5 times as many triangles
as it pairs, against 2.6 times with cells of one ``TOLERANCE`` (the 3 x 3 around its own)."""
_ROW = 1 << 12
"""Keys a row of cells spans (a shape's second side ratio is at most 1: ``stars.codes``)."""


def _window(finer: int) -> np.ndarray:
    """Per row of cells around a shape's own (its offset), how many cells either side of
    its own to read: those whose nearest point can lie within ``finer`` cells of a point
    in its own (a cell k rows or columns off is at least k - 1 cells away that way)."""
    rows = []
    for row in range(-finer, finer + 1):
        down = max(abs(row) - 1, 0)
        reach = max(k for k in range(finer + 1) if down ** 2 + max(k - 1, 0) ** 2 < finer ** 2)
        rows.append((row, reach))
    return np.array(rows, np.int32)


_WINDOW = _window(_FINER)


def _rebuilt(grid: _Grid | None, pending: dict[int, tuple[np.ndarray, np.ndarray]],
             dropped: np.ndarray) -> _Grid:
    """The grid of ``grid``'s fields but ``dropped`` and of those ``pending``."""
    parts = list(pending.values())
    ids = np.fromiter(pending, np.int64, len(pending))
    places = np.repeat(np.arange(len(parts), dtype=np.int32), [len(shapes) for shapes, _ in parts])
    if grid is not None:
        kept = ~grid.marked(dropped)[grid.places]
        parts.insert(0, (grid.ratios[:, kept].T, grid.corners[kept]))
        places = np.concatenate([grid.places[kept], places + len(grid.ids)])
        ids = np.concatenate([grid.ids, ids])
    # places in the order of the fields' ids: ties between fields go to the first
    # (``_Ballot.winner``)
    ids, rank = np.unique(ids, return_inverse=True)
    return _Grid(parts, ids, rank.astype(np.int32)[places])


def _centred(corners: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Triangles' corners (those of ``rows`` alone, when given) around their centre, as
    complex numbers, ``(t, 3)`` (float32 arithmetic as on the corners' coordinates one by
    one, but on contiguous arrays)."""
    points = np.ascontiguousarray(corners, np.float32).view(np.complex64)[..., 0]
    if rows is not None:
        points = points.take(rows, axis=0)
    sums = points[:, 0] + points[:, 1] + points[:, 2]
    centre = (sums.view(np.float32) / np.float32(3)).view(np.complex64)
    centred: np.ndarray = points - centre[:, None]
    return centred


def _cells(shapes: np.ndarray) -> np.ndarray:
    """Each shape's cell, ``(n, 2)`` int32, in float64 so that a shape lands in one cell
    whatever array it came in."""
    cells: np.ndarray = np.floor(shapes.astype(np.float64) * (_FINER / TOLERANCE)).astype(
        np.int32) + _FINER
    return cells


def _cell(shapes: np.ndarray) -> np.ndarray:
    """Each shape's cell as one key, int32 as the grid keeps them (a search of int64 cells
    would copy its keys as int64 each time)."""
    cells = _cells(shapes)
    keys: np.ndarray = cells[:, 0] * _ROW + cells[:, 1]
    return keys


_PER_FIELD = (2 * _BINS) ** 2
"""Cells of the vote per stored field: its scales times its turns."""


def _vote_cell(place: np.ndarray, scale: np.ndarray, turn: np.ndarray) -> np.ndarray:
    """Cells of the vote (``_Ballot``) as one int64 each, in (field's place, scale bin,
    turn bin) order: ``cell // _PER_FIELD`` is the place."""
    cell: np.ndarray = (place.astype(np.int64) * 2 * _BINS + scale.astype(np.int64) + _BINS) * (
        2 * _BINS) + (turn.astype(np.int64) + _BINS)
    return cell


def _spread_over(cells: np.ndarray) -> np.ndarray:
    """Cells (int64, from 0) spread evenly over ``_HASHED`` counters (``geometry.hashed``,
    as the index of pieces spreads its pieces), as ``np.bincount`` counts them. A cell's
    low bits are its turn and scale, of which a look-up fills a few dozen, so counters
    taken from them held ~100 pairs each and kept 98% of a look-up's pairs for the sort."""
    spread: np.ndarray = geometry.hashed(cells.view(np.uint64), _HASH_BITS).view(np.int64)
    return spread


class StarFields:
    """Triangles (``stars.codes``) of stored point fields, by id. Each is kept once: in the
    grid, or, added since it was built, on its own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: set[int] = set()
        self._grid: _Grid | None = None
        self._pending: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._dropped: set[int] = set()
        """Ids dropped since the grid was built, whose triangles it still holds."""

    def __contains__(self, id_: int) -> bool:
        return id_ in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, items: Iterable[tuple[int, bytes]]) -> None:
        """Index ``(id, stars.points)`` pairs; those that are no point field (``b""``) are
        skipped."""
        found = [(i, stars.codes(data)) for i, data in items if data]
        with self._lock:
            for id_, (shape, corners) in found:
                if len(shape) and id_ not in self._ids:
                    self._ids.add(id_)
                    self._pending[id_] = (shape, corners)

    def drop(self, ids: Collection[int]) -> None:
        with self._lock:
            for id_ in ids:
                if id_ in self._ids:
                    self._ids.discard(id_)
                    if self._pending.pop(id_, None) is None:
                        self._dropped.add(id_)

    def _current(self) -> tuple[_Grid | None, dict[int, tuple[np.ndarray, np.ndarray]],
                                np.ndarray]:
        """The grid (rebuilt, without the fields dropped since, once those added since are
        ``_REBUILT`` of it), the fields added since, and those dropped since, as of now."""
        with self._lock:
            grid = self._grid
            built = 0 if grid is None else len(grid.keys)
            dropped = np.fromiter(self._dropped, np.int64, len(self._dropped))
            if sum(len(f[0]) for f in self._pending.values()) > _REBUILT * built:
                self._grid = _rebuilt(grid, self._pending, dropped)
                self._pending, self._dropped = {}, set()
                dropped = dropped[:0]
                freed.give_back()  # the fields' own arrays, and the making's
            return self._grid, dict(self._pending), dropped

    def best(self, query: bytes, leave_out: Collection[int] = ()) -> Aligned | None:
        """The stored point field whose triangles agree most with those of ``query``
        (``stars.points``) on one transform, if ``LEAST_VOTES`` or more do, and that
        transform, fitted to the stars their triangles pair. None of ``leave_out`` (the
        duplicate scan leaves out the stored image asking, and those it has decided)."""
        shape, corners = stars.codes(query)
        if not len(shape):
            return None
        grid, pending, dropped = self._current()
        skipped = np.concatenate([dropped, np.fromiter(leave_out, np.int64, len(leave_out))])
        ballot = _Ballot(corners)
        if grid is not None:
            marked = grid.marked(skipped) if len(skipped) else None
            # A chunk of the query's triangles at a time: a look-up among the 34k fields of
            # ``bench/duplicates/duplicates.py``'s 100k images pairs 372k, whose arrays
            # took 90 MB at once (twice that with two threads of the duplicate scan).
            for first in range(0, len(shape), _CHUNK):
                at, hit = grid.near(shape[first:first + _CHUNK])
                place = grid.places.take(hit)
                if marked is not None:
                    kept = ~marked.take(place)
                    at, hit, place = at[kept], hit[kept], place[kept]
                ballot.cast(at + first, grid.corners, hit, place)
        ids = [*(grid.ids if grid is not None else []), *pending]
        first = len(ids) - len(pending)
        for spot, (id_, (theirs, their_corners)) in enumerate(pending.items(), first):
            if id_ in leave_out:
                continue
            gap = np.linalg.norm(shape[:, None] - theirs[None], axis=2)
            at, hit = np.nonzero(gap <= TOLERANCE)
            ballot.cast(at, their_corners, hit, np.full(len(at), spot))
        found = ballot.winner()
        return None if found is None else Aligned(int(ids[found[0]]), found[1], found[2])


class _Ballot:
    """The vote of a query's triangles paired with stored ones over (stored field, scale,
    turn), cast a chunk of pairs at a time. Each pair keeps its query triangle, its cell of
    the vote and where its stored corners are, not the corners themselves."""

    def __init__(self, corners: np.ndarray) -> None:
        self.corners = corners
        ours = _centred(corners)
        self.conj = np.conj(ours)
        self.weights = np.maximum((np.abs(ours) ** 2).sum(axis=1), 1e-9)
        self.chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        """Per chunk: the query triangles, cells, stored corners and where in them."""

    def cast(self, at: np.ndarray, stored: np.ndarray, hit: np.ndarray,
             place: np.ndarray) -> None:
        """The votes of pairs of query triangles ``at`` and triangles ``hit`` of
        ``stored`` (corners, ``(t, 3, 2)``), of the fields ``place``."""
        if not len(at):
            return
        # The similarity taking each query triangle onto its stored one, least squares
        # (its three terms summed as ``.sum(axis=1)`` would, without a reduction over a
        # short axis).
        terms = self.conj.take(at, axis=0) * _centred(stored, hit)
        z = (terms[:, 0] + terms[:, 1] + terms[:, 2]) / self.weights.take(at)
        scale = np.clip(np.floor(np.log(np.maximum(np.abs(z), 1e-9)) / _BIN),
                        -_BINS, _BINS - 1)
        turn = np.floor(np.angle(z) / _BIN)  # within +-21 bins
        self.chunks.append((at, _vote_cell(place, scale, turn), stored, hit))

    def winner(self) -> tuple[int, int, np.ndarray] | None:
        """The winning cell's field (``place``), votes (one per query triangle) and
        transform, fitted to the stars its pairs pair; None short of ``LEAST_VOTES``."""
        if not self.chunks:
            return None
        at = np.concatenate([a for a, _, _, _ in self.chunks])
        cell = np.concatenate([c for _, c, _, _ in self.chunks])
        # Most pairs are chance ones, alone in their cell: counted by a hash of the cells
        # (cells sharing one add up), a pair whose count is short of ``LEAST_VOTES`` is in
        # no cell that can win, and is left out before the sort (a median 393k pairs to
        # 27k for a look-up among the 34k star fields of
        # ``bench/duplicates/duplicates.py``'s 100k images).
        hashed = _spread_over(cell)
        maybe = np.flatnonzero(np.bincount(hashed, minlength=_HASHED)[hashed] >= LEAST_VOTES)
        if not len(maybe):
            return None
        triangles = len(self.corners)
        votes_cast = np.sort(cell[maybe] * triangles + at[maybe])
        voted = votes_cast[np.r_[True, votes_cast[1:] != votes_cast[:-1]]] // triangles
        starts = np.flatnonzero(np.r_[True, voted[1:] != voted[:-1]])
        cells, votes = voted[starts], np.diff(np.r_[starts, len(voted)])
        won = int(np.argmax(votes))
        if votes[won] < LEAST_VOTES:
            return None
        ours, theirs = [], []
        for their_at, their_cells, stored, hit in self.chunks:
            chosen = their_cells == cells[won]
            ours.append(self.corners[their_at[chosen]])
            theirs.append(stored[hit[chosen]])
        src = np.concatenate(ours).reshape(-1, 2)
        dst = np.concatenate(theirs).reshape(-1, 2)
        pairs = np.unique(np.concatenate([src, dst], 1), axis=0)
        cv2.setRNGSeed(7)
        matrix, _ = cv2.estimateAffinePartial2D(np.ascontiguousarray(pairs[:, :2]),
                                                np.ascontiguousarray(pairs[:, 2:]),
                                                method=cv2.RANSAC,
                                                ransacReprojThreshold=_FITTED)
        if matrix is None:
            return None
        return int(cells[won] // _PER_FIELD), int(votes[won]), matrix
