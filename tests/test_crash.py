"""SIGKILL in the middle of an import, then a restart: every image ends up indexed exactly
once, and the restart decodes and embeds only what was not stored yet.

The default run kills imports of a few hundred images; ``-m slow`` runs the same tests on
2,000 images, as the hardening issue asks.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bogv.api.app import create_app
from bogv.config import Settings
from bogv.ingest import import_folder
from bogv.service import Service
from bogv.store import lite_file_in_use

from .conftest import _ENV_PREFIXES
from .images import PHOTOS, photo

SIZES = [pytest.param(300, id="300"), pytest.param(2000, id="2000", marks=pytest.mark.slow)]


def make_images(folder: Path, count: int) -> dict[str, Path]:
    """``count`` distinct small JPEGs cut from real photographs; sha256 -> path."""
    folder.mkdir(parents=True)
    sources = [photo(name) for name in PHOTOS]
    made: dict[str, Path] = {}
    for i in range(count):
        src = sources[i % len(sources)]
        step = i // len(sources)
        side = 64 + step % 48
        x, y = (step * 7) % (src.width - side), (step * 13) % (src.height - side)
        path = folder / f"{i // 500:02d}" / f"img-{i:05d}.jpg"
        path.parent.mkdir(exist_ok=True)
        src.crop((x, y, x + side, y + side)).save(path, quality=70 + i % 25)
        made[hashlib.sha256(path.read_bytes()).hexdigest()] = path
    assert len(made) == count, "the generated images must be distinct"
    return made


def bogv_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(_ENV_PREFIXES)}
    return {**env, "DATA_DIR": str(data_dir), **extra}


def kill_when(proc: subprocess.Popen[bytes], ready: Callable[[], bool], what: str) -> None:
    """SIGKILL ``proc`` as soon as ``ready()``; fail if it ends or stalls first."""
    deadline = time.monotonic() + 600
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"{what} ended (status {proc.returncode}) before it could be killed")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"{what} made no progress")
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(60)


def wait_unlocked(uri: str) -> None:
    """Milvus Lite's engine dies with its parent; wait until it has released the file."""
    deadline = time.monotonic() + 60
    while lite_file_in_use(uri):
        assert time.monotonic() < deadline, "the killed import still holds the data file"
        time.sleep(0.2)


