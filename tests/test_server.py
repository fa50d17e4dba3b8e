"""The server path against a real Milvus server (see the ``milvus_server`` fixture).

Several bogv replicas share one server (what each sees of the others' writes: test_consistency).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from pymilvus import MilvusClient

from bogv import ingest
from bogv.config import Settings
from bogv.model.descriptor import DIM
from bogv.model.embedder import Embedder
from bogv.service import Service
from bogv.store import Store

from .conftest import no_server
from .images import edited_copy, photo, write_photos
from .test_lease import two_replicas_import_once


def test_server_collection_is_hnsw_behind_an_alias(server_settings: Settings,
                                                   make_service: Callable[..., Service],
                                                   photos: dict[str, bytes]) -> None:
    service = make_service(server_settings)
    assert service.stats()["store"] == "milvus-server"
    for name, data in photos.items():
        service.add(data, key=name)
    hits = service.search(edited_copy(photo("camera")), limit=3)
    assert hits[0].key == "camera" and hits[0].match == "copy" and hits[0].score >= 0.5
    client = MilvusClient(uri=server_settings.milvus_uri)
    alias = client.describe_alias(server_settings.collection)
    assert alias["collection_name"] == service.store.name != server_settings.collection
    index = client.describe_index(service.store.name, "embedding")
    assert index["index_type"] == "HNSW" and int(index["M"]) == server_settings.hnsw_m
    # lookups by key and by digest use an index instead of scanning every row
    assert {"key", "sha256"} <= set(client.list_indexes(service.store.name))
    client.close()


def test_seed_host_and_port_select_the_server(server_settings: Settings,
                                              make_service: Callable[..., Service]) -> None:
    host, port = server_settings.milvus_uri.removeprefix("http://").split(":")
    seed = Settings(data_dir=server_settings.data_dir, milvus_host=host, milvus_port=int(port),
                    collection=server_settings.collection)
    assert seed.store_uri == server_settings.milvus_uri
    assert make_service(seed).stats()["store"] == "milvus-server"


def test_replicas_starting_together_share_one_collection(server_settings: Settings,
                                                         embedder: Embedder) -> None:
    def open_store(_: int) -> Store:
        return Store(server_settings.milvus_uri, model_id=embedder.model_id, dim=DIM,
                     collection=server_settings.collection)

    with ThreadPoolExecutor(3) as pool:
        stores = list(pool.map(open_store, range(3)))
    assert len({s.name for s in stores}) == 1
    client = stores[0].client
    assert [c for c in client.list_collections()
            if c.startswith(server_settings.collection)] == [stores[0].name]
    for store in stores:
        store.close()


def test_two_replicas_on_the_server_import_the_folder_once(
        server_settings: Settings, tmp_path: Path, make_service: Callable[..., Service],
        photos: dict[str, bytes], caplog: pytest.LogCaptureFixture) -> None:
    two_replicas_import_once(server_settings, tmp_path, make_service, photos, caplog)


def test_server_imports_go_in_larger_chunks(server_settings: Settings,
                                            make_service: Callable[..., Service],
                                            photos: dict[str, bytes], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Fewer, larger round trips to a server."""
    monkeypatch.setattr(ingest, "CHUNK", 1)
    monkeypatch.setattr(ingest, "SERVER_CHUNK", 3)
    service = make_service(server_settings)
    lookups: list[int] = []
    real = service.store.with_contents

    def counted(digests: list[str], **kw: Any) -> Any:
        if not kw:  # the duplicate checks after each insert (bogv.settle) are not lookups
            lookups.append(len(digests))
        return real(digests, **kw)

    monkeypatch.setattr(service.store, "with_contents", counted)
    summary = ingest.import_folder(service, write_photos(tmp_path / "in", photos))
    assert summary.added == len(photos) == 6
    assert lookups == [3, 3, 3, 3]  # a skip check and an insert per chunk of 3


def test_a_server_that_cannot_start_fails_the_run_where_one_is_required(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """CI sets BOGV_REQUIRE_MILVUS: a run whose server died must not pass by skipping."""
    monkeypatch.delenv("BOGV_REQUIRE_MILVUS", raising=False)
    with pytest.raises(pytest.skip.Exception):
        no_server("died")
    monkeypatch.setenv("BOGV_REQUIRE_MILVUS", "1")
    with pytest.raises(pytest.fail.Exception, match="died"):
        no_server("died")
