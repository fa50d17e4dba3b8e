"""The import's fast path stores what the plain one-image path stores: the same keypoints and
thumbnails byte for byte, the same vectors within float rounding. Speed changes must never
change a stored result."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from bogv import cli, ingest
from bogv.cli import app
from bogv.config import Settings
from bogv.ingest import import_folder, import_settings
from bogv.model import geometry
from bogv.service import KEYPOINTS, THUMBNAIL, Service, prepare

from .images import PHOTOS, edited_copy, photo, write_photos


def described_apart(small: np.ndarray, strongest: int, spread: int, pool: int) -> bytes:
    """Keypoints as bogv stored them before: found, chosen, then only the chosen described
    (a second pass over the image pyramid)."""
    orb = geometry._orb(pool * (strongest + spread))
    points = orb.detect(small, None)
    chosen = geometry._choose(points, small.shape, geometry._level_quotas(strongest),
                              geometry._level_quotas(spread), geometry.GRID, geometry._CAP)
    points, desc = orb.compute(small, [points[i] for i in chosen])
    xy = np.rint(np.asarray(cv2.KeyPoint.convert(points)) * 8)
    packed = np.zeros(len(points), geometry._POINT)
    packed["x"], packed["y"], packed["d"] = xy[:, 0], xy[:, 1], desc
    return packed.tobytes()


@pytest.mark.parametrize(("spread", "pool"), [(geometry.SPREAD, 1), (250, 4)])
def test_keypoints_are_those_of_describing_only_the_chosen_points(spread: int,
                                                                  pool: int) -> None:
    images = [photo(name) for name in PHOTOS]
    images += [Image.open(io.BytesIO(edited_copy(img))).convert("RGB") for img in images]
    for img in images:
        small = geometry.grey(img)
        found = geometry.keypoints_of(small, spread=spread, pool=pool)
        assert len(found) > 100 * 36  # a real photo keeps many points...
        # ... and the one-pass ORB gives exactly the former bytes, order included.
        assert found == described_apart(small, geometry.STRONGEST, spread, pool)


def test_import_stores_what_one_image_at_a_time_stores(
        tmp_path: Path, service: Service, photos: dict[str, bytes],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 4 files, batches of 3 over 2 workers embedding at once: each stored vector
    is the image's own one-image vector, its files those ``prepare`` makes."""
    monkeypatch.setattr(ingest, "CHUNK", 4)
    service.settings.batch_size = 3
    folder = write_photos(tmp_path / "in", photos)
    assert import_folder(service, folder, workers=2).added == len(PHOTOS)
    records = {r.filepath: r.id for r in service.store.with_filepaths(
        [str((folder / f"{name}.jpg").resolve()) for name in PHOTOS])}
    stored = dict(zip(*next(service.store.vectors()), strict=True))
    for name, data in photos.items():
        id_ = records[str((folder / f"{name}.jpg").resolve())]
        alone = prepare(data, service.settings)
        vector = service.embedder.embed_tensors(alone.tensor[None])[0]
        # Float rounding only: kernels may block a batch differently on another CPU (here
        # the two are bit-identical); another image's vector is off by more than 0.05.
        np.testing.assert_allclose(stored[id_], vector, atol=1e-5)
        assert service.files.read(id_, KEYPOINTS) == alone.keypoints
        assert service.files.read(id_, THUMBNAIL) == alone.thumbnail


def test_an_import_gives_each_worker_its_share_of_the_cores() -> None:
    cores = os.cpu_count() or 1
    assert import_settings(Settings(workers=1)).intra_op_threads == cores
    assert import_settings(Settings(workers=cores)).intra_op_threads == 1
    assert import_settings(Settings(workers=cores + 4)).intra_op_threads == 1
    assert import_settings(Settings(workers=2, intra_op_threads=3)).intra_op_threads == 3


def test_bogv_import_runs_single_threaded_inferences_in_its_workers(
        tmp_path: Path, model_cache: Path, photos: dict[str, bytes],
        monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "models").symlink_to(model_cache, target_is_directory=True)
    monkeypatch.setenv("DATA_DIR", str(data))
    monkeypatch.setenv("WORKERS", str(os.cpu_count() or 1))
    built: list[Service] = []

    def build(settings: Settings) -> Service:
        built.append(cli_build(settings))
        return built[-1]

    cli_build: Any = cli.build_service
    monkeypatch.setattr(cli, "build_service", build)
    result = CliRunner().invoke(app, ["import", str(write_photos(tmp_path / "in", photos)),
                                      "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    options = built[0].embedder.session.get_session_options()
    assert options.intra_op_num_threads == 1
