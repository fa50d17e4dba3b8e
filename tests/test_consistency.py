"""What a replica sees on a Milvus server (README "Beyond one machine", ``bogv.session``).

Two ``Service`` objects on one collection of the test server are two replicas: each has its
own connection and its own session, as two processes would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from bogv.config import Settings
from bogv.model import geometry
from bogv.service import Added, Service
from bogv.session import FRESH, Session
from bogv.store import Candidate

from .conftest import within
from .images import edited_copy, photo


def _strong_count(service: Service, expr: str) -> int:
    rows = service.store.client.query(service.store.name, filter=expr,
                                      output_fields=["count(*)"], consistency_level="Strong")
    return int(rows[0]["count(*)"])


def _add_at_once(services: list[Service], data: bytes, key: str) -> list[Added]:
    """Each service adds ``data`` under ``key``, all released at the same moment."""
    start = threading.Barrier(len(services))
    added: list[Added] = []

    def add(service: Service) -> None:
        start.wait()
        added.append(service.add(data, key=key))

    threads = [threading.Thread(target=add, args=(s,)) for s in services]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return added


def test_a_replica_reads_its_own_writes_at_once(server_settings: Settings,
                                                make_service: Callable[..., Service],
                                                photos: dict[str, bytes]) -> None:
    one = make_service(server_settings)
    for name in ("coffee", "astronaut"):
        one.add(photos[name], key=name)
    query = edited_copy(photo("rocket"))
    rocket = one.add(photos["rocket"], key="rocket")
    assert one.search(query, limit=1)[0].id == rocket.id  # its next search finds it
    again = one.add(photos["rocket"], key="rocket")  # before the server's time tick
    assert (again.id, again.created) == (rocket.id, False)
    assert one.delete_ids([rocket.id]) == 1
    assert rocket.id not in {h.id for h in one.search(query, limit=10)}  # and never again
    assert one.store.count() == 2 and one.newest(10).records[0].key == "astronaut"
    back = one.add(photos["rocket"], key="rocket")  # the deleted record is not "stored"
    assert back.created and back.id != rocket.id
    one.settle()
    assert _strong_count(one, 'key == "rocket"') == 1


def test_other_replicas_see_writes_within_the_bound(server_settings: Settings,
                                                    make_service: Callable[..., Service],
                                                    photos: dict[str, bytes]) -> None:
    one, two = make_service(server_settings), make_service(server_settings)
    assert one.store.client is not two.store.client
    ids = {name: one.add(data, key=name).id for name, data in photos.items()}
    query = edited_copy(photo("rocket"))

    def found() -> set[int]:
        return {h.id for h in two.search(query, limit=len(photos))}

    within(FRESH, lambda: ids["rocket"] in found())
    assert one.delete_ids([ids["rocket"]]) == 1
    within(FRESH, lambda: ids["rocket"] not in found())
    assert one.delete_keys(["coffee", "chelsea"]) == 2  # deletes count what really existed
    within(FRESH, lambda: two.store.count() == len(photos) - 3)
    assert two.delete_keys(["coffee"]) == 0


@pytest.mark.parametrize("replicas", [1, 2])
def test_the_same_bytes_added_at_once_leave_one_record(
        replicas: int, server_settings: Settings, make_service: Callable[..., Service],
        photos: dict[str, bytes]) -> None:
    """Two adds of the same bytes under the same key at the same moment, through one
    replica or two: one record stays, the one with the smaller id, with its files."""
    services = [make_service(server_settings) for _ in range(replicas)]
    names = ("coffee", "chelsea", "camera")
    raced = 0
    for name in names:
        added = _add_at_once([services[i % replicas] for i in range(2)], photos[name], name)
        raced += len({a.id for a in added}) > 1  # both inserted: the race really happened
        for service in services:
            service.settle()
        assert _strong_count(services[0], f'key == "{name}"') == 1
        kept = min(a.id for a in added)
        assert [r.id for r in services[0].store.query(f'key == "{name}"')] == [kept]
        assert services[0].files.find(kept, "jpg") is not None
        for a in added:
            if a.id != kept:
                assert services[0].files.find(a.id, "jpg") is None
    # one replica never inserts twice (its write lock and session); two replicas adding at
    # the same moment cannot see each other's record yet, so both insert and one is removed
    assert raced == 0 if replicas == 1 else raced >= 1


def test_adds_and_searches_never_read_strong(server_settings: Settings,
                                             make_service: Callable[..., Service],
                                             photos: dict[str, bytes],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A Strong read waits for the server's time tick (~0.2-0.6 s) on every call."""
    service = make_service(server_settings)
    levels: list[Any] = []
    client = service.store.client
    for name in ("query", "search"):
        real = getattr(client, name)

        def spy(*args: Any, _real: Any = real, **kwargs: Any) -> Any:
            levels.append(kwargs.get("consistency_level"))
            return _real(*args, **kwargs)

        monkeypatch.setattr(client, name, spy)
    for data in list(photos.values()) * 2:
        service.add(data)
    service.search(photos["coffee"], limit=3)
    assert levels and "Strong" not in levels
    service.settle()  # the duplicate check reads at the add's own timestamp
    assert "Strong" not in levels


