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
quality bench's 1,740 star fields are 242k triangles, 8 MB.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable

import cv2
import numpy as np

from .model import stars
from .model.stars import Aligned

__all__ = ["LEAST_VOTES", "StarFields"]

TOLERANCE = 0.01
"""How far (in side ratios) two triangles' shapes may differ and still pair."""
_BIN = 0.15
"""The vote's bins: of the transform's log scale and of its turn, in radians."""
LEAST_VOTES = 5
"""Triangles that must agree on a transform before its stored field is named, and the
keypoint match it guides is tried. On the test split's shrunk overlaid copies the original
got 8-59, a look-alike 1-5; under dark text, a watermark or in a screenshot, 12 originals
named with 5-7 kept a copy's matches, while no look-alike named kept more than 20 (from 4
up: one more original, and most searches for a star field that is not stored name one)."""
_FITTED = 3.0
"""Px (in the stored grey picture) within which a paired star fits the transform."""
_REBUILT = 0.25
"""Triangles added since the grid was built, as a share of those in it, that rebuild it;
until then they are compared one by one."""


class _Grid:
    """Triangles sorted by the cell of ``TOLERANCE`` their shape falls in: those near a
    shape are in its cell's and the eight around it."""

    def __init__(self, shapes: np.ndarray, corners: np.ndarray, owners: np.ndarray) -> None:
        keys = _cell(shapes)
        order = np.argsort(keys, kind="stable")
        self.keys, self.shapes = keys[order], shapes[order]
        self.corners, self.owners = corners[order], owners[order]

    def near(self, shapes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pairs (query shape, triangle here) within ``TOLERANCE`` of each other."""
        around = (_cell(shapes)[:, None] + _AROUND[None]).ravel()
        lo = np.searchsorted(self.keys, around, "left")
        hi = np.searchsorted(self.keys, around, "right")
        sizes = hi - lo
        at = np.repeat(np.repeat(np.arange(len(shapes)), len(_AROUND)), sizes)
        hit = np.repeat(lo - np.cumsum(sizes) + sizes, sizes) + np.arange(sizes.sum())
        close = np.linalg.norm(shapes[at] - self.shapes[hit], axis=1) <= TOLERANCE
        return at[close], hit[close]


_ROW = 1 << 10
_AROUND = np.array([dx * _ROW + dy for dx in (-1, 0, 1) for dy in (-1, 0, 1)])


def _cell(shapes: np.ndarray) -> np.ndarray:
    cells = np.floor(shapes / TOLERANCE).astype(np.int64) + 1
    return cells[:, 0] * _ROW + cells[:, 1]


class StarFields:
    """Triangles (``stars.codes``) of stored point fields, by id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fields: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._grid: _Grid | None = None
        self._pending: list[int] = []

    def __contains__(self, id_: int) -> bool:
        return id_ in self._fields

    def __len__(self) -> int:
        return len(self._fields)

    def add(self, items: Iterable[tuple[int, bytes]]) -> None:
        """Index ``(id, stars.points)`` pairs; those that are no point field (``b""``) are
        skipped."""
        found = [(i, stars.codes(data)) for i, data in items if data]
        with self._lock:
            for id_, (shape, corners) in found:
                if len(shape) and id_ not in self._fields:
                    self._fields[id_] = (shape, corners)
                    self._pending.append(id_)

    def drop(self, ids: Collection[int]) -> None:
        with self._lock:
            for id_ in ids:
                self._fields.pop(id_, None)

    def _current(self) -> tuple[_Grid | None, dict[int, tuple[np.ndarray, np.ndarray]],
                                np.ndarray]:
        """The grid of all triangles but those added since it was built (rebuilt once they
        are ``_REBUILT`` of it), those fields, and the ids stored, as of now."""
        with self._lock:
            built = 0 if self._grid is None else len(self._grid.keys)
            pending = {i: self._fields[i] for i in self._pending if i in self._fields}
            if sum(len(f[0]) for f in pending.values()) > _REBUILT * built:
                ids = list(self._fields)
                shapes = [self._fields[i][0] for i in ids]
                self._grid = _Grid(np.concatenate(shapes),
                                   np.concatenate([self._fields[i][1] for i in ids]),
                                   np.repeat(ids, [len(s) for s in shapes]))
                self._pending, pending = [], {}
            return self._grid, pending, np.fromiter(self._fields, np.int64, len(self._fields))

    def best(self, query: bytes) -> Aligned | None:
        """The stored point field whose triangles agree most with those of ``query``
        (``stars.points``) on one transform, if ``LEAST_VOTES`` or more do, and that
        transform, fitted to the stars their triangles pair."""
        shape, corners = stars.codes(query)
        if not len(shape):
            return None
        grid, pending, stored = self._current()
        pairs = []  # (query triangle, stored corners, stored id) of each pair
        if grid is not None:
            at, hit = grid.near(shape)
            kept = np.isin(grid.owners[hit], stored)  # not deleted since it was built
            pairs.append((at[kept], grid.corners[hit[kept]], grid.owners[hit[kept]]))
        for id_, (theirs, their_corners) in pending.items():
            gap = np.linalg.norm(shape[:, None] - theirs[None], axis=2)
            at, hit = np.nonzero(gap <= TOLERANCE)
            pairs.append((at, their_corners[hit], np.full(len(at), id_)))
        at = np.concatenate([p[0] for p in pairs]) if pairs else np.zeros(0, np.int64)
        if not len(at):
            return None
        return _voted(at, corners[at], np.concatenate([p[1] for p in pairs]),
                      np.concatenate([p[2] for p in pairs]))


def _voted(at: np.ndarray, mine: np.ndarray, theirs: np.ndarray, owner: np.ndarray
           ) -> Aligned | None:
    """The winner of the vote of paired triangles (``at``: the query triangle of each pair,
    ``mine``/``theirs``: the pair's corners) over (stored id, scale, turn)."""
    a = mine - mine.mean(axis=1, keepdims=True)
    b = theirs - theirs.mean(axis=1, keepdims=True)
    za, zb = a[..., 0] + 1j * a[..., 1], b[..., 0] + 1j * b[..., 1]
    z = (np.conj(za) * zb).sum(axis=1) / np.maximum((np.abs(za) ** 2).sum(axis=1), 1e-9)
    scale = np.floor(np.log(np.maximum(np.abs(z), 1e-9)) / _BIN).astype(np.int64)
    turn = np.floor(np.angle(z) / _BIN).astype(np.int64)
    cell = np.stack([owner, scale, turn], 1)
    # One vote per query triangle and cell.
    voters = np.unique(np.concatenate([cell, at[:, None]], 1), axis=0)
    cells, votes = np.unique(voters[:, :3], axis=0, return_counts=True)
    won = int(np.argmax(votes))
    if votes[won] < LEAST_VOTES:
        return None
    chosen = (cell == cells[won]).all(axis=1)
    src = mine[chosen].reshape(-1, 2)
    dst = theirs[chosen].reshape(-1, 2)
    pairs = np.unique(np.concatenate([src, dst], 1), axis=0)
    cv2.setRNGSeed(7)
    matrix, _ = cv2.estimateAffinePartial2D(np.ascontiguousarray(pairs[:, :2]),
                                            np.ascontiguousarray(pairs[:, 2:]),
                                            method=cv2.RANSAC, ransacReprojThreshold=_FITTED)
    if matrix is None:
        return None
    return Aligned(int(cells[won][0]), int(votes[won]), matrix)
