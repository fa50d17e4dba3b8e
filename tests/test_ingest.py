"""Folder import, the start-up import of IMAGE_INC_PATH, and the model stamp on the store."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bogv import ingest
from bogv.api.app import create_app
from bogv.config import Settings
from bogv.errors import ModelMismatch
from bogv.ingest import Outcome, find_files, import_folder
from bogv.model.descriptor import DIM
from bogv.service import Service
from bogv.store import Store

from .images import PHOTOS


def write_folder(folder: Path, photos: dict[str, bytes]) -> dict[str, Path]:
    """Photos in nested folders with non-ASCII names, a broken JPEG and a text file."""
    paths = {}
    for i, (name, data) in enumerate(photos.items()):
        path = folder / ("sub/ünïcode" if i % 2 else "") / f"{name} 写真.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        paths[name] = path
    (folder / "broken.jpg").write_bytes(photos["coffee"][:500])
    (folder / "readme.txt").write_text("not an image")
    return paths


def test_import_folder_reports_every_file_and_resumes(tmp_path: Path, service: Service,
                                                      photos: dict[str, bytes]) -> None:
    folder = tmp_path / "in"
    paths = write_folder(folder, photos)
    (folder / "dup.jpg").write_bytes(photos["coffee"])  # same bytes twice in one import
    first = import_folder(service, folder)
    assert (first.added, first.skipped, first.failed) == (len(PHOTOS), 1, 2)
    assert {Path(p).name for p, _ in first.failures} == {"broken.jpg", "readme.txt"}
    assert service.store.count() == len(PHOTOS)

    again = import_folder(service, folder)  # resuming: nothing is decoded or stored twice
    assert (again.added, again.skipped, again.failed) == (0, len(PHOTOS) + 1, 2)
    assert service.store.count() == len(PHOTOS)
    hit = service.search(photos["rocket"], limit=1)[0]
    assert hit.key == hashlib.md5(photos["rocket"]).hexdigest()
    assert hit.filepath == str(paths["rocket"].resolve())


def test_import_moves_to_pool_and_leaves_failures(tmp_path: Path, service: Service,
                                                  photos: dict[str, bytes]) -> None:
    inc, pool = tmp_path / "inc", tmp_path / "pool"
    paths = write_folder(inc, photos)
    summary = import_folder(service, inc, move_to=pool)
    assert summary.added == len(PHOTOS)
    assert sorted(p.name for p in inc.rglob("*") if p.is_file()) == ["broken.jpg", "readme.txt"]
    hit = service.search(photos["camera"], limit=1)[0]
    moved = pool / paths["camera"].relative_to(inc)
    assert hit.filepath == str(moved.resolve()) and moved.read_bytes() == photos["camera"]


def test_startup_import_runs_in_background(tmp_path: Path, make_service: Callable[..., Service],
                                           photos: dict[str, bytes]) -> None:
    inc, pool = tmp_path / "inc", tmp_path / "pool"
    write_folder(inc, photos)
    settings = Settings(data_dir=tmp_path / "d", image_inc_path=inc, image_pool_path=pool)
    service = make_service(settings)
    with TestClient(create_app(service=service)) as client:
        # The API answers while the import runs.
        assert client.get("/api/image/sim/stats").json()["code"] == 200
        deadline = time.monotonic() + 60
        while service.store.count() < len(PHOTOS) and time.monotonic() < deadline:
            time.sleep(0.2)
        client.app.state.import_thread.join(30)
        assert service.store.count() == len(PHOTOS)
        hits = client.post("/api/image/sim/search/path",
                           json={"path": str(next(pool.rglob("coffee*.jpg"))), "limit": 1})
        assert hits.json()["data"][0]["score"] == pytest.approx(1.0, abs=1e-4)
    assert {p.name for p in inc.rglob("*") if p.is_file()} == {"broken.jpg", "readme.txt"}
    assert len([p for p in pool.rglob("*") if p.is_file()]) == len(PHOTOS)


def test_store_refuses_vectors_of_another_model(settings: Settings, service: Service) -> None:
    service.close()
    with pytest.raises(ModelMismatch, match="new collection"):
        Store(settings.store_uri, model_id="some-other-model:v9", dim=DIM,
              collection=settings.collection)


def test_ids_are_unique_increasing_and_javascript_safe(service: Service) -> None:
    ids = service.store.ids.take(10_000) + service.store.ids.take(5)
    assert len(set(ids)) == len(ids) and ids == sorted(ids)
    assert max(ids) < 2**53


def test_import_across_chunks_and_batches_reports_every_file(
        tmp_path: Path, service: Service, photos: dict[str, bytes],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 3 files embedded 2 at a time: failures and duplicates land mid-chunk."""
    monkeypatch.setattr(ingest, "CHUNK", 3)
    service.settings.batch_size = 2
    folder = tmp_path / "in"
    paths = write_folder(folder, photos)
    (folder / "dup.jpg").write_bytes(photos["coffee"])
    seen: list[Outcome] = []
    summary = import_folder(service, folder, on_outcome=seen.append)
    assert sorted(o.path.name for o in seen) == sorted(p.name for p in find_files(folder))
    assert (summary.added, summary.skipped, summary.failed) == (len(PHOTOS), 1, 2)
    for name, path in paths.items():  # every image stored with its own descriptor
        hit = service.search(photos[name], limit=1)[0]
        assert hit.filepath == str(path.resolve()) and hit.score == pytest.approx(1, abs=1e-4)


@pytest.fixture
def file_per_chunk(tmp_path: Path, photos: dict[str, bytes],
                   monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder of the photos, imported one file per chunk (so an import can stop midway)."""
    monkeypatch.setattr(ingest, "CHUNK", 1)
    folder = tmp_path / "in"
    write_folder(folder, photos)
    return folder


def no_stage_threads() -> bool:
    return not [t for t in threading.enumerate() if t.name == "bogv-import-stage"]


def test_import_stops_when_asked_and_leaves_no_threads(service: Service,
                                                       file_per_chunk: Path) -> None:
    folder = file_per_chunk
    stop = threading.Event()
    summary = import_folder(service, folder, stop=stop, on_outcome=lambda _: stop.set())
    done = summary.added + summary.skipped + summary.failed
    assert 1 <= done < len(find_files(folder))  # at most the chunks already under way
    assert no_stage_threads()


def test_import_raises_the_callers_error_and_leaves_no_threads(service: Service,
                                                               file_per_chunk: Path) -> None:
    def fail(_: Outcome) -> None:
        raise RuntimeError("progress bar broke")

    with pytest.raises(RuntimeError, match="progress bar broke"):
        import_folder(service, file_per_chunk, on_outcome=fail)
    assert no_stage_threads()
