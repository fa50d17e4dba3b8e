"""``bogv reembed``: a new model's collection is built beside the old one, then switched to.

The "old model" collection holds real descriptors of real photos under another model stamp,
exactly what a collection written by an earlier bogv version looks like to this one.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bogv.catalog import physical_name
from bogv.cli import app
from bogv.config import Settings
from bogv.errors import ModelMismatch
from bogv.indexing import index_spec
from bogv.model.descriptor import DIM
from bogv.model.embedder import Embedder
from bogv.reembed import reembed
from bogv.service import STARS, Service
from bogv.sidecar import Sidecar
from bogv.store import Store

from .images import PHOTOS, edited_copy, encode, photo

OLD_MODEL = "efficientnet-lite0:000000000000:legacy-v0"


def old_collection(settings: Settings, embedder: Embedder, folder: Path,
                   photos: dict[str, bytes]) -> tuple[Store, dict[str, int]]:
    """Records as an older bogv stored them: files in ``folder``, another model stamp."""
    folder.mkdir(parents=True, exist_ok=True)
    store = Store(settings.store_uri, model_id=OLD_MODEL, dim=DIM,
                  collection=settings.collection, index=index_spec(settings))
    service = Service(settings, embedder, store)
    ids = {}
    for name, data in photos.items():
        (folder / f"{name}.jpg").write_bytes(data)
        ids[name] = service.add(data, key=name, filepath=str(folder / f"{name}.jpg")).id
    return store, ids


def check_switched(settings: Settings, make_service: Callable[..., Service],
                   ids: dict[str, int], gone: set[str]) -> None:
    service = make_service(settings)  # the new model opens the name without ModelMismatch
    assert service.store.count() == len(PHOTOS) - len(gone)
    for name in set(PHOTOS) - gone:  # every record keeps its id, key and filepath
        hit = service.search(edited_copy(photo(name)), limit=1)[0]
        assert (hit.id, hit.key) == (ids[name], name) and hit.filepath.endswith(f"{name}.jpg")


def test_reembed_switches_while_the_old_collection_keeps_serving(
        settings: Settings, tmp_path: Path, embedder: Embedder,
        make_service: Callable[..., Service], photos: dict[str, bytes]) -> None:
    old, ids = old_collection(settings, embedder, tmp_path / "files", photos)
    with pytest.raises(ModelMismatch, match="bogv reembed"):
        make_service(settings)
    old_service = Service(settings, embedder, old)
    query = edited_copy(photo("rocket"))
    during: list[int] = []

    def meanwhile(_: int) -> None:  # runs between batches of the migration
        if not during:
            during.append(old_service.search(query, limit=1)[0].id)
            old_service.delete_keys(["coffee"])  # a delete during the migration

    report = reembed(settings.model_copy(update={"batch_size": 2}), embedder,
                     on_copied=meanwhile)
    assert during == [ids["rocket"]]  # search kept working on the old collection
    assert report.switched and report.removed == 1 and not report.missing
    assert report.source == settings.collection != report.target
    assert old_service.search(query, limit=1)[0].id == ids["rocket"]  # the old one still serves
    check_switched(settings, make_service, ids, gone={"coffee"})
    assert reembed(settings, embedder).copied == 0  # nothing left to do
    old.close()


def test_reembed_finds_moved_images_and_waits_for_missing_ones(
        settings: Settings, tmp_path: Path, embedder: Embedder,
        make_service: Callable[..., Service], photos: dict[str, bytes],
        monkeypatch: pytest.MonkeyPatch) -> None:
    old, ids = old_collection(settings, embedder, tmp_path / "files", photos)
    old.close()
    moved = tmp_path / "archive"
    moved.mkdir()
    (tmp_path / "files" / "camera.jpg").rename(moved / "renamed.jpg")  # found by content
    (tmp_path / "files" / "chelsea.jpg").unlink()  # nowhere any more
    for name, value in (("DATA_DIR", str(settings.data_dir)), ("MILVUS_URI", settings.store_uri),
                        ("COLLECTION", settings.collection), ("INTRA_OP_THREADS", "1")):
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    result = runner.invoke(app, ["reembed", "--images", str(moved), "--json"])
    assert result.exit_code == 1
    first = json.loads(result.stdout)
    assert not first["switched"] and first["missing"] == [
        [ids["chelsea"], str(tmp_path / "files" / "chelsea.jpg")]]

    result = runner.invoke(app, ["reembed", "--allow-missing", "--json"],
                           catch_exceptions=False)
    again = json.loads(result.stdout)
    assert result.exit_code == 0 and again["switched"] and again["copied"] == 0
    check_switched(settings, make_service, ids, gone={"chelsea"})


def test_reembed_on_a_server_moves_the_alias(server_settings: Settings, tmp_path: Path,
                                             embedder: Embedder,
                                             make_service: Callable[..., Service],
                                             photos: dict[str, bytes]) -> None:
    old, ids = old_collection(server_settings, embedder, tmp_path / "files", photos)
    old_service = Service(server_settings, embedder, old)  # a replica of the old version
    query = edited_copy(photo("astronaut"))
    stop, answers = threading.Event(), []

    def keep_searching() -> None:
        while not stop.is_set():
            answers.append(old_service.search(query, limit=1)[0].id)

    searcher = threading.Thread(target=keep_searching)
    searcher.start()
    try:
        report = reembed(server_settings, embedder)
    finally:
        stop.set()
        searcher.join()
    assert report.switched and report.copied == len(PHOTOS)
    assert answers and set(answers) == {ids["astronaut"]}  # never an error, never wrong
    check_switched(server_settings, make_service, ids, gone=set())
    old.close()


@pytest.mark.slow  # 11 s: the upgrade from a bogv without aliases, once per server
def test_reembed_on_a_server_moves_a_plain_collection_aside(
        server_settings: Settings, embedder: Embedder, make_service: Callable[..., Service],
        tmp_path: Path, photos: dict[str, bytes]) -> None:
    name = server_settings.collection
    plain = Store(server_settings.milvus_uri, model_id=OLD_MODEL, dim=DIM, collection=name,
                  alias=False)  # what a bogv without aliases made: the name is a collection
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "rocket.jpg").write_bytes(photos["rocket"])
    old_id = Service(server_settings, embedder, plain).add(
        photos["rocket"], key="rocket", filepath=str(folder / "rocket.jpg")).id
    plain.close()
    assert reembed(server_settings, embedder).switched
    service = make_service(server_settings)
    assert service.search(photos["rocket"], limit=1)[0].id == old_id
    assert service.store.name != name
    aside = physical_name(name, OLD_MODEL)
    assert service.store.client.describe_collection(aside)["description"] == OLD_MODEL


def test_reembed_gives_a_point_field_its_stars(settings: Settings, tmp_path: Path,
                                               embedder: Embedder) -> None:
    old, ids = old_collection(settings, embedder, tmp_path / "files",
                              {"sky": encode(photo("hubble_deep_field"))})
    files = Sidecar(settings.record_path)
    files.path(ids["sky"], STARS).unlink()  # as a bogv before point fields left it
    assert reembed(settings, embedder).switched
    assert files.read(ids["sky"], STARS)
    old.close()
