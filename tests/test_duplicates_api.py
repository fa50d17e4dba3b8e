"""Duplicates and "more like this" over HTTP: the envelope, paging, errors and the schema."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from bogv.api.app import create_app
from bogv.config import Settings
from bogv.duplicates import Duplicates
from bogv.service import Service

from .conftest import free_port, hold_scans, within
from .images import edited_copy, encode, photo

API = "/api/image/sim"


def fill(service: Service, photos: dict[str, bytes]) -> dict[str, int]:
    ids = {name: service.add(data, key=name, filepath=f"{name}.jpg").id
           for name, data in photos.items()}
    ids["coffee-small"] = service.add(edited_copy(photo("coffee")), key="coffee-small").id
    ids["rocket-q20"] = service.add(encode(photo("rocket"), quality=20), key="rocket-q20").id
    return ids


def test_scan_list_page_dismiss_and_delete(client: TestClient, service: Service,
                                           photos: dict[str, bytes]) -> None:
    ids = fill(service, photos)
    before = client.get(f"{API}/duplicates").json()
    assert before["code"] == 200 and before["data"]["groups"] == []
    assert before["data"]["pending"] == len(ids)
    scanned = client.post(f"{API}/duplicates/scan").json()["data"]
    assert scanned["scanned"] == len(ids) and scanned["copies"] >= 2
    page = client.get(f"{API}/duplicates", params={"limit": 1}).json()["data"]
    assert page["total"] == 2 and page["next"] == 1 and page["pending"] == 0
    second = client.get(f"{API}/duplicates", params={"limit": 1, "offset": 1}).json()["data"]
    assert second["next"] is None
    groups = page["groups"] + second["groups"]
    by_keep = {g["suggested"]: g for g in groups}
    assert set(by_keep) == {ids["coffee"], ids["rocket"]}
    coffee = by_keep[ids["coffee"]]
    assert [(m["key"], m["suggested"], m["match"]) for m in coffee["members"]] == [
        ("coffee", True, "reference"), ("coffee-small", False, "copy")]
    member = coffee["members"][1]
    assert set(member) == {"id", "key", "filepath", "score", "match", "suggested", "width",
                           "height"} and member["score"] >= 0.5
    assert coffee["why"] == "oldest of equally large copies"  # thumbnails: 256 vs 240 px wide

    dismissed = client.post(f"{API}/duplicates/dismiss",
                            json={"ids": [ids["rocket"], ids["rocket-q20"]]}).json()
    assert dismissed == {"msg": "success", "code": 200, "data": 1}
    deleted = client.post(f"{API}/del/id", json={"id": str(ids["coffee-small"])}).json()
    assert deleted["data"] == 1  # keeping one = deleting the others, the normal way
    assert client.get(f"{API}/duplicates").json()["data"]["total"] == 0


def keep(client: TestClient, version: str, *choices: tuple[int, list[int]]) -> dict[str, Any]:
    body = client.post(f"{API}/duplicates/keep", json={
        "groups": [{"keep": k, "delete": d} for k, d in choices], "version": version}).json()
    assert body["code"] == 200, body
    data: dict[str, Any] = body["data"]
    return data


def test_keep_deletes_as_listed_while_the_groups_stand(
        client: TestClient, service: Service, photos: dict[str, bytes],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Groups are decided on minutes after they were listed. Deletes change no image's
    copies, so while no scan or dismissal changed the listing's version, the images are
    deleted as asked, and the groups are not made again for it; but never an image kept,
    nor the images of one that is gone."""
    ids = fill(service, photos)
    client.post(f"{API}/duplicates/scan")
    made: list[int] = []
    anchored = Duplicates._anchored_groups

    def counted(self: Duplicates, *args: Any) -> Any:
        made.append(1)
        return anchored(self, *args)

    monkeypatch.setattr(Duplicates, "_anchored_groups", counted)
    listed = client.get(f"{API}/duplicates").json()["data"]
    assert listed["total"] == 2 and len(made) == 1
    version = listed["version"]
    coffee, small, rocket, q20 = (ids[k] for k in ("coffee", "coffee-small", "rocket",
                                                   "rocket-q20"))
    # Two decisions keeping what the other deletes: neither is deleted.
    assert keep(client, version, (coffee, [small]), (small, [coffee])) == {
        "deleted": 0, "left": [small, coffee]}
    assert keep(client, version, (rocket, [q20])) == {"deleted": 1, "left": []}
    assert keep(client, version, (small, [coffee])) == {"deleted": 1, "left": []}
    # A tab listed before keeps the original: the copy it would delete is all that is left
    # of the picture.
    assert keep(client, version, (coffee, [small])) == {"deleted": 0, "left": [small]}
    assert len(made) == 1
    assert {r.key for r in service.store.query("id >= 0")} == {*photos} - {"coffee"} | {
        "coffee-small"}
    after = client.get(f"{API}/duplicates").json()["data"]
    assert after["total"] == 0 and after["version"] == version


