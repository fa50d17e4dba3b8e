"""File names the store cannot hold as they are never fail the other files of a batch."""

from __future__ import annotations

import os
from pathlib import Path

from bogv.ingest import import_folder
from bogv.service import Service

from .images import PHOTOS, edited_copy, photo


def test_odd_file_names_fail_or_pass_alone(tmp_path: Path, service: Service,
                                           photos: dict[str, bytes]) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for name, data in photos.items():
        (folder / f"{name}.jpg").write_bytes(data)
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
