"""The import pipeline's stage runner: order, errors, and stopping early without hanging."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from bogv.ingest import _ahead


def test_ahead_yields_everything_in_order_from_another_thread() -> None:
    threads = set()

    def produce() -> Iterator[int]:
        for i in range(100):
            threads.add(threading.get_ident())
            yield i

    assert list(_ahead(produce(), 2)) == list(range(100))
    assert threads and threading.get_ident() not in threads


def test_ahead_reraises_the_producers_error_after_its_items() -> None:
    def produce() -> Iterator[int]:
        yield 1
        raise ValueError("disk on fire")

    got = []
    with pytest.raises(ValueError, match="disk on fire"):
        for item in _ahead(produce(), 1):
            got.append(item)
    assert got == [1]


def test_ahead_stops_and_closes_the_producer_when_the_caller_stops() -> None:
    made, closed = [], threading.Event()

    def produce() -> Iterator[int]:
        try:
            i = 0
            while True:
                made.append(i)
                yield i
                i += 1
        finally:
            closed.set()

    stages = _ahead(_ahead(produce(), 2), 1)  # nested, as import_folder runs them
    for item in stages:
        if item == 3:
            break
    stages.close()
    assert closed.wait(5)
    assert len(made) < 10  # bounded look-ahead, not an endless producer
    assert not [t for t in threading.enumerate() if t.name == "bogv-import-stage"]