def test_keep_checks_the_groups_again_once_the_version_changed(
        client: TestClient, service: Service, photos: dict[str, bytes]) -> None:
    ids = fill(service, photos)
    ids["chelsea-q20"] = service.add(encode(photo("chelsea"), quality=20),
                                     key="chelsea-q20").id
    client.post(f"{API}/duplicates/scan")
    listed = client.get(f"{API}/duplicates").json()["data"]
    assert listed["total"] == 3
    # After the listing, another reviewer calls the rockets not duplicates, another
    # client deletes the original coffee.
    client.post(f"{API}/duplicates/dismiss", json={"ids": [ids["rocket"], ids["rocket-q20"]]})
    client.post(f"{API}/del/id", json={"id": str(ids["coffee"])})
    assert keep(client, listed["version"], (ids["rocket"], [ids["rocket-q20"]]),
                (ids["coffee"], [ids["coffee-small"]]),
                (ids["chelsea"], [ids["chelsea-q20"], ids["coffee-small"]])) == {
        "deleted": 1, "left": [ids["rocket-q20"], ids["coffee-small"]]}
    assert service.store.count(f"id in {[ids['rocket-q20'], ids['coffee-small']]}") == 2
    assert service.store.count(f"id == {ids['chelsea-q20']}") == 0


def test_search_by_id(client: TestClient, service: Service, photos: dict[str, bytes]) -> None:
    ids = fill(service, photos)
    body = client.post(f"{API}/search/id", json={"id": ids["coffee"], "limit": 2}).json()
    assert body["code"] == 200
    assert body["data"][0]["key"] == "coffee-small"
    assert body["data"][0]["match"] == "copy" and len(body["data"]) == 2
    only = client.post(f"{API}/search/id", json={"id": ids["coffee"], "min_score": 0.5,
                                                 "unique_key": True}).json()["data"]
    assert [h["key"] for h in only] == ["coffee-small"]


def test_errors_are_in_the_envelope(client: TestClient, service: Service,
                                    photos: dict[str, bytes]) -> None:
    ids = fill(service, photos)
    cases = [
        (client.post(f"{API}/search/id", json={"id": 42}), 404, "no record with id 42"),
        (client.post(f"{API}/search/id", json={"id": ids["coffee"], "limit": 100_000}), 422,
         "limit must be between 1 and 1000"),
        (client.post(f"{API}/duplicates/dismiss", json={"ids": [ids["coffee"]]}), 422, "ids"),
        (client.post(f"{API}/duplicates/dismiss", json={"ids": [ids["coffee"], 7]}), 404,
         "no record with id 7"),
        (client.get(f"{API}/duplicates", params={"min_score": 0.2}), 422, "min_score"),
        (client.post(f"{API}/duplicates/keep", json={"groups": [], "version": "1-0"}), 422,
         "groups"),
        (client.post(f"{API}/duplicates/keep", json={"groups": [
            {"keep": 1, "delete": [2]}, {"keep": 3, "delete": list(range(4, 10_004))}],
            "version": "1-0"}), 422, "at most 10000 images to delete in one request"),
        (client.post(f"{API}/duplicates/keep", json={"groups": [{"keep": -1, "delete": [2]}],
                                                     "version": "1-0"}), 422, "keep"),
        (client.post(f"{API}/duplicates/keep", json={"groups": [{"keep": 1, "delete": [2]}]}),
         422, "version"),
    ]
    for resp, status, text in cases:
        body = resp.json()
        assert resp.status_code == body["code"] == status and body["data"] is None
        assert text in body["msg"]


