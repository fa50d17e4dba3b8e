"""A Milvus server that stops answering: a lost network or a frozen process keeps bogv's
connections open, and each call without a deadline waited for ever, with its request and
its worker (checked: a count through a stalled proxy still waited after 40 s)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from bogv.api.app import create_app
from bogv.config import Settings
from bogv.service import Service

from .stalling_proxy import stalling_proxy

API = "/api/image/sim"


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_stalled_server_fails_requests_with_503_in_time_and_serves_again_after(
        server_settings: Settings, make_service: Callable[[Settings], Service],
        photos: dict[str, bytes], caplog: pytest.LogCaptureFixture) -> None:
    with stalling_proxy(server_settings.milvus_uri) as proxy:
        service = make_service(server_settings.model_copy(
            update={"milvus_uri": proxy.url, "milvus_timeout": 1}))
        name, data = next(iter(photos.items()))
        image = {"file": (f"{name}.jpg", data, "image/jpeg")}
        proxy.stall()  # before start-up: its fill of the index of pieces meets it too
        with TestClient(create_app(service=service), raise_server_exceptions=False) as client:
            for path in ("/search/file", "/add/file"):
                started = time.monotonic()
                answer = client.post(f"{API}{path}", files=image, data={"key": name})
                assert time.monotonic() - started < 10, path
                assert answer.status_code == 503, (path, answer.text)
                assert "did not answer" in answer.json()["msg"], path
            proxy.resume()
            assert client.post(f"{API}/add/file", files=image, data={"key": name}
                               ).json()["code"] == 200
            found = client.post(f"{API}/search/file", files=image).json()["data"]
            assert found[0]["key"] == name
    assert any("not filled at start-up" in r.getMessage() and r.levelno == logging.WARNING
               for r in caplog.records)
