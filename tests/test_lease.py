"""The start-up import runs in one replica only: the lease file in the incoming folder."""

from __future__ import annotations

import logging
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bogv.api.app import create_app
from bogv.config import Settings
from bogv.lease import LEASE_FILE, FolderLease
from bogv.service import Service

from .images import PHOTOS, write_photos


def test_a_live_holder_excludes_others_until_it_releases(tmp_path: Path) -> None:
    one, two = FolderLease(tmp_path, ttl=0.4), FolderLease(tmp_path, ttl=0.4)
    assert one.acquire(threading.Event())
    assert not two.acquire(threading.Event())  # watched a full ttl: the holder kept beating
    assert two.other == one.holder
    one.release()
    assert not (tmp_path / LEASE_FILE).exists()
    assert two.acquire(threading.Event())
    two.release()


def test_a_dead_holders_lease_is_taken_over(tmp_path: Path) -> None:
    (tmp_path / LEASE_FILE).write_text("crashed-host:4242:abcd1234 7")  # no one beats it
    lease = FolderLease(tmp_path, ttl=0.4)
    assert lease.acquire(threading.Event())
    assert (tmp_path / LEASE_FILE).read_text().startswith(lease.holder)
    assert sorted(p.name for p in tmp_path.iterdir()) == [LEASE_FILE]
    lease.release()


def test_a_crashed_holder_on_this_host_is_taken_over_at_once(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (tmp_path / LEASE_FILE).write_text(f"{socket.gethostname()}:{dead}:abcd1234 3")
    lease, give_up = FolderLease(tmp_path, ttl=3600), threading.Event()
    timer = threading.Timer(20, give_up.set)  # watching the file instead would end here
    timer.start()
    assert lease.acquire(give_up)  # no watching: the holder's process is gone
    timer.cancel()
    lease.release()


def test_losing_the_lease_stops_the_holders_import(tmp_path: Path) -> None:
    lease, stop = FolderLease(tmp_path, ttl=0.2), threading.Event()
    assert lease.acquire(stop)
    (tmp_path / LEASE_FILE).write_text("other-host:1:ffff0000 0")  # taken over meanwhile
    assert stop.wait(5)
    lease.release()
    assert (tmp_path / LEASE_FILE).read_text().startswith("other-host")  # not ours to remove


def two_replicas_import_once(store_settings: Settings, tmp_path: Path,
                             make_service: Callable[..., Service], photos: dict[str, bytes],
                             caplog: pytest.LogCaptureFixture) -> None:
    """Two app instances on one store and one incoming folder: each file imported once."""
    inc, pool = tmp_path / "inc", tmp_path / "pool"
    write_photos(inc, photos)
    settings = store_settings.model_copy(update={
        "image_inc_path": inc, "image_pool_path": pool, "import_lease_ttl": 2.0})
    services = [make_service(settings), make_service(settings)]  # two replicas, one store
    caplog.set_level(logging.INFO, logger="bogv.startup")
    with ExitStack() as stack:
        apps = [stack.enter_context(TestClient(create_app(service=s))).app for s in services]
        for app in apps:
            app.state.import_thread.join(120)
    handled = [sum(map(int, m.groups())) for r in caplog.records if (m := re.search(
        r"start-up import .*: (\d+) added, (\d+) skipped, (\d+) failed", r.getMessage()))]
    assert sum(handled) == len(PHOTOS)  # each file went through one replica's import only
    assert services[0].store.count() == services[1].store.count() == len(PHOTOS)
    moved = sorted(p.name for p in pool.rglob("*") if p.is_file())
    assert len(moved) == len(PHOTOS) and not any("-1." in name for name in moved)
    assert not (inc / LEASE_FILE).exists()


def test_two_app_instances_import_the_folder_once(settings: Settings, tmp_path: Path,
                                                  make_service: Callable[..., Service],
                                                  photos: dict[str, bytes],
                                                  caplog: pytest.LogCaptureFixture) -> None:
    two_replicas_import_once(settings, tmp_path, make_service, photos, caplog)
