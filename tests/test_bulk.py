"""Bulk import in worker processes and on Ray: same outcomes and vectors as the default import."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bogv.cli import app
from bogv.config import Settings
from bogv.service import STARS, Service

from .images import PHOTOS, edited_copy, encode, photo

runner = CliRunner()


@pytest.fixture
def folder(tmp_path: Path, photos: dict[str, bytes]) -> Path:
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    for i, (name, data) in enumerate(photos.items()):
        (folder / ("sub" if i % 2 else "") / f"{name}.jpg").write_bytes(data)
    (folder / "broken.jpg").write_bytes(photos["coffee"][:500])
    (folder / "notes.txt").write_text("hello")
    return folder


@pytest.fixture
def data_env(tmp_path: Path, model_cache: Path, embedder: object,
             monkeypatch: pytest.MonkeyPatch) -> Path:
    """DATA_DIR with the converted model already in place, so workers start quickly."""
    shutil.copytree(model_cache, tmp_path / "data" / "models")
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def import_twice(folder: Path, *options: str) -> tuple[dict[str, int], dict[str, int]]:
    runs = []
    for _ in range(2):
        result = runner.invoke(app, ["import", str(folder), "--json", *options],
                               catch_exceptions=False)
        assert result.exit_code == 0, result.output
        runs.append(json.loads(result.stdout))
    return runs[0], runs[1]


def check_imported(first: dict[str, int], again: dict[str, int], folder: Path,
                   service: Service, photos: dict[str, bytes]) -> None:
    assert (first["added"], first["skipped"], first["failed"]) == (len(PHOTOS), 0, 2)
    reasons = {Path(f["path"]).name: f["reason"] for f in first["failures"]}
    assert set(reasons) == {"broken.jpg", "notes.txt"}
    assert (again["added"], again["skipped"], again["failed"]) == (0, len(PHOTOS), 2)
    assert service.store.count() == len(PHOTOS)
    exact = service.search(photos["motorcycle_left"], limit=1)[0]
    assert exact.score == pytest.approx(1.0, abs=1e-4)  # the workers' vectors are the model's
    assert exact.filepath == str(next(folder.rglob("motorcycle_left.jpg")).resolve())
    assert service.thumbnail(exact.id).stat().st_size > 0  # workers made its thumbnail too
    assert service.search(edited_copy(photo("chelsea")), limit=1)[0].filepath.endswith(
        "chelsea.jpg")


def test_import_in_worker_processes(folder: Path, data_env: Path, make_service,
                                    photos: dict[str, bytes]) -> None:
    first, again = import_twice(folder, "--processes", "2")
    check_imported(first, again, folder, make_service(Settings(data_dir=data_env)), photos)


def test_bulk_options_refuse_move_to(folder: Path, data_env: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["import", str(folder), "--processes", "2", "--move-to",
                                 str(tmp_path / "pool")])
    assert result.exit_code == 2 and "--move-to" in result.output


@pytest.mark.slow
def test_import_on_ray(folder: Path, data_env: Path, make_service,
                       photos: dict[str, bytes]) -> None:
    pytest.importorskip("ray", reason="the optional extra bogv[ray]")
    first, again = import_twice(folder, "--ray", "--processes", "2")
    check_imported(first, again, folder, make_service(Settings(data_dir=data_env)), photos)


@pytest.mark.parametrize("options", [(), ("--processes", "2")], ids=["default", "processes"])
def test_an_imported_point_field_keeps_its_stars(tmp_path: Path, data_env: Path, make_service,
                                                 options: tuple[str, ...]) -> None:
    folder = tmp_path / "sky"
    folder.mkdir()
    data = encode(photo("hubble_deep_field"))
    (folder / "sky.jpg").write_bytes(data)
    result = runner.invoke(app, ["import", str(folder), "--json", *options],
                           catch_exceptions=False)
    assert result.exit_code == 0 and json.loads(result.stdout)["added"] == 1, result.output
    service = make_service(Settings(data_dir=data_env))
    found = service.search(data, limit=1)[0]
    expected = service.prepare(data).stars  # as an upload of it finds them
    assert expected and service.files.read(found.id, STARS) == expected
