"""Every stored picture's descriptor pieces: the copies a search's vector does not find.

Under a tiled watermark, dark text or emoji the CNN vector of a copy is mostly the
overlay's, and its original can rank past the 50th candidate (79 of the 4,400 test searches
of ``bench/quality/quality.py``). Its ORB descriptors on the picture left visible are still
the original's, bit for bit, and so are whole 4-byte pieces of them (``geometry.shared``).
This index holds the distinct pieces of every stored image (the first ``PLACES`` of each
descriptor's eight, as table slots) and answers which images share the most with a query.
A search's vote past its first ten candidates is taken among those, over the whole
collection, instead of among the vector's candidates 11-50: of those 79 searches the
original shared the most pieces of all 4,855 stored images in 51.

It lives in the memory of the process (Milvus Lite 2.5.1 holds sparse vectors, but answered
one such query in 5.5-60 ms with 5k images, a search's whole budget), is filled from the
keypoint files when first needed (``Service.index_pieces``), and follows this process's
adds and deletes as they happen (and a server's other replicas' adds through ``Service``).
Images are kept in sorted segments, merged as they double, as an LSM tree keeps them, so
that adding one never re-sorts them all.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from .model import geometry

__all__ = ["PLACES", "Pieces"]

PLACES = 2
"""Pieces of each descriptor indexed: about 420 slots an image, 170 MB of postings at 100k
images. All eight (1,700 slots an image) found the original first in 0.845 of the test
searches, two in 0.791; every piece asked, the copies called ``copy`` were 0.9530 of them
with two against 0.9536 with eight (0.9480 with the vector's candidates 11-50); 0.9550 with
two and the common ones left out (``_COMMON``)."""

_FROZEN = 256
"""Images added before they are sorted into a segment (until then, read one by one)."""
_COMMON = 0.01
"""A piece filed under more than this share of the stored images (and more than
``_FEWEST``) is not asked: the pieces of flat patches and plain edges are everywhere (at
10k images, the 4,042 slots holding over 100 images held a third of all postings), tell
images apart no better than chance, and would make a query read much of the index."""
_FEWEST = 64
_PLACED = 1 << 18
"""Postings a merge places at a time (``_Segment.merged``): 6 MB of indices beside it."""
_POSTING = np.dtype([("position", "<u4"), ("slot", "<u4")])
"""A posting as it is sorted: read as one little-endian uint64, ``slot << 32 | position``."""


@dataclass(frozen=True)
class _Segment:
    """Postings sorted by slot: the images (positions) filed under ``keys[i]`` are
    ``positions[starts[i]:starts[i + 1]]``."""

    keys: np.ndarray
    starts: np.ndarray
    positions: np.ndarray

    @classmethod
    def of(cls, slots: np.ndarray, positions: np.ndarray) -> _Segment:
        """Postings sorted as one uint64 each (``slot << 32 | position``), in place: no
        array of indices (``argsort``'s int64) or sorted copy beside them."""
        postings = np.empty(len(slots), _POSTING)
        postings["slot"], postings["position"] = slots, positions
        postings.view("<u8").sort()
        slots = postings["slot"]
        starts = np.flatnonzero(np.concatenate([[True], slots[1:] != slots[:-1], [True]]))
        return cls(slots[starts[:-1]], starts, postings["position"].copy())

    def merged(self, other: _Segment) -> _Segment:
        """This segment's postings and ``other``'s, whose images were added later (so each
        slot's positions stay in order), placed straight where they belong in the merged
        positions, ``_PLACED`` at a time: sorting them again as ``slot << 32 | position``
        took 8 bytes a posting beside both segments and a copy of the positions, and the
        last merge of filling the index of 100k images (40M postings) lifted the process
        from 427 MB to 1,434 MB."""
        keys = np.concatenate([self.keys, other.keys])
        keys.sort()  # not ``np.union1d``: numpy 2.4's hashing took it 12 times as long
        keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])]
        mine, theirs = np.searchsorted(keys, self.keys), np.searchsorted(keys, other.keys)
        ahead = np.zeros(len(keys), np.int64)  # this segment's postings under each slot
        ahead[mine] = np.diff(self.starts)
        counts = ahead.copy()
        counts[theirs] += np.diff(other.starts)
        starts = np.concatenate([[0], np.cumsum(counts)])
        positions = np.empty(starts[-1], self.positions.dtype)
        self._place(positions, starts[mine])
        other._place(positions, starts[theirs] + ahead[theirs])
        return _Segment(keys, starts, positions)

    def _place(self, into: np.ndarray, at: np.ndarray) -> None:
        """Copy the postings filed under ``keys[i]`` to ``into[at[i]:]``, a block of
        slots holding about ``_PLACED`` postings at a time."""
        lengths = np.diff(self.starts)
        shifts = at - self.starts[:-1]
        cuts = np.searchsorted(self.starts, np.arange(_PLACED, len(self.positions), _PLACED))
        for first, last in pairwise([0, *np.unique(cuts), len(self.keys)]):
            begin, end = self.starts[first], self.starts[last]
            into[np.arange(begin, end) + np.repeat(shifts[first:last], lengths[first:last])] = (
                self.positions[begin:end])

    def filed(self, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where each of ``query``'s slots is filed here: its first posting and how many
        (0 for none)."""
        at = np.minimum(np.searchsorted(self.keys, query), len(self.keys) - 1)
        there = self.keys[at] == query
        first = np.where(there, self.starts[at], 0)
        return first, np.where(there, self.starts[at + 1] - self.starts[at], 0)

    def holding(self, first: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """The positions of the postings ``filed`` found (those asked)."""
        steps = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        positions: np.ndarray = self.positions[np.repeat(first, lengths) + steps]
        return positions


class Pieces:
    """The index: ``add`` stored images, ``drop`` deleted ones, ask for the ``best``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = np.zeros(1024, np.int64)
        self._alive = np.zeros(1024, bool)
        self._count = 0
        self._segments: list[_Segment] = []
        self._pending: list[tuple[int, np.ndarray]] = []
        self._held: set[int] = set()
        self._freezing = False
        """Whether an ``add`` is sorting images into segments (one at a time)."""

    def __len__(self) -> int:
        return int(self._alive[:self._count].sum())

    def __contains__(self, id_: object) -> bool:
        """Whether this id was added (dropped since or not): a re-read skips its file."""
        return id_ in self._held

    def add(self, images: Iterable[tuple[int, bytes]]) -> None:
        """Index images by id and packed keypoints (an image without any is left out).

        An id already held is left as it is: the first fill and the adds that arrive
        while it reads (``Service.index_pieces``) may both bring an image. Every
        ``_FROZEN`` images, the add that brings them sorts them into a segment
        (``_frozen``) while the others go on."""
        found = [(id_, geometry.pieces(points, PLACES)) for id_, points in images if points]
        with self._lock:
            for id_, slots in found:
                if id_ in self._held:
                    continue
                self._held.add(id_)
                if self._count == len(self._ids):
                    self._ids = np.concatenate([self._ids, np.zeros_like(self._ids)])
                    self._alive = np.concatenate([self._alive, np.zeros_like(self._alive)])
                self._ids[self._count], self._alive[self._count] = id_, True
                self._pending.append((self._count, slots))
                self._count += 1
            if len(self._pending) < _FROZEN or self._freezing:
                return
            self._freezing = True
            frozen, segments = list(self._pending), list(self._segments)
        merged: list[_Segment] | None = None
        try:
            merged = _frozen(segments, frozen)
        finally:
            with self._lock:
                if merged is not None:
                    self._segments, self._pending = merged, self._pending[len(frozen):]
                self._freezing = False

    def drop(self, ids: Collection[int]) -> None:
        """Deleted images are never answered again (their postings stay until restart)."""
        with self._lock:
            self._alive[:self._count] &= ~np.isin(self._ids[:self._count], list(ids))

    def best(self, looks: Sequence[bytes], n: int, leave_out: Collection[int] = ()
             ) -> list[int]:
        """The ids of the ``n`` images (fewer when fewer share any) sharing the most pieces
        with any of ``looks`` (packed keypoints), most first, none of ``leave_out``."""
        query = np.unique(np.concatenate([geometry.pieces(p, PLACES) for p in looks if p]
                                         or [np.zeros(0, np.uint32)]))
        with self._lock:
            filed = [segment.filed(query) for segment in self._segments]
            at, owners = _pending_holding(self._pending, query)
            images = sum((lengths for _, lengths in filed), np.bincount(at, minlength=len(query)))
            asked = images <= max(_FEWEST, _COMMON * self._count)
            held = [segment.holding(first[asked], lengths[asked])
                    for segment, (first, lengths) in zip(self._segments, filed, strict=True)]
            held.append(owners[asked[at]])
            votes = np.bincount(np.concatenate(held or [np.zeros(0, np.int64)]),
                                minlength=self._count)
            voted = np.flatnonzero(votes)
            voted = voted[self._alive[voted] & ~np.isin(self._ids[voted], list(leave_out))]
            ranked = voted[np.argsort(-votes[voted], kind="stable")[:n]]
            return [int(i) for i in self._ids[ranked]]


def _postings(pending: list[tuple[int, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """The pending images' slots, concatenated, and the position of the image of each."""
    return (np.concatenate([s for _, s in pending]),
            np.repeat([p for p, _ in pending], [len(s) for _, s in pending]))


def _pending_holding(pending: list[tuple[int, np.ndarray]], query: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The query's slots (sorted, distinct) the pending images hold: for each such posting,
    the slot's index in ``query`` and the image's position. All pending images at once: one
    by one, the 1,000 a page of the first fill leaves pending while it is sorted cost a
    search 38 ms."""
    if not pending or len(query) == 0:
        return np.zeros(0, np.intp), np.zeros(0, np.int64)
    slots, owners = _postings(pending)
    at = np.minimum(np.searchsorted(query, slots), len(query) - 1)
    holds = query[at] == slots
    return at[holds], owners[holds]


def _frozen(segments: list[_Segment], pending: list[tuple[int, np.ndarray]]
            ) -> list[_Segment]:
    """``segments`` with the ``pending`` images sorted into a new one, merged as they
    double. Out of the index's lock: at 100k images the largest merge took 0.5 s, which
    held up every add and search meanwhile; they read the segments and pending images as
    they were until the new segments take their place."""
    segments = [*segments, _Segment.of(*_postings(pending))]
    while len(segments) > 1 and 2 * len(segments[-1].positions) >= len(segments[-2].positions):
        last = segments.pop()
        segments[-1] = segments[-1].merged(last)
    return segments
