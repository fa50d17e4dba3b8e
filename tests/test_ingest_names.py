"""File names the store cannot hold as they are never fail the other files of a batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bogv.client import Client
from bogv.ingest import import_folder
from bogv.service import Service

from .conftest import Served
from .images import PHOTOS, edited_copy, photo, write_photos


def test_odd_file_names_fail_or_pass_alone(tmp_path: Path, service: Service,
                                           photos: dict[str, bytes]) -> None:
    folder = write_photos(tmp_path / "in", photos)
    not_utf8 = os.fsencode(folder) + b"/caf\xe9.jpg"  # a Latin-1 name from an old disk
    with open(not_utf8, "wb") as f:
        f.write(edited_copy(photo("coffee")))
    deep = folder / ("d" * 250) / ("e" * 250) / "long.jpg"  # its filepath exceeds 512
    deep.parent.mkdir(parents=True)
    deep.write_bytes(edited_copy(photo("rocket")))

    summary = import_folder(service, folder)
    assert (summary.added, summary.failed) == (len(PHOTOS) + 1, 1)
    assert summary.failures == [(str(deep), summary.failures[0][1])]
    assert "filepath" in summary.failures[0][1] and "512" in summary.failures[0][1]
    hit = service.search(edited_copy(photo("coffee")), limit=1)[0]
    assert hit.filepath == f"{folder}/caf\\xe9.jpg"


def test_import_through_a_running_service_takes_odd_names(
        served: Served, tmp_path: Path) -> None:
    """``bogv import`` while ``bogv serve`` owns the store: a non-UTF-8 name does not crash
    the upload, it is stored with the same escapes as a direct import."""
    url, env = served.url, served.env
    folder = tmp_path / "in"
    folder.mkdir()
    with open(os.fsencode(folder) + b"/caf\xe9.jpg", "wb") as f:
        f.write(edited_copy(photo("coffee")))
    (folder / "rocket.jpg").write_bytes(edited_copy(photo("rocket")))
    result = subprocess.run([sys.executable, "-m", "bogv", "import", str(folder), "--json"],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["added"] == 2
    hits = Client(url).search_file(folder / "rocket.jpg", limit=2)
    assert f"{folder}/caf\\xe9.jpg" in {h.filepath for h in hits}
