"""The nine seed endpoints against the real model and a real Milvus Lite file."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bogv.api.app import create_app
from bogv.config import Settings
from bogv.service import Service

from .images import edited_copy, encode, photo

API = "/api/image/sim"


def ok(resp: Any) -> Any:
    body = resp.json()
    assert resp.status_code == 200 and body["code"] == 200, body
    assert set(body) == {"msg", "code", "data"}
    return body["data"]


def fails(resp: Any, status: int, *words: str) -> str:
    body = resp.json()
    assert resp.status_code == status == body["code"], body
    assert body["data"] is None
    for word in words:
        assert word in body["msg"], body["msg"]
    return str(body["msg"])


def add(client: TestClient, data: bytes, name: str = "img.jpg", **form: str) -> Any:
    return client.post(f"{API}/add/file", files={"file": (name, data)}, data=form)


def search(client: TestClient, data: bytes, **form: str) -> list[dict[str, Any]]:
    hits: list[dict[str, Any]] = ok(client.post(f"{API}/search/file",
                                                files={"file": ("q.jpg", data)}, data=form))
    return hits


def count(client: TestClient) -> int:
    return int(ok(client.get(f"{API}/stats"))["count"])


@pytest.fixture
def filled(client: TestClient, photos: dict[str, bytes]) -> TestClient:
    for name, data in photos.items():
        assert ok(add(client, data, f"{name}.jpg", key=name, imgPath=f"shop/{name}.jpg")) is True
    return client


# --- add and search -----------------------------------------------------------------------

def test_empty_index_returns_empty_list(client: TestClient, photos: dict[str, bytes]) -> None:
    assert search(client, photos["coffee"]) == []


def test_image_finds_itself_first_with_score_one(filled: TestClient,
                                                 photos: dict[str, bytes]) -> None:
    for name, data in photos.items():
        hits = search(filled, data)
        assert hits[0]["key"] == name
        assert hits[0]["score"] == pytest.approx(1.0, abs=1e-4)
        assert hits[0]["filepath"] == f"shop/{name}.jpg"
        assert set(hits[0]) == {"key", "filepath", "id", "score", "match"}
        assert hits[0]["match"] == "exact"
        scores = [h["score"] for h in hits]
        assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)


@pytest.mark.parametrize("name", ["coffee", "chelsea", "astronaut", "rocket", "motorcycle_left"])
def test_resized_recompressed_copy_finds_original(filled: TestClient, name: str) -> None:
    hits = search(filled, edited_copy(photo(name)))
    assert hits[0]["key"] == name
    assert hits[0]["match"] == "copy" and hits[0]["score"] >= 0.5
    assert all(h["match"] == "similar" and h["score"] < 0.5 for h in hits[1:])


def test_limit_default_and_bounds(filled: TestClient, photos: dict[str, bytes]) -> None:
    for name in ("a", "b", "c", "d", "e", "f"):  # 12 records in all
        ok(add(filled, edited_copy(photo("coffee").rotate(len(name) * 7)), key=name))
        ok(add(filled, encode(photo("chelsea").rotate(ord(name)), quality=70), key=name))
    assert len(search(filled, photos["coffee"])) == 10
    assert len(search(filled, photos["coffee"], limit="3")) == 3
    fails(filled.post(f"{API}/search/file", files={"file": ("q.jpg", photos["coffee"])},
                      data={"limit": "0"}), 422, "limit")
    fails(filled.post(f"{API}/search/file", files={"file": ("q.jpg", photos["coffee"])},
                      data={"limit": "abc"}), 422, "limit")


def test_limit_on_base64_path_and_url(tmp_path: Path, make_service: Callable[..., Service],
                                      photos: dict[str, bytes],
                                      image_server: tuple[str, dict[str, bytes]]) -> None:
    base, served = image_server
    served["/coffee.jpg"] = photos["coffee"]
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "coffee.jpg").write_bytes(photos["coffee"])
    settings = Settings(data_dir=tmp_path / "d", image_allowed_roots=str(allowed),
                        url_allow_private=True)
    with TestClient(create_app(service=make_service(settings))) as client:
        for data in photos.values():
            ok(add(client, data))
        b64 = base64.b64encode(photos["coffee"]).decode()
        for route, body in [("base64", {"base64": b64}),
                            ("base64", {"base64": f"data:image/jpeg;base64,{b64}"}),
                            ("path", {"path": str(allowed / "coffee.jpg")}),
                            ("url", {"url": f"{base}/coffee.jpg"}),
                            ("url", {"url": f"{base}/redirect/coffee.jpg"})]:
            for limit in (1, 4):
                hits = ok(client.post(f"{API}/search/{route}", json={**body, "limit": limit}))
                assert len(hits) == limit, route
                assert hits[0]["score"] == pytest.approx(1.0, abs=1e-4)
            assert len(ok(client.post(f"{API}/search/{route}", json=body))) == len(photos)


def test_min_score_filters(filled: TestClient, photos: dict[str, bytes]) -> None:
    hits = search(filled, photos["coffee"], min_score="0.9")
    assert [h["key"] for h in hits] == ["coffee"]


def test_default_key_is_md5_and_filepath_is_the_upload_name(client: TestClient,
                                                            photos: dict[str, bytes]) -> None:
    ok(add(client, photos["rocket"], "fusée.jpg"))
    hit = search(client, photos["rocket"])[0]
    assert hit["key"] == hashlib.md5(photos["rocket"]).hexdigest()
    assert hit["filepath"] == "fusée.jpg"
    assert 0 < hit["id"] < 2**53


def test_add_url_and_path_keep_key_and_default_filepath(
        tmp_path: Path, make_service: Callable[..., Service], photos: dict[str, bytes],
        image_server: tuple[str, dict[str, bytes]]) -> None:
    base, served = image_server
    served["/cat.jpg"] = photos["chelsea"]
    allowed = tmp_path / "allowed" / "café 图片"
    allowed.mkdir(parents=True)
    (allowed / "咖啡 coffee.jpg").write_bytes(photos["coffee"])
    settings = Settings(data_dir=tmp_path / "d", image_allowed_roots=str(tmp_path / "allowed"),
                        url_allow_private=True)
    with TestClient(create_app(service=make_service(settings))) as client:
        assert ok(client.post(f"{API}/add/url", json={"url": f"{base}/cat.jpg", "key": "sku-1"}))
        assert ok(client.post(f"{API}/add/path", json={"path": str(allowed / "咖啡 coffee.jpg"),
                                                       "key": "sku-2"}))
        assert ok(client.post(f"{API}/add/path", json={"path": str(allowed / "咖啡 coffee.jpg"),
                                                       "imgPath": "rel/c.jpg"}))
        cat = search(client, photos["chelsea"])[0]
        assert (cat["key"], cat["filepath"]) == ("sku-1", f"{base}/cat.jpg")
        coffee = search(client, photos["coffee"], limit="2")
        assert {(h["key"], h["filepath"]) for h in coffee} == {
            ("sku-2", str(allowed / "咖啡 coffee.jpg")),
            (hashlib.md5(photos["coffee"]).hexdigest(), "rel/c.jpg")}


def test_same_bytes_same_key_is_idempotent(client: TestClient, photos: dict[str, bytes]) -> None:
    for _ in range(3):
        ok(add(client, photos["coffee"], key="p1"))
    ok(add(client, photos["coffee"]))           # default key (MD5): a second record
    ok(add(client, photos["coffee"], key="p2"))  # another key: a third record
    assert count(client) == 3


def test_one_key_owns_several_images(client: TestClient, photos: dict[str, bytes]) -> None:
    ok(add(client, photos["coffee"], key="product"))
    ok(add(client, photos["chelsea"], key="product"))
    assert count(client) == 2
    assert ok(client.post(f"{API}/del/key", json={"key": "product"})) == 2


# --- delete -------------------------------------------------------------------------------

def test_delete_by_id_counts_and_never_returns(filled: TestClient,
                                               photos: dict[str, bytes]) -> None:
    coffee = search(filled, photos["coffee"])[0]
    cat = search(filled, photos["chelsea"])[0]
    ids = f"{coffee['id']},{cat['id']},12345"
    assert ok(filled.post(f"{API}/del/id", json={"id": ids})) == 2
    assert ok(filled.post(f"{API}/del/id", json={"id": ids})) == 0
    remaining = {h["id"] for h in search(filled, photos["coffee"], limit="100")}
    assert coffee["id"] not in remaining and cat["id"] not in remaining
    assert count(filled) == 4


def test_delete_by_keys(filled: TestClient, photos: dict[str, bytes]) -> None:
    assert ok(filled.post(f"{API}/del/key", json={"key": "coffee, rocket,nothing"})) == 2
    assert ok(filled.post(f"{API}/del/key", json={"key": "coffee"})) == 0
    keys = {h["key"] for h in search(filled, photos["coffee"], limit="100")}
    assert keys == {"chelsea", "astronaut", "camera", "motorcycle_left"}


def test_delete_accepts_a_number_id(filled: TestClient, photos: dict[str, bytes]) -> None:
    hit = search(filled, photos["camera"])[0]
    assert ok(filled.post(f"{API}/del/id", json={"id": hit["id"]})) == 1


def test_delete_by_key_has_no_cap(client: TestClient, service: Service,
                                  photos: dict[str, bytes]) -> None:
    prepared = service.prepare(photos["coffee"])
    service.store.insert([("bulk", f"f{i}", f"sha{i}") for i in range(2500)],
                         service.embedder.embed_tensors(prepared.tensor[None]).repeat(2500, 0))
    assert ok(client.post(f"{API}/del/key", json={"key": "bulk"})) == 2500
    assert count(client) == 0


# --- errors -------------------------------------------------------------------------------

def test_error_envelopes(client: TestClient, photos: dict[str, bytes], tmp_path: Path) -> None:
    fails(add(client, b"GIF89a but not really"), 415, "not an image")
    fails(add(client, b"%PDF-1.4 a document"), 415, "not an image")
    fails(client.post(f"{API}/add/file", data={"key": "k"}), 422, "file")
    fails(client.post(f"{API}/add/url", json={}), 422, "url")
    fails(client.post(f"{API}/search/base64", json={"base64": "###"}), 400, "base64")
    fails(client.post(f"{API}/search/base64",
                      json={"base64": "data:text/plain;base64,aGVsbG8="}), 415, "text/plain")
    fails(client.post(f"{API}/add/path", json={"path": "/etc/passwd"}), 403, "path")
    (tmp_path / "allowed").mkdir()
    fails(client.post(f"{API}/add/path", json={"path": str(tmp_path / "allowed/nope.jpg")}),
          404, "does not exist")
    fails(client.post(f"{API}/add/path",
                      json={"path": str(tmp_path / "allowed/../../etc/passwd")}), 403)
    fails(client.post(f"{API}/add/url", json={"url": "http://127.0.0.1:9/x.jpg"}), 403,
          "non-public")
    fails(client.post(f"{API}/add/url", json={"url": "file:///etc/passwd"}), 422, "http")
    fails(add(client, photos["coffee"], key="k" * 65), 422, "key", "64")
    fails(add(client, photos["coffee"], imgPath="p" * 513), 422, "imgPath", "512")
    fails(client.post(f"{API}/del/id", json={"id": "1,,x"}), 422, "id")
    fails(client.post(f"{API}/del/id", json={"id": "99999999999999999999"}), 422, "id")
    fails(client.post(f"{API}/del/key", json={"key": " , "}), 422, "key")
    fails(client.post(f"{API}/no/such/route"), 404)
    assert count(client) == 0


def test_upload_size_limit(tmp_path: Path, make_service: Callable[..., Service],
                           photos: dict[str, bytes]) -> None:
    settings = Settings(data_dir=tmp_path / "d", max_upload_bytes=10_000)
    with TestClient(create_app(service=make_service(settings))) as client:
        fails(add(client, photos["coffee"]), 413, "10000")


# --- token ----------------------------------------------------------------------------------

ROUTES: list[tuple[str, dict[str, Any]]] = [
    ("/add/file", {"files": {"file": ("a.jpg", b"x")}}),
    ("/add/url", {"json": {"url": "http://example.invalid/a.jpg"}}),
    ("/add/path", {"json": {"path": "/nope"}}),
    ("/search/file", {"files": {"file": ("a.jpg", b"x")}}),
    ("/search/url", {"json": {"url": "http://example.invalid/a.jpg"}}),
    ("/search/path", {"json": {"path": "/nope"}}),
    ("/search/base64", {"json": {"base64": "eA=="}}),
    ("/del/id", {"json": {"id": "1"}}),
    ("/del/key", {"json": {"key": "a"}}),
]


def test_token_guards_every_route(tmp_path: Path, make_service: Callable[..., Service],
                                  photos: dict[str, bytes]) -> None:
    settings = Settings(data_dir=tmp_path / "d", token="s3cret")
    with TestClient(create_app(service=make_service(settings))) as client:
        for path, kwargs in ROUTES:
            fails(client.post(API + path, **kwargs), 401, "token")
            fails(client.post(API + path, headers={"token": "wrong"}, **kwargs), 401)
            # With the token the request gets past auth (and then fails on its bad input).
            resp = client.post(API + path, headers={"token": "s3cret"}, **kwargs)
            assert resp.status_code != 401, path
        fails(client.get(f"{API}/stats"), 401)
        good = {"file": ("c.jpg", photos["coffee"])}
        assert ok(client.post(f"{API}/add/file", files=good, headers={"token": "s3cret"}))
        assert ok(client.post(f"{API}/search/file", files=good,
                              headers={"Authorization": "Bearer s3cret"}))


def test_openapi_documents_the_seed_fields(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {f"{API}{p}" for p, _ in ROUTES} <= set(spec["paths"])
    schemas = spec["components"]["schemas"]
    assert {"url", "key", "imgPath"} <= set(schemas["AddUrl"]["properties"])
    assert {"base64", "limit", "min_score"} <= set(schemas["SearchBase64"]["properties"])