def test_a_session_waits_only_for_its_own_recent_writes() -> None:
    session = Session(fresh=0.2)
    assert session.read() == {"consistency_level": "Bounded"}  # nothing written: no wait
    session.wrote(42)
    assert session.read() == {"consistency_level": "Customized", "guarantee_timestamp": 42}
    session.added([(7, "k", "/a.jpg", "d1")])
    session.deleted([5])
    rows = session.overlay([(5, "k", "/b.jpg", "d1"), (6, "k2", "/c.jpg", "d1")], ["d1"])
    assert sorted(rows) == [(6, "k2", "/c.jpg", "d1"), (7, "k", "/a.jpg", "d1")]
    assert session.hidden() == {5}
    time.sleep(0.25)  # older than a Bounded read's staleness: the server has it all
    assert session.read() == {"consistency_level": "Bounded"}
    assert session.hidden() == set() and session.overlay([], ["d1"]) == []


def test_a_replica_votes_among_the_pieces_of_another_replicas_adds(
        server_settings: Settings, make_service: Callable[..., Service],
        photos: dict[str, bytes]) -> None:
    """The index of descriptor pieces (``bogv.pieces``) is each replica's own: it reads the
    adds of the others (ids above its highest) when asked, and the server answers its
    winners' similarities by id."""
    one, two = make_service(server_settings), make_service(server_settings)
    for name in ("coffee", "chelsea"):
        one.add(photos[name], key=name)
    one.index_pieces()
    astronaut = two.add(photos["astronaut"], key="astronaut").id
    looks = [geometry.keypoints(photo("astronaut").crop((40, 40, 472, 472)))]
    vectors = one.embedder.embed([photo("astronaut")])

    def best() -> list[Candidate]:
        deeper = one.deeper(vectors, [])
        return list(deeper.candidates(deeper.ids(looks, True)))

    within(FRESH, lambda: [c.id for c in best()][:1] == [astronaut])
    assert best()[0].similarity > 0.9  # the stored vector's, read by id


@pytest.mark.parametrize("behind", [0.0, 10.0])
def test_a_replica_reads_another_replicas_add_whose_id_is_below_its_own_latest(
        behind: float, server_settings: Settings, make_service: Callable[..., Service],
        photos: dict[str, bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    """Ids follow each replica's own clock, and a write reaches the others' reads up to
    ``FRESH`` s later: another replica's add may get an id below one this replica has
    already indexed, its own add's (``behind`` 0) or one it read from the server, when
    the other replica's clock runs ``behind`` seconds late. It is read all the same."""
    one, two = make_service(server_settings), make_service(server_settings)
    taken = two.store.ids.take
    monkeypatch.setattr(two.store.ids, "take", lambda n: [
        i - (int(behind * 1000) << 12) for i in taken(n)])
    one.add(photos["coffee"], key="coffee")
    one.index_pieces()
    astronaut = two.add(photos["astronaut"], key="astronaut").id
    chelsea = one.add(photos["chelsea"], key="chelsea").id  # indexed by ``one`` as it adds
    assert astronaut < chelsea
    looks = [geometry.keypoints(photo("astronaut").crop((40, 40, 472, 472)))]
    vectors = one.embedder.embed([photo("astronaut")])
    within(FRESH, lambda: one.deeper(vectors, []).ids(looks, True)[:1] == [astronaut])
