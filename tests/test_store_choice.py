"""Every documented way to choose the store works in the environment of a real ``bogv serve``.

Through a subprocess, not ``Settings(...)``: pymilvus reads ``MILVUS_URI`` from the
environment when it is imported, before bogv's settings exist, and once killed every process
given a Milvus Lite path in that variable.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from bogv.config import Settings

from .conftest import Served

API = "/api/image/sim"
WAYS = ("data_dir", "lite_uri", "server_uri", "host_port")


@pytest.fixture(params=WAYS)
def way(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def served_env(way: str, tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, str]:
    """The variables a user sets for ``way`` (``DATA_DIR`` is always set by ``served``)."""
    if way == "data_dir":
        return {}
    if way == "lite_uri":
        return {"MILVUS_URI": str(tmp_path / "elsewhere" / "store.db")}
    server: Settings = request.getfixturevalue("server_settings")  # dropped after the test
    if way == "server_uri":
        return {"MILVUS_URI": server.milvus_uri, "COLLECTION": server.collection}
    host, port = server.milvus_uri.removeprefix("http://").split(":")
    return {"MILVUS_HOST": host, "MILVUS_PORT": port, "COLLECTION": server.collection}


def test_each_documented_store_choice_serves(way: str, served: Served, tmp_path: Path,
                                             photos: dict[str, bytes]) -> None:
    with httpx.Client(base_url=served.url + API, timeout=60) as http:
        added = http.post("/add/file", files={"file": ("cat.jpg", photos["chelsea"])},
                          data={"key": "cat"})
        assert added.status_code == 200, added.text
        hits = http.post("/search/file", files={"file": ("q.jpg", photos["chelsea"])}).json()
        assert [h["key"] for h in hits["data"]] == ["cat"]
        stats = http.get("/stats").json()["data"]
    data_dir = Path(served.env["DATA_DIR"])
    if way in ("data_dir", "lite_uri"):
        assert stats["store"] == "milvus-lite" and stats["collection"] == "images"
        assert (data_dir / "bogv.db").exists() == (way == "data_dir")
        assert (tmp_path / "elsewhere" / "store.db").exists() == (way == "lite_uri")
    else:
        assert stats["store"] == "milvus-server"
        assert stats["collection"] == served.env["COLLECTION"]
        assert not (data_dir / "bogv.db").exists()
