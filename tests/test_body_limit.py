"""Request bodies are capped while they arrive: a client offering a gigabyte is stopped after
about MAX_UPLOAD_BYTES, before Starlette spools it, with the usual 413 envelope."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bogv.api.app import create_app
from bogv.api.limits import body_cap
from bogv.config import Settings
from bogv.service import Service

LIMIT = 1_000_000
CHUNK = 65_536
OFFERED = 1 << 30  # what the client would send if let: 1 GiB
PREAMBLE = (b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n\xff\xd8")


async def post_stream(app: Any, path: str, headers: dict[str, str],
                      first: bytes) -> tuple[int, dict[str, Any], int]:
    """POST to the ASGI app as a server would, chunk by chunk; returns (status, body, sent)."""
    sent = 0
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        chunk = first if sent == 0 else b"\0" * CHUNK
        sent += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": sent < OFFERED}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "server": ("127.0.0.1", 7000),
             "client": ("127.0.0.1", 50000),
             "headers": [(k.encode(), v.encode()) for k, v in headers.items()]}
    await app(scope, receive, send)
    status = next(m["status"] for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return status, json.loads(body), sent


@pytest.fixture
def client(tmp_path: Path, make_service: Callable[[Settings], Service]) -> TestClient:
    settings = Settings(data_dir=tmp_path / "d", max_upload_bytes=LIMIT)
    with TestClient(create_app(service=make_service(settings))) as client:
        yield client


@pytest.mark.parametrize(("path", "content_type", "first"), [
    ("/api/image/sim/add/file", "multipart/form-data; boundary=xyz", PREAMBLE),
    ("/api/image/sim/search/file", "multipart/form-data; boundary=xyz", PREAMBLE),
    ("/api/image/sim/search/base64", "application/json", b'{"base64": "'),
])
def test_streamed_bodies_stop_at_the_cap(client: TestClient, path: str, content_type: str,
                                         first: bytes) -> None:
    status, body, sent = client.portal.call(post_stream, client.app, path,
                                            {"content-type": content_type}, first)
    cap = body_cap(LIMIT, content_type)
    assert status == body["code"] == 413
    assert "request body is larger than" in body["msg"] and "MAX_UPLOAD_BYTES" in body["msg"]
    assert cap < sent <= cap + CHUNK  # read up to the cap, then stopped
    assert client.get("/api/image/sim/stats").json()["data"]["count"] == 0


def test_a_declared_length_over_the_cap_is_refused_unread(client: TestClient) -> None:
    headers = {"content-type": "multipart/form-data; boundary=xyz",
               "content-length": str(OFFERED)}
    status, body, sent = client.portal.call(post_stream, client.app,
                                            "/api/image/sim/add/file", headers, PREAMBLE)
    assert status == body["code"] == 413 and sent == 0


def test_bodies_under_the_cap_still_reach_the_route(client: TestClient,
                                                   photos: dict[str, bytes]) -> None:
    """An image just under MAX_UPLOAD_BYTES, as multipart and as base64, passes the cap."""
    import base64

    data = photos["coffee"] + b"\0" * (LIMIT - len(photos["coffee"]))
    assert len(data) == LIMIT
    resp = client.post("/api/image/sim/add/file", files={"file": ("a.jpg", data)})
    assert resp.json()["code"] == 200, resp.json()
    resp = client.post("/api/image/sim/search/base64",
                       json={"base64": base64.b64encode(data).decode(), "limit": 1})
    assert resp.json()["data"][0]["score"] > 0.99
