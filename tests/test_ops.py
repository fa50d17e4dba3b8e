"""Operations: /healthz, /readyz, /metrics, the request log and JSON logs."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bogv.api.app import create_app
from bogv.config import Settings
from bogv.logs import JsonFormatter, configure
from bogv.model import cpu
from bogv.service import Service

from .test_api import API, add, fails, ok, search


def test_health_and_readiness(client: TestClient, service: Service,
                              photos: dict[str, bytes]) -> None:
    assert ok(client.get("/healthz")) == {"status": "alive"}
    ok(add(client, photos["coffee"]))
    ready = ok(client.get("/readyz"))
    assert ready["status"] == "ready" and ready["count"] == 1
    assert ready["model"] == service.embedder.model_id and ready["store"] == "milvus-lite"
    # Which graph runs, and on what: a mixed fleet's replicas can be compared at a glance.
    assert ready["precision"] == "fp32" and ready["cpu"] == str(cpu.detect())

    service.store.client.close()  # the store goes away under a running service
    fails(client.get("/readyz"), 503, "Milvus")
    assert ok(client.get("/healthz")) == {"status": "alive"}


def metric(text: str, sample: str) -> float:
    """The value of one exposition line, e.g. ``bogv_records``."""
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{sample} not in metrics:\n{text}")


def test_metrics_count_requests_images_and_embeddings(client: TestClient,
                                                      photos: dict[str, bytes]) -> None:
    id_ = add(client, photos["coffee"]).headers["X-Bogv-Id"]
    add(client, photos["chelsea"])
    search(client, photos["coffee"])
    client.get(f"{API}/thumb/{id_}")
    client.get("/no/such/page")
    resp = client.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    text = resp.text
    add_route = 'method="POST",route="/api/image/sim/add/file"'
    assert metric(text, f"bogv_http_requests_total{{{add_route},status=\"200\"}}") == 2
    assert metric(text, f"bogv_http_request_duration_seconds_count{{{add_route}}}") == 2
    thumb = 'method="GET",route="/api/image/sim/thumb/{id}",status="200"'
    assert metric(text, f"bogv_http_requests_total{{{thumb}}}") == 1
    assert metric(text, 'bogv_http_requests_total{method="GET",route="unmatched",'
                        'status="404"}') == 1
    assert metric(text, "bogv_images_indexed_total") == 2
    assert metric(text, "bogv_images_embedded_total") == 3
    assert metric(text, "bogv_embedding_seconds_count") == 3
    assert metric(text, "bogv_embedding_seconds_sum") > 0
    assert metric(text, "bogv_records") == 2


def test_metrics_need_the_token_probes_do_not(tmp_path: Path,
                                              make_service: Callable[..., Service]) -> None:
    settings = Settings(data_dir=tmp_path / "d", token="s3cret")
    with TestClient(create_app(service=make_service(settings))) as client:
        fails(client.get("/metrics"), 401, "token")
        assert client.get("/metrics", headers={"Authorization": "Bearer s3cret"}).status_code \
            == 200
        ok(client.get("/healthz"))
        ok(client.get("/readyz"))


def test_one_log_line_per_request(client: TestClient, photos: dict[str, bytes],
                                  caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="bogv.access"):
        client.get("/healthz")
        add(client, b"not an image")
    lines = [r for r in caplog.records if r.name == "bogv.access"]
    assert [(r.method, r.path, r.status) for r in lines] == [  # type: ignore[attr-defined]
        ("GET", "/healthz", 200), ("POST", f"{API}/add/file", 415)]
    assert all(r.duration_ms >= 0 for r in lines)  # type: ignore[attr-defined]
    assert lines[1].getMessage().startswith(f"POST {API}/add/file 415 ")


def test_json_log_lines() -> None:
    record = logging.LogRecord("bogv.access", logging.INFO, __file__, 1, "%s %s %d", (
        "GET", "/healthz", 200), None)
    record.__dict__.update(method="GET", path="/healthz", status=200, duration_ms=1.25)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["msg"] == "GET /healthz 200" and entry["level"] == "info"
    assert (entry["method"], entry["path"], entry["status"], entry["duration_ms"]) == (
        "GET", "/healthz", 200, 1.25)
    assert entry["logger"] == "bogv.access" and entry["time"].endswith("+00:00")


def test_pymilvus_logs_as_bogv_does_and_keeps_its_iterator_quiet(
        capsys: pytest.CaptureFixture[str]) -> None:
    """pymilvus brings a handler of its own; every start-up reads the collection with a
    query iterator, whose clock warning under Milvus Lite would be a line of another
    format in a JSON log."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure("info", "json")
        logging.getLogger("pymilvus.milvus_client").warning("from pymilvus")
        logging.getLogger("pymilvus.orm.iterator").warning("failed to get mvccTs")
        lines = capsys.readouterr().err.splitlines()
        assert [json.loads(line)["msg"] for line in lines] == ["from pymilvus"]
    finally:
        root.handlers[:], root.level = handlers, level
