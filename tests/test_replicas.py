"""Two ``bogv serve`` processes on one server collection: the replica contract over HTTP.

``test_consistency`` checks the contract with two ``Service`` objects in one process; this
checks it as a deployment runs it (README "Beyond one machine", the compose file's
replicas): two processes started by the ``bogv`` command, each with its own connection,
session and settle thread, sharing the collection and the record volume, reached through
their HTTP API only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymilvus import MilvusClient

from bogv.config import Settings
from bogv.model.embedder import Embedder
from bogv.session import FRESH

from .conftest import bogv_serve, within
from .images import edited_copy, photo
from .test_api import API, ok

SETTLED = 10.0
"""Seconds a racing duplicate may live: the settle step runs about a second after an add."""


@pytest.fixture
def replicas(server_settings: Settings, tmp_path: Path, embedder: Embedder,
             model_cache: Path) -> Iterator[list[httpx.Client]]:
    """Two ``bogv serve`` processes, HTTP clients to each."""
    env = {"MILVUS_URI": server_settings.milvus_uri, "COLLECTION": server_settings.collection,
           "RECORD_DIR": str(tmp_path / "records")}
    with ExitStack() as stack:
        clients = []
        for name in ("one", "two"):
            served = stack.enter_context(bogv_serve(tmp_path / name, model_cache, env))
            clients.append(stack.enter_context(httpx.Client(base_url=served.url + API,
                                                            timeout=60)))
        yield clients


def _add(http: httpx.Client, data: bytes, key: str) -> int:
    """Adds through ``http``; the new record's id, as that replica's next search sees it."""
    assert ok(http.post("/add/file", files={"file": ("a.jpg", data)}, data={"key": key}))
    hits = ok(http.post("/search/file", files={"file": ("q.jpg", data)}, data={"limit": "5"}))
    return min(int(h["id"]) for h in hits if h["key"] == key)


def _found(http: httpx.Client, data: bytes) -> list[int]:
    hits = ok(http.post("/search/file", files={"file": ("q.jpg", data)},
                        data={"limit": "20"}))
    return [int(h["id"]) for h in hits]


def _strong(settings: Settings, expr: str) -> list[dict[str, Any]]:
    client = MilvusClient(uri=settings.milvus_uri)
    try:
        return list(client.query(settings.collection, filter=expr, output_fields=["id"],
                                 consistency_level="Strong"))
    finally:
        client.close()


def test_two_processes_keep_the_replica_contract(replicas: list[httpx.Client],
                                                 server_settings: Settings,
                                                 photos: dict[str, bytes]) -> None:
    one, two = replicas
    query = edited_copy(photo("rocket"))
    rocket = _add(one, photos["rocket"], "rocket")
    assert _found(one, query)[0] == rocket  # read-your-writes: the very next request
    within(FRESH, lambda: rocket in _found(two, query))

    coffee = _add(two, photos["coffee"], "coffee")
    assert _found(two, photos["coffee"])[0] == coffee
    within(FRESH, lambda: coffee in _found(one, photos["coffee"]))

    assert ok(one.post("/del/id", json={"id": str(rocket)})) == 1
    assert rocket not in _found(one, query)  # never returned by the replica that deleted it
    within(FRESH, lambda: rocket not in _found(two, query))
    assert ok(two.post("/del/id", json={"id": str(rocket)})) == 0  # counts what existed


def _add_at_once(replicas: list[httpx.Client], data: bytes, key: str) -> list[int]:
    """Each replica adds ``data`` under ``key``, released at the same moment."""
    start = threading.Barrier(len(replicas))
    ids: list[int] = []

    def add(http: httpx.Client) -> None:
        start.wait()
        ids.append(_add(http, data, key))

    threads = [threading.Thread(target=add, args=(http,)) for http in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == len(replicas)
    return ids


def test_the_same_bytes_through_two_processes_leave_one_record(
        replicas: list[httpx.Client], server_settings: Settings,
        photos: dict[str, bytes]) -> None:
    """Neither process can see the other's record yet, so both insert; the settle step of
    each keeps the smaller id."""
    raced = 0
    for name in ("chelsea", "camera", "astronaut"):
        ids = _add_at_once(replicas, photos[name], name)
        expr = f'key == "{name}"'
        raced += len(_strong(server_settings, expr)) == 2

        def one_left(expr: str = expr) -> bool:
            return len(_strong(server_settings, expr)) == 1

        def serves_one(http: httpx.Client, data: bytes = photos[name],
                       ids: list[int] = ids) -> Callable[[], bool]:
            return lambda: [i for i in _found(http, data) if i in ids] == [min(ids)]

        within(SETTLED, one_left)
        assert [r["id"] for r in _strong(server_settings, expr)] == [min(ids)]
        for http in replicas:  # every replica now serves the one record left
            within(FRESH, serves_one(http))
    assert raced >= 1  # else this test checked nothing
