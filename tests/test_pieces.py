"""The index of every stored picture's descriptor pieces (``bogv.pieces``)."""

from __future__ import annotations

import threading
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import astuple

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageFilter

from bogv import pieces as pieces_module
from bogv import service as service_module
from bogv.api.app import create_app
from bogv.config import Settings
from bogv.model import geometry
from bogv.pieces import _COMMON, _FEWEST, _FROZEN, PLACES, Pieces
from bogv.service import Service

from .images import PHOTOS, dialog, encode, photo, text_box

_POINT = np.dtype([("x", "<u2"), ("y", "<u2"), ("d", "u1", 32)])


def _random_points(rng: np.random.Generator, n: int, values: int = 4) -> bytes:
    """Packed keypoints of random descriptors of ``values`` byte values (few: pieces
    repeat across images)."""
    packed = np.zeros(n, _POINT)
    packed["d"] = rng.integers(0, values, (n, 32))
    return packed.tobytes()


def _cropped(img: Image.Image) -> Image.Image:
    w, h = img.size
    return img.crop((w // 10, h // 10, w - w // 10, h - h // 10))


def test_the_image_sharing_the_most_pieces_comes_first_and_left_out_or_dropped_never() -> None:
    pieces = Pieces()
    pieces.add((i, geometry.keypoints(photo(name))) for i, name in enumerate(PHOTOS))
    astronaut = PHOTOS.index("astronaut")
    copy, _ = text_box(_cropped(photo("astronaut")))
    looks = [geometry.keypoints(copy)]
    assert pieces.best(looks, 2)[0] == astronaut and len(pieces) == len(PHOTOS)
    assert astronaut not in pieces.best(looks, len(PHOTOS), leave_out={astronaut})
    pieces.drop([astronaut])
    assert astronaut not in pieces.best(looks, len(PHOTOS)) and len(pieces) == len(PHOTOS) - 1
    assert pieces.best([b""], 2) == []
    assert astronaut in pieces and len(PHOTOS) not in pieces  # dropped ids stay held
    pieces.add([(0, geometry.keypoints(photo(PHOTOS[0])))])  # held already: left as it is
    assert len(pieces) == len(PHOTOS) - 1 and astronaut not in pieces.best(looks, len(PHOTOS))


def test_sorted_segments_and_images_not_yet_sorted_answer_as_counting_each_image_would(
        ) -> None:
    """Random descriptors, so that many images share a few pieces and the order of the
    answer is that of the counts, ties to the image added first; pieces filed under too
    many images are not counted."""
    rng = np.random.default_rng(7)
    stored = [_random_points(rng, 250) for _ in range(700)]
    pieces = Pieces()
    for first in range(0, len(stored), 100):
        pieces.add((i, stored[i]) for i in range(first, first + 100))
    assert pieces._segments and pieces._pending  # both kinds are asked
    slots = [geometry.pieces(s, PLACES) for s in stored]
    filed, images = np.unique(np.concatenate(slots), return_counts=True)
    common = filed[images > max(_FEWEST, _COMMON * len(stored))]  # not asked
    assert len(common) > 0
    for query in (_random_points(rng, 250), stored[3], stored[650]):
        mine = np.setdiff1d(geometry.pieces(query, PLACES), common)
        counts = [len(np.intersect1d(s, mine)) for s in slots]
        expected = [i for i in sorted(range(len(stored)), key=lambda i: -counts[i])
                    if counts[i] > 0][:5]
        assert pieces.best([query], 5) == expected


def test_an_add_sorting_images_into_segments_holds_up_no_other_add_or_search(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The add that brings the ``_FROZEN``-th pending image sorts them (and merges
    segments: 0.5 s at 100k images) out of the lock; meanwhile other adds and searches
    answer from the pending images, and what they add stays pending after."""
    rng = np.random.default_rng(8)
    stored = [_random_points(rng, 250, 256) for _ in range(_FROZEN + 1)]
    sorting, release = threading.Event(), threading.Event()
    sort = pieces_module._Segment.of

    def held(slots: np.ndarray, positions: np.ndarray) -> object:
        sorting.set()
        release.wait(30)
        return sort(slots, positions)

    monkeypatch.setattr(pieces_module._Segment, "of", held)
    pieces = Pieces()
    first = threading.Thread(target=pieces.add, args=([(i, stored[i]) for i in range(_FROZEN)],))
    first.start()
    assert sorting.wait(30)
    answers: list[list[int]] = []

    def meanwhile() -> None:
        pieces.add([(_FROZEN, stored[_FROZEN])])
        answers.extend(pieces.best([stored[i]], 1) for i in (3, _FROZEN))

    other = threading.Thread(target=meanwhile)
    other.start()
    other.join(10)
    held_up = other.is_alive()
    release.set()
    first.join(30)
    other.join(30)
    assert not held_up and answers == [[3], [_FROZEN]]
    assert len(pieces._segments) == 1 and len(pieces._pending) == 1
    assert [pieces.best([stored[i]], 1) for i in (3, _FROZEN)] == [[3], [_FROZEN]]


def test_a_merge_files_postings_as_sorting_them_all_would_with_little_beside_them(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Merging a segment with a later one gives the segment sorted from all their postings,
    also placed a few at a time, and holds little more than the merged positions while it
    runs: re-sorting both as 8-byte postings peaked at 1 GB filling 100k images."""
    rng = np.random.default_rng(5)
    pairs = np.unique(rng.integers(0, 40_000, 4_000_000, dtype=np.uint64) << np.uint64(32)
                      | rng.integers(0, 8_000, 4_000_000, dtype=np.uint64))
    slots, positions = (pairs >> np.uint64(32)).astype(np.uint32), pairs.astype(np.uint32)
    earlier = positions < 5_000
    whole = pieces_module._Segment.of(slots, positions)
    first = pieces_module._Segment.of(slots[earlier], positions[earlier])
    later = pieces_module._Segment.of(slots[~earlier], positions[~earlier])
    tracemalloc.start()
    try:
        merged = first.merged(later)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    def same(segment: pieces_module._Segment) -> bool:
        return all(np.array_equal(a, b)
                   for a, b in zip(astuple(segment), astuple(whole), strict=True))

    assert same(merged)
    # beside what it makes, under half the 8 bytes a posting that sorting them took
    assert peak < sum(a.nbytes for a in astuple(merged)) + 4 * len(merged.positions)
    monkeypatch.setattr(pieces_module, "_PLACED", 1_000)  # many blocks of slots
    assert same(first.merged(later))


def test_a_service_indexes_what_was_stored_before_it_needs_it_and_what_it_adds(
        settings: Settings, make_service: Callable[[Settings], Service]) -> None:
    first = make_service(settings)
    for name in ("coffee", "chelsea", "rocket"):
        first.add(encode(photo(name)), key=name)
    first.close()
    service = make_service(settings)
    assert len(service.pieces) == 0  # filled when first needed, not by every command
    service.index_pieces()
    assert len(service.pieces) == 3
    added = service.add(encode(photo("astronaut")), key="astronaut").id
    looks = [geometry.keypoints(_cropped(photo("astronaut")))]
    assert service.pieces.best(looks, 1) == [added] and len(service.pieces) == 4
    service.delete_keys(["astronaut"])
    assert added not in service.pieces.best(looks, 4)


def test_the_service_fills_its_index_beside_start_up(service: Service) -> None:
    """Not in it: at 100k images the fill takes 20 s, while the service answers."""
    for name in ("coffee", "chelsea"):
        service.add(encode(photo(name)), key=name)
    with TestClient(create_app(service=service)):
        pass  # the app's shutdown waits for the fill
    assert len(service.pieces) == 2


@contextmanager
def first_fill_reading(service: Service, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The index's first fill, in a thread, held at its first keypoint file until the
    block ends (at 100k images it reads them for 16-23 s beside ``bogv serve``'s start-up)."""
    read, reading, go_on = service.files.read, threading.Event(), threading.Event()

    def slow_read(id_: int, kind: str) -> bytes | None:
        if threading.current_thread() is filling:
            reading.set()
            go_on.wait(60)
        return read(id_, kind)

    monkeypatch.setattr(service.files, "read", slow_read)
    filling = threading.Thread(target=service.index_pieces)
    filling.start()
    assert reading.wait(60)
    try:
        yield
    finally:
        go_on.set()
        filling.join(60)


def ends_within(seconds: float, call: Callable[[], object]) -> list[object]:
    """``call``'s answer (in a list) if it came within ``seconds``, else an empty list."""
    answer: list[object] = []
    thread = threading.Thread(target=lambda: answer.append(call()))
    thread.start()
    thread.join(seconds)
    return answer


@pytest.fixture
def reopened(settings: Settings, make_service: Callable[[Settings], Service]) -> Service:
    """A service opened on two stored photos, its index of pieces not filled yet."""
    first = make_service(settings)
    first.add(encode(photo("coffee")), key="coffee")
    first.add(encode(dialog("extra")), key="extra")
    first.close()
    return make_service(settings)


def test_an_add_does_not_wait_for_the_first_fill_and_both_are_indexed(
        reopened: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    with first_fill_reading(reopened, monkeypatch):
        added = ends_within(30, lambda: reopened.add(encode(photo("astronaut")),
                                                     key="astronaut").id)
    assert added and len(reopened.pieces) == 3
    assert reopened.pieces.best([geometry.keypoints(_cropped(photo("astronaut")))], 1) == added


def test_a_search_waits_for_the_first_fill_no_longer_than_fill_wait(
        reopened: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    """It asks what the fill has read so far; a search from a process that fills the
    index itself (a command, the benchmarks) waits for all of it. A search too far off
    to match any candidate (most searches for a picture that is not stored) does not
    wait at all."""
    monkeypatch.setattr(service_module, "FILL_WAIT", 0.5)
    index_pieces, waits = reopened.index_pieces, []
    query = encode(dialog("misc"))  # close to the other panel, not a copy by keypoints
    with first_fill_reading(reopened, monkeypatch):
        monkeypatch.setattr(reopened, "index_pieces",
                            lambda wait=-1: waits.append(wait) or index_pieces(wait))
        assert ends_within(30, lambda: reopened.search(query))
        assert waits == [0.5]
        monkeypatch.setattr(service_module, "FILL_WAIT", 600.0)
        far = encode(photo("astronaut").filter(ImageFilter.GaussianBlur(2)))
        assert ends_within(30, lambda: reopened.search(far))
        assert waits == [0.5, 0]
    assert len(reopened.pieces) == 2
