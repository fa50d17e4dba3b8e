"""Slow or hostile URLs must not take the API's CPU workers: while as many URL fetches as
there are workers hang on a site that never answers, searches and readiness still answer."""

from __future__ import annotations

import base64
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path

from fastapi.testclient import TestClient

from bogv.api.app import create_app
from bogv.config import Settings
from bogv.service import Service

API = "/api/image/sim"


class StallingSite:
    """A loopback site that accepts connections and never answers until ``hang_up``;
    ``arrived`` is released once per connection, so a test knows the fetches are hanging."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/slow.jpg"
        self.arrived = threading.Semaphore(0)
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # closed by hang_up
                return
            self.held.append(conn)
            self.arrived.release()

    def hang_up(self) -> None:
        """Close everything: the hanging fetches fail now and their requests end."""
        self.listener.close()
        for conn in self.held:
            conn.close()


@contextmanager
def stalling_site() -> Iterator[StallingSite]:
    site = StallingSite()
    try:
        yield site
    finally:
        site.hang_up()


def test_stalled_url_fetches_leave_searches_and_readiness_answering(
        tmp_path: Path, make_service: Callable[[Settings], Service],
        photos: dict[str, bytes]) -> None:
    settings = Settings(data_dir=tmp_path / "d", workers=2, url_allow_private=True,
                        url_timeout=300, url_total_timeout=300)
    service = make_service(settings)
    service.add(photos["coffee"], key="coffee")
    query = {"base64": base64.b64encode(photos["coffee"]).decode(), "limit": 1}
    with (stalling_site() as site,
          TestClient(create_app(service=service), raise_server_exceptions=False) as client,
          ThreadPoolExecutor(settings.workers + 2) as pool):
        stalled = [pool.submit(client.post, f"{API}/search/url", json={"url": site.url})
                   for _ in range(settings.workers)]
        for _ in stalled:
            assert site.arrived.acquire(timeout=60)  # every worker's fetch is now hanging
        ready = pool.submit(client.get, "/readyz")
        found = pool.submit(client.post, f"{API}/search/base64", json=query)
        done, _ = wait([ready, found], timeout=60)  # far longer than either needs
        answered = ready in done, found in done
        site.hang_up()  # before the pool waits for the stalled requests
    assert answered == (True, True)
    assert ready.result().json()["data"]["status"] == "ready"
    assert found.result().json()["data"][0]["key"] == "coffee"
    assert all(f.result().status_code == 503 for f in stalled)  # the site hung up on them
