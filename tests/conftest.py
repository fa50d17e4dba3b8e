"""Fixtures: the real model (built once per run) and a fresh Milvus Lite file per test."""

from __future__ import annotations

import http.server
import ipaddress
import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

import httpx
import pytest
from fastapi.testclient import TestClient

from bogv.api.app import create_app
from bogv.config import Settings
from bogv.duplicates import Duplicates
from bogv.model.descriptor import DIM
from bogv.model.embedder import Embedder
from bogv.service import Service
from bogv.store import Store

from .images import PHOTOS, encode, photo

_ENV_PREFIXES = ("TOKEN", "MILVUS_", "IMAGE_", "API_", "DATA_DIR", "URL_", "MAX_", "COLLECTION",
                 "INDEX_", "SEARCH_", "WORKERS", "BATCH_SIZE", "THUMB_", "LOG_")


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No bogv setting leaks in from the machine running the tests."""
    for name in list(os.environ):
        if name.upper().startswith(_ENV_PREFIXES):
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests connect to loopback only, so a broken SSRF guard fails a test, never reaches out."""
    connect = socket.socket.connect

    def guarded(sock: socket.socket, address: object) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host = str(address[0]).split("%")[0]  # type: ignore[index]
            if not ipaddress.ip_address(host).is_loopback:
                raise ConnectionRefusedError(f"tests may not connect to {host}")
        connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def embedder(model_cache: Path) -> Embedder:
    return Embedder(model_cache)


@pytest.fixture(scope="session")
def photos() -> dict[str, bytes]:
    """Each test photo as a quality-92 JPEG."""
    return {name: encode(photo(name), quality=92) for name in PHOTOS}


@pytest.fixture(scope="session")
def lite_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One Milvus Lite file for the tests' services, each in a collection of its own:
    starting a Milvus Lite server costs ~0.5 s, a new collection in a running one as
    much again, and ~130 tests make a service."""
    return str(tmp_path_factory.mktemp("lite") / "bogv.db")


_collections = itertools.count()


@pytest.fixture
def settings(tmp_path: Path, lite_uri: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", image_allowed_roots=str(tmp_path / "allowed"),
                    milvus_uri=lite_uri, collection=f"t{next(_collections)}")


@pytest.fixture
def make_service(embedder: Embedder) -> Iterator[Callable[[Settings], Service]]:
    made: list[Service] = []

    def make(settings: Settings) -> Service:
        store = Store.from_settings(settings, model_id=embedder.model_id, dim=DIM)
        made.append(Service(settings, embedder, store))
        return made[-1]

    yield make
    for service in made:
        service.close()


@pytest.fixture
def service(settings: Settings, make_service: Callable[[Settings], Service]) -> Service:
    return make_service(settings)


@pytest.fixture
def client(service: Service) -> Iterator[TestClient]:
    with TestClient(create_app(service=service), raise_server_exceptions=False) as c:
        yield c


def hold_scans(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """Every scan waits at its first image: ``checking`` is set once one does, and it goes
    on when ``go_on`` is."""
    checking, go_on = threading.Event(), threading.Event()
    check = Duplicates._check

    def held(self: Duplicates, *args: Any) -> Any:
        checking.set()
        assert go_on.wait(60)
        return check(self, *args)

    monkeypatch.setattr(Duplicates, "_check", held)
    return checking, go_on


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served(NamedTuple):
    url: str
    env: dict[str, str]
    log: Path
    """The server's stderr: its log lines."""


@pytest.fixture
def served_env() -> dict[str, str]:
    """Extra environment for ``served``; override it in a test module to change settings."""
    return {}