def test_progress_of_a_running_scan(client: TestClient, service: Service,
                                    photos: dict[str, bytes],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """While ``POST /duplicates/scan`` runs (here held at its first image), ``GET
    /duplicates/progress`` says how far it is; before and after, nothing runs."""
    ids = fill(service, photos)
    idle = client.get(f"{API}/duplicates/progress").json()
    assert idle == {"msg": "success", "code": 200,
                    "data": {"scanning": None, "grouping": None, "elsewhere": False,
                             "scanning_elsewhere": None}}
    checking, go_on = hold_scans(monkeypatch)
    with ThreadPoolExecutor(1) as pool:
        scan = pool.submit(client.post, f"{API}/duplicates/scan")
        assert checking.wait(60)
        running = client.get(f"{API}/duplicates/progress").json()["data"]
        go_on.set()
        assert scan.result().json()["data"]["scanned"] == len(ids)
    assert running["grouping"] is None
    assert running["scanning"]["done"] == 0 and running["scanning"]["total"] == len(ids)
    assert running["scanning"]["seconds"] >= 0
    after = client.get(f"{API}/duplicates/progress").json()["data"]
    assert after == {"scanning": None, "grouping": None, "elsewhere": False,
                     "scanning_elsewhere": None}


def test_progress_says_a_scan_runs_on_another_replica(
        client: TestClient, service: Service, photos: dict[str, bytes],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Another replica sharing ``RECORD_DIR`` (another app here) scans the collection: this
    one answers its own scan 409 and says a scan runs elsewhere, and how far it is, so the
    page waits for it and shows that."""
    ids = fill(service, photos)
    checking, go_on = hold_scans(monkeypatch)
    with TestClient(create_app(service=service)) as other, ThreadPoolExecutor(1) as pool:
        scan = pool.submit(other.post, f"{API}/duplicates/scan")
        assert checking.wait(60)
        assert client.post(f"{API}/duplicates/scan").json()["code"] == 409
        elsewhere = client.get(f"{API}/duplicates/progress").json()["data"]
        there = other.get(f"{API}/duplicates/progress").json()["data"]
        go_on.set()
        assert scan.result().json()["code"] == 200
    seconds = elsewhere["scanning_elsewhere"].pop("seconds")
    assert elsewhere == {"scanning": None, "grouping": None, "elsewhere": True,
                         "scanning_elsewhere": {"done": 0, "total": len(ids)}}
    assert 0 <= seconds < 60
    assert there["scanning"] is not None and there["elsewhere"] is False
    assert there["scanning_elsewhere"] is None
    after = client.get(f"{API}/duplicates/progress").json()["data"]
    assert after["elsewhere"] is False and after["scanning_elsewhere"] is None


def test_a_scan_goes_on_when_its_request_is_cut(service: Service, photos: dict[str, bytes],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A reverse proxy gives up on a long scan's request (the first scan of 100k images
    takes about twenty minutes) and closes it: the scan goes on to its end and saves what it
    found, which the page then shows (``test_the_tab_waits_for_a_scan_and_keeps_all_suggested``)."""
    ids = fill(service, photos)
    checking, go_on = hold_scans(monkeypatch)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(service=service), host="127.0.0.1",
                                           port=port, log_level="warning"))
    serving = threading.Thread(target=server.run)
    serving.start()
    try:
        url = f"http://127.0.0.1:{port}{API}"
        within(30, lambda: server.started)
        with pytest.raises(httpx.ReadTimeout):  # the proxy's timeout; it closes the request
            httpx.post(f"{url}/duplicates/scan", timeout=httpx.Timeout(30, read=1))
        assert checking.wait(60)
        go_on.set()
        within(60, lambda: httpx.get(f"{url}/duplicates/progress").json()["data"]
               == {"scanning": None, "grouping": None, "elsewhere": False,
                   "scanning_elsewhere": None})
        listed = httpx.get(f"{url}/duplicates", timeout=60).json()["data"]
        assert listed["pending"] == 0 and listed["total"] == 2
        assert service.store.count() == len(ids)
    finally:
        go_on.set()
        server.should_exit = True
        serving.join(30)


def test_openapi_documents_duplicates(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {f"{API}/duplicates", f"{API}/duplicates/scan", f"{API}/duplicates/dismiss",
            f"{API}/duplicates/keep", f"{API}/duplicates/progress",
            f"{API}/search/id"} <= set(paths)
    listing = paths[f"{API}/duplicates"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {"offset", "limit", "min_score"}
    assert "409" in paths[f"{API}/duplicates/scan"]["post"]["responses"]
    assert "404" in paths[f"{API}/search/id"]["post"]["responses"]


def test_duplicates_api_on_a_milvus_server(server_settings: Settings,
                                           make_service: Callable[[Settings], Service],
                                           photos: dict[str, bytes]) -> None:
    service = make_service(server_settings)
    ids = fill(service, photos)
    ids["chelsea-q20"] = service.add(encode(photo("chelsea"), quality=20),
                                     key="chelsea-q20").id
    with TestClient(create_app(service=service)) as client:
        assert client.post(f"{API}/duplicates/scan").json()["data"]["scanned"] == len(ids)
        listed = client.get(f"{API}/duplicates").json()["data"]
        groups, groups_version = listed["groups"], listed["version"]
        assert {g["suggested"] for g in groups} == {ids["coffee"], ids["rocket"], ids["chelsea"]}
        client.post(f"{API}/duplicates/dismiss", json={"ids": [ids["coffee"],
                                                                ids["coffee-small"]]})
        page = client.get(f"{API}/duplicates").json()["data"]
        assert {g["suggested"] for g in page["groups"]} == {ids["rocket"], ids["chelsea"]}
        hits = client.post(f"{API}/search/id", json={"id": ids["rocket"], "limit": 1}).json()
        assert hits["data"][0]["id"] == ids["rocket-q20"]
        # decided on the listing before the dismissal: checked against the groups now
        assert keep(client, groups_version, (ids["coffee"], [ids["coffee-small"]]),
                    (ids["rocket"], [ids["rocket-q20"]])) == {"deleted": 1,
                                                              "left": [ids["coffee-small"]]}
        assert keep(client, page["version"], (ids["rocket-q20"], [ids["rocket"]])) == {
            "deleted": 0, "left": [ids["rocket"]]}
        # Another replica deletes the image to keep a moment before: its copy is left.
        assert make_service(server_settings).delete_ids([ids["chelsea"]]) == 1
        assert keep(client, page["version"], (ids["chelsea"], [ids["chelsea-q20"]])) == {
            "deleted": 0, "left": [ids["chelsea-q20"]]}
        assert client.get(f"{API}/duplicates").json()["data"]["total"] == 0