@pytest.fixture
def prepared(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts images decoded for the model (``Service.prepare``), the work a resume skips."""
    calls: list[int] = []
    prepare = Service.prepare

    def counting(self: Service, data: bytes, **options: object) -> object:
        calls.append(len(data))
        return prepare(self, data, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(Service, "prepare", counting)
    return calls


def assert_indexed_once(service: Service, images: dict[str, Path]) -> None:
    records = service.store.query("id >= 0")
    shas = [r.sha256 for r in records]
    assert len(shas) == len(set(shas)), "an image is stored twice"
    assert set(shas) == set(images), "an image is missing"


@pytest.mark.parametrize("count", SIZES)
def test_import_killed_midway_resumes_exactly_once(
        tmp_path: Path, count: int, make_service: Callable[[Settings], Service],
        prepared: list[int]) -> None:
    images = make_images(tmp_path / "photos", count)
    data_dir = tmp_path / "data"
    progress = ProgressReader()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bogv", "import", str(tmp_path / "photos"), "--json"],
        env=bogv_env(data_dir, FORCE_COLOR="1", COLUMNS="200"),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    progress.follow(proc, total=count)
    kill_when(proc, lambda: progress.done >= count * 0.3, "bogv import")

    settings = Settings(data_dir=data_dir)
    wait_unlocked(settings.store_uri)
    service = make_service(settings)
    stored = service.store.count()
    assert 0 < stored < count, f"the kill did not land mid-import ({stored}/{count})"

    summary = import_folder(service, tmp_path / "photos")
    print(f"\nbogv import of {count} killed with {stored} stored; the rerun added "
          f"{summary.added}, skipped {summary.skipped}, decoded {len(prepared)}")
    assert (summary.added, summary.skipped, summary.failed) == (count - stored, stored, 0)
    assert len(prepared) == count - stored  # finished work is not decoded or embedded again
    assert_indexed_once(service, images)


@pytest.mark.parametrize("count", SIZES)
def test_startup_import_killed_midway_resumes_exactly_once(
        tmp_path: Path, count: int, make_service: Callable[[Settings], Service],
        prepared: list[int]) -> None:
    inc, pool, data_dir = tmp_path / "inc", tmp_path / "pool", tmp_path / "data"
    images = make_images(inc, count)
    env = bogv_env(data_dir, IMAGE_INC_PATH=str(inc), IMAGE_POOL_PATH=str(pool),
                   API_HOST="127.0.0.1", API_PORT="0")
    proc = subprocess.Popen([sys.executable, "-m", "bogv", "serve"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_when(proc, lambda: len(files(pool)) >= count * 0.3, "bogv serve's start-up import")

    settings = Settings(data_dir=data_dir, image_inc_path=inc, image_pool_path=pool)
    wait_unlocked(settings.store_uri)
    service = make_service(settings)
    stored = service.store.count()
    assert 0 < stored < count, f"the kill did not land mid-import ({stored}/{count})"
    print(f"\nstart-up import of {count} killed with {stored} stored, {len(files(pool))} "
          f"moved ({stored - len(files(pool))} stored but not yet moved)")
    with TestClient(create_app(service=service)) as client:
        client.app.state.import_thread.join(600)
        assert not client.app.state.import_thread.is_alive()

    print(f"restart decoded {len(prepared)}; pool {len(files(pool))}, incoming "
          f"{len(files(inc))}, records {service.store.count()}")
    assert len(prepared) == count - stored
    assert files(inc) == []
    moved = {hashlib.sha256(p.read_bytes()).hexdigest(): p for p in files(pool)}
    assert len(moved) == len(files(pool)) == count and set(moved) == set(images)
    assert_indexed_once(service, images)
    for record in service.store.query("id >= 0"):  # each record names its file in the pool
        assert moved[record.sha256] == Path(record.filepath)


def files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


class ProgressReader:
    """Reads ``bogv import``'s progress bar ("N/TOTAL") from its stderr as it is drawn."""

    def __init__(self) -> None:
        self.done = 0

    def follow(self, proc: subprocess.Popen[bytes], total: int) -> None:
        pattern = re.compile(rf"(\d+)/{total}\b".encode())
        assert proc.stderr is not None
        stream = proc.stderr

        def read() -> None:
            tail = b""
            while chunk := stream.read1(65536):
                tail = (tail + chunk)[-4096:]
                found = pattern.findall(tail)
                if found:
                    self.done = max(self.done, int(found[-1]))

        threading.Thread(target=read, daemon=True).start()


def test_a_file_stored_but_not_yet_moved_is_moved_where_its_record_says(
        tmp_path: Path, service: Service, prepared: list[int]) -> None:
    """The narrow window a kill can hit: a batch inserted, its files not moved yet."""
    inc, pool = tmp_path / "inc", tmp_path / "pool"
    images = make_images(inc, 3)
    caught = next(iter(images.values()))  # its record exists, the kill came before the move
    data = caught.read_bytes()
    service.add(data, hashlib.md5(data).hexdigest(), str(pool / caught.relative_to(inc)))
    prepared.clear()
    summary = import_folder(service, inc, move_to=pool)
    assert (summary.added, summary.skipped, len(prepared)) == (2, 1, 2)
    assert files(inc) == []
    for record in service.store.query("id >= 0"):  # every record names its moved file
        assert hashlib.sha256(Path(record.filepath).read_bytes()).hexdigest() == record.sha256
    assert_indexed_once(service, images)
