"""``Store.newest``: newest-first keyset paging without ORDER BY, on a real Milvus Lite file."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pytest

from bogv.config import Settings
from bogv.service import Service
from bogv.store import IdAllocator, Store


class _Given:
    """Hands out chosen ids, to place records at chosen times."""

    def __init__(self, ids: Iterable[int]) -> None:
        self._ids = iter(ids)

    def take(self, n: int) -> list[int]:
        return [next(self._ids) for _ in range(n)]


def fill(service: Service, ids: list[int], key: Callable[[int], str] = lambda i: "k") -> None:
    vector = service.embedder.embed_tensors(
        service.prepare(_photo_bytes()).tensor[None])
    service.store.ids = _Given(ids)  # type: ignore[assignment]
    rows = [(key(i), f"f{i}", f"s{i}") for i in ids]
    service.store.insert(rows, np.repeat(vector, len(ids), 0))
    service.store.ids = IdAllocator()


def _photo_bytes() -> bytes:
    from .images import encode, photo

    return encode(photo("coffee"), quality=80)


def walk(store: Store, limit: int, key: str | None = None) -> list[list[int]]:
    pages, before = [], None
    while True:
        page = store.newest(limit, before=before, key=key)
        pages.append([r.id for r in page.records])
        if page.next is None:
            return pages
        before = page.next


def second(ms_ago: float) -> int:
    import time

    return IdAllocator.first_of(int(time.time() * 1000 - ms_ago))


@pytest.fixture
def bursty(tmp_path: Path,
           make_service: Callable[[Settings], Service]) -> tuple[Service, list[int]]:
    """Records from 2024, a dense burst a day ago, stragglers, and one a second from now."""
    service = make_service(Settings(data_dir=tmp_path / "d", index_type="FLAT"))
    day = 86_400_000
    ids = [IdAllocator.first_of(1_704_067_200_000 + 5), IdAllocator.first_of(1_720_000_000_000)]
    ids += [second(day) + i for i in range(300)]           # 300 ids within one millisecond
    ids += [second(day // 2) + i * (1 << 12) for i in range(25)]
    ids += [second(5_000), second(-1_000)]                 # a clock slightly ahead
    fill(service, ids, key=lambda i: "even" if i % 2 == 0 else "odd")
    service.store.page_window = 16  # narrow windows, as 100k records would need
    return service, sorted(ids, reverse=True)


# One record a page walks the 400 in 400 requests (5 s): slow; 7 a page also crosses every
# narrow window.
@pytest.mark.parametrize("limit", [pytest.param(1, marks=pytest.mark.slow), 7, 48, 400])
def test_pages_walk_every_record_newest_first_once(bursty: tuple[Service, list[int]],
                                                   limit: int) -> None:
    store, ids = bursty[0].store, bursty[1]
    pages = walk(store, limit)
    assert [i for page in pages for i in page] == ids
    assert all(len(page) == limit for page in pages[:-1])
    assert 0 < len(pages[-1]) <= limit


def test_key_filter_and_cursor(bursty: tuple[Service, list[int]]) -> None:
    store, ids = bursty[0].store, bursty[1]
    even = [i for i in ids if i % 2 == 0]
    assert [i for page in walk(store, 10, key="even") for i in page] == even
    page = store.newest(5, before=ids[100])
    assert [r.id for r in page.records] == ids[101:106] and page.next == ids[105]
    assert store.newest(5, key="nobody").records == []


def test_paging_survives_adds_and_deletes(bursty: tuple[Service, list[int]]) -> None:
    service, ids = bursty
    store = service.store
    first = store.newest(10)
    fill(service, [second(0)])
    store.delete_ids([ids[10], ids[11]])
    second_page = store.newest(10, before=first.next)
    assert [r.id for r in first.records] == ids[:10]
    assert [r.id for r in second_page.records] == ids[12:22]
