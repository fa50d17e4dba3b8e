"""Index choice per backend: defaults, knobs, and types a backend cannot build."""

from __future__ import annotations

import pytest

from bogv.config import Settings
from bogv.errors import InvalidParameter
from bogv.indexing import index_spec


def test_defaults_suit_the_backend() -> None:
    lite = index_spec(Settings())
    assert (lite.type, lite.build, lite.search) == ("IVF_FLAT", {"nlist": 1024}, {"nprobe": 64})
    server = index_spec(Settings(milvus_uri="http://127.0.0.1:19530"))
    assert (server.type, server.build) == ("HNSW", {"M": 16, "efConstruction": 200})
    assert server.search_params(10) == {"metric_type": "IP", "params": {"ef": 128}}
    assert server.search_params(500)["params"] == {"ef": 500}  # Milvus refuses ef < limit


def test_settings_choose_the_index(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INDEX_TYPE", "ivf_sq8")
    monkeypatch.setenv("INDEX_NLIST", "4096")
    monkeypatch.setenv("SEARCH_NPROBE", "32")
    spec = index_spec(Settings(), embedded=False)
    assert (spec.type, spec.build, spec.search) == ("IVF_SQ8", {"nlist": 4096}, {"nprobe": 32})
    assert index_spec(Settings(index_type="FLAT")).search_params(5) == {"metric_type": "IP"}


def test_lite_refuses_indexes_it_cannot_build() -> None:
    with pytest.raises(InvalidParameter, match=r"not available on Milvus Lite.*IVF_FLAT"):
        index_spec(Settings(index_type="HNSW"))
    with pytest.raises(InvalidParameter, match="on a Milvus server"):
        index_spec(Settings(index_type="DISKANN", milvus_host="milvus"))