def within(bound: float, check: Callable[[], bool]) -> float:
    """Seconds until ``check`` holds; fails past ``bound``: how long a write took to be seen."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < bound, f"not within {bound} s"
        time.sleep(0.02)
    return time.monotonic() - start


@contextmanager
def bogv_serve(root: Path, model_cache: Path, extra: dict[str, str]) -> Iterator[Served]:
    """``python -m bogv serve`` on a loopback port, over a fresh data directory ``root/data``.

    The data directory links to the session's converted model, so start-up only loads it.
    Stopped with SIGINT, as a user's Ctrl-C, and must exit cleanly.
    """
    port = free_port()
    data = root / "data"
    data.mkdir(parents=True)
    (data / "models").symlink_to(model_cache, target_is_directory=True)
    env = {**os.environ, "DATA_DIR": str(data), "API_PORT": str(port),
           "API_HOST": "127.0.0.1", **extra}
    log = root / "serve.log"
    with log.open("wb") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "bogv", "serve"], env=env,
                                stdout=subprocess.DEVNULL, stderr=stderr)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{url}/healthz").status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail(f"bogv serve did not start: {log.read_text()[-2000:]}")
    try:
        yield Served(url, env, log)
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(30)
    assert code == 0, log.read_text()[-2000:]


@pytest.fixture
def served(tmp_path: Path, embedder: Embedder, model_cache: Path,
           served_env: dict[str, str]) -> Iterator[Served]:
    """One ``bogv serve`` process (``bogv_serve``) with ``served_env`` added."""
    with bogv_serve(tmp_path, model_cache, served_env) as served:
        yield served


@pytest.fixture
def image_server() -> Iterator[tuple[str, dict[str, bytes]]]:
    """A real HTTP server on loopback serving ``files`` (path -> bytes); yields (base, files)."""
    files: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/redirect/"):
                self.send_response(302)
                self.send_header("Location", "/" + self.path.removeprefix("/redirect/"))
                self.end_headers()
                return
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", files
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URI of a real Milvus server: ``BOGV_TEST_MILVUS_URI`` or one started here.

    Started from the PyPI package ``milvus`` (standalone 2.3.5 with bundled binaries, no
    Docker) in a temp folder and stopped after the session. That server listens on every
    interface and offers no option to bind loopback only; we advertise and connect on
    127.0.0.1. The variable is not ``MILVUS_URI`` on purpose: these tests create and drop
    collections, so they must never meet a production server by accident.
    """
    given = os.environ.get("BOGV_TEST_MILVUS_URI", "")
    if given:
        yield given
        return
    try:
        import milvus
    except ImportError:
        no_server("no Milvus server: pip install milvus==2.3.5 or set BOGV_TEST_MILVUS_URI")
    server = milvus.MilvusServer(milvus.MilvusServerConfig(
        data_dir=str(tmp_path_factory.mktemp("milvus-server"))), wait_for_started=False)
    for component in ("rootCoord", "proxy", "queryCoord", "queryNode", "indexNode",
                      "dataCoord", "dataNode"):
        server.config.set(f"{component}.ip", "127.0.0.1")
    server.start()
    uri = f"http://127.0.0.1:{server.listen_port}"
    try:
        _wait_for_milvus(server.server_proc, f"http://127.0.0.1:{server.webservice_port}",
                         server.config.base_data_dir)
        yield uri
    finally:
        server.stop()


def no_server(reason: str) -> NoReturn:
    """Skip the server tests, except where ``BOGV_REQUIRE_MILVUS`` is set (CI): there a
    server that cannot start must fail the run, not pass it without its server tests."""
    if os.environ.get("BOGV_REQUIRE_MILVUS"):
        pytest.fail(reason)
    pytest.skip(reason)


def _wait_for_milvus(proc: subprocess.Popen[bytes], health: str, base: str) -> None:
    """Until /healthz answers OK; skip at once if the process died (the package itself
    would keep polling a dead server for three minutes)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            no_server(f"the Milvus server exited with {proc.returncode}; see {base}/logs "
                        "(another Milvus on this machine holds etcd's port 2380?)")
        try:
            if httpx.get(f"{health}/healthz", timeout=2).text.strip() == "OK":
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    no_server(f"the Milvus server did not answer in 120 s; see {base}/logs")


@pytest.fixture
def server_settings(milvus_server: str, tmp_path: Path,
                    request: pytest.FixtureRequest) -> Iterator[Settings]:
    """Settings for a collection of this test's own on the Milvus server, dropped after."""
    # The process id keeps two test runs that share one server (BOGV_TEST_MILVUS_URI) apart.
    name = ("t_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:52]
            + f"_{os.getpid()}")
    yield Settings(data_dir=tmp_path / "data", milvus_uri=milvus_server, collection=name,
                   image_allowed_roots=str(tmp_path / "allowed"))
    from pymilvus import MilvusClient

    client = MilvusClient(uri=milvus_server)
    for alias in client.list_aliases().get("aliases", []):
        if alias.startswith(name):
            client.drop_alias(alias)
    for collection in client.list_collections():
        if collection.startswith(name):
            client.drop_collection(collection)
    client.close()
