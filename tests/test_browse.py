"""Browsing endpoints: ``records`` (newest first) and ``thumb/{id}``, and add outcome headers."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image

from bogv.api.app import create_app
from bogv.config import Settings
from bogv.ingest import import_folder
from bogv.service import THUMBNAIL, Service

from .images import write_photos
from .test_api import API, add, fails, ok, search


def records(client: TestClient, **params: object) -> dict[str, object]:
    page: dict[str, object] = ok(client.get(f"{API}/records", params=params))
    return page


def test_records_newest_first_in_pages(client: TestClient, photos: dict[str, bytes]) -> None:
    started = time.time()
    ids = []
    for name in ("coffee", "chelsea", "rocket"):
        resp = add(client, photos[name], f"{name}.jpg", key=name)
        ids.append(int(resp.headers["X-Bogv-Id"]))
    first = records(client, limit=2)
    assert [r["id"] for r in first["records"]] == ids[::-1][:2]  # type: ignore[index]
    newest = first["records"][0]  # type: ignore[index]
    assert (newest["key"], newest["filepath"]) == ("rocket", "rocket.jpg")
    added = datetime.fromisoformat(newest["added"]).timestamp()
    assert started - 2 <= added <= time.time() + 1
    rest = records(client, limit=2, before=first["next"])
    assert [r["id"] for r in rest["records"]] == [ids[0]]  # type: ignore[index]
    assert rest["next"] is None
    assert [r["key"] for r in records(client, key="chelsea")["records"]] == ["chelsea"]  # type: ignore[index]


def test_records_rejects_bad_parameters(client: TestClient) -> None:
    fails(client.get(f"{API}/records", params={"limit": 0}), 422, "limit")
    fails(client.get(f"{API}/records", params={"limit": 5000}), 422, "limit", "1000")
    fails(client.get(f"{API}/records", params={"before": -1}), 422, "before")
    fails(client.get(f"{API}/records", params={"key": "a\nb"}), 422, "key")
    fails(client.get(f"{API}/records", params={"key": "k" * 65}), 422, "key")


def test_thumbnail_is_small_cached_and_looks_like_the_photo(
        client: TestClient, photos: dict[str, bytes]) -> None:
    for name in ("coffee", "astronaut"):
        # The filepath is not readable by the service: the thumbnail is served regardless.
        ok(add(client, photos[name], key=name, imgPath=f"/nowhere/{name}.jpg"))
    hit = search(client, photos["coffee"], limit="1")[0]
    resp = client.get(f"{API}/thumb/{hit['id']}")
    assert resp.status_code == 200 and resp.headers["content-type"] == "image/jpeg"
    assert "immutable" in resp.headers["cache-control"]
    with Image.open(io.BytesIO(resp.content)) as img:
        assert max(img.size) == 256 and img.size[0] > img.size[1]  # coffee is landscape
    assert search(client, resp.content, limit="1")[0]["key"] == "coffee"
    fails(client.get(f"{API}/thumb/12345"), 404, "thumbnail")
    fails(client.get(f"{API}/thumb/abc"), 422, "id")


def test_deletes_remove_thumbnails(client: TestClient, service: Service,
                                   photos: dict[str, bytes]) -> None:
    by_name = {}
    for name in ("coffee", "chelsea", "rocket"):
        by_name[name] = int(add(client, photos[name], key="shop" if name != "coffee" else name)
                            .headers["X-Bogv-Id"])
    files = {name: service.files.path(id_, THUMBNAIL) for name, id_ in by_name.items()}
    assert all(f.is_file() for f in files.values())
    assert ok(client.post(f"{API}/del/id", json={"id": by_name["coffee"]})) == 1
    assert ok(client.post(f"{API}/del/key", json={"key": "shop"})) == 2
    assert not any(f.exists() for f in files.values())
    for id_ in by_name.values():
        fails(client.get(f"{API}/thumb/{id_}"), 404)


def test_add_outcome_headers(client: TestClient, photos: dict[str, bytes]) -> None:
    first = add(client, photos["camera"], key="cam")
    again = add(client, photos["camera"], key="cam")
    assert first.headers["X-Bogv-Created"] == "true"
    assert again.headers["X-Bogv-Created"] == "false"
    assert first.headers["X-Bogv-Id"] == again.headers["X-Bogv-Id"] == str(
        search(client, photos["camera"], limit="1")[0]["id"])


def test_adding_again_restores_a_missing_thumbnail(client: TestClient, service: Service,
                                                   photos: dict[str, bytes]) -> None:
    id_ = int(add(client, photos["rocket"], key="r").headers["X-Bogv-Id"])
    service.files.path(id_, THUMBNAIL).unlink()  # as for a record stored before thumbnails existed
    fails(client.get(f"{API}/thumb/{id_}"), 404)
    assert add(client, photos["rocket"], key="r").headers["X-Bogv-Created"] == "false"
    assert client.get(f"{API}/thumb/{id_}").status_code == 200


def test_folder_import_makes_thumbnails(tmp_path: Path, service: Service,
                                        photos: dict[str, bytes]) -> None:
    folder = write_photos(tmp_path / "in", photos)
    assert import_folder(service, folder).added == len(photos)
    page = service.newest(100)
    assert len(page.records) == len(photos)
    assert all(service.files.find(r.id, THUMBNAIL) for r in page.records)


def test_browsing_needs_the_token(tmp_path: Path, make_service: Callable[..., Service],
                                  photos: dict[str, bytes]) -> None:
    settings = Settings(data_dir=tmp_path / "d", token="s3cret")
    with TestClient(create_app(service=make_service(settings))) as client:
        id_ = client.post(f"{API}/add/file", files={"file": ("c.jpg", photos["coffee"])},
                          headers={"token": "s3cret"}).headers["X-Bogv-Id"]
        for path in ("/records", f"/thumb/{id_}"):
            fails(client.get(API + path), 401, "token")
            assert client.get(API + path, headers={"token": "s3cret"}).status_code == 200


def test_openapi_documents_the_additions(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    assert {f"{API}/records", f"{API}/thumb/{{id}}", "/healthz", "/readyz", "/metrics"} <= set(
        paths)
    assert {p["name"] for p in paths[f"{API}/records"]["get"]["parameters"]} == {
        "limit", "before", "key"}
    assert "X-Bogv-Created" in paths[f"{API}/add/file"]["post"]["responses"]["200"]["headers"]
    assert "image/jpeg" in paths[f"{API}/thumb/{{id}}"]["get"]["responses"]["200"]["content"]
