"""Keys and filepaths on a Milvus server, which counts a VARCHAR's length in UTF-8 bytes.

The documented limits count characters (64 for a key, 512 for a filepath); a Chinese
character is 3 bytes. Milvus Lite does not enforce the byte length, so only a server shows it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pymilvus import DataType, MilvusClient

from bogv import ingest
from bogv.api.app import create_app
from bogv.config import Settings
from bogv.errors import InvalidParameter
from bogv.fields import MAX_FILEPATH, MAX_KEY
from bogv.indexing import METRIC
from bogv.model.descriptor import DIM
from bogv.model.embedder import Embedder
from bogv.service import Service

from .images import write_photos

HAN = "图"  # 3 bytes in UTF-8


def _old_collection(settings: Settings, model_id: str) -> None:
    """A collection as bogv made them before fields were sized for UTF-8: key 64 and
    filepath 512 *bytes*."""
    client = MilvusClient(uri=settings.milvus_uri)
    schema = client.create_schema(auto_id=False, description=model_id)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("key", DataType.VARCHAR, max_length=64)
    schema.add_field("filepath", DataType.VARCHAR, max_length=512)
    schema.add_field("sha256", DataType.VARCHAR, max_length=64)
    schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=DIM)
    index = client.prepare_index_params()
    index.add_index("embedding", index_type="FLAT", metric_type=METRIC)
    client.create_collection(settings.collection, schema=schema, index_params=index,
                             consistency_level="Strong")
    client.close()


def test_any_key_and_filepath_within_the_limits_fits_a_new_server_collection(
        server_settings: Settings, make_service: Callable[..., Service],
        photos: dict[str, bytes]) -> None:
    service = make_service(server_settings)
    key, path = HAN * MAX_KEY, "图片/" + HAN * (MAX_FILEPATH - 3)
    added = service.add(photos["camera"], key=key, filepath=path)
    record = service.store.query(f"id == {added.id}")[0]
    assert (record.key, record.filepath) == (key, path)


def test_over_long_input_is_422_naming_the_field_never_503(
        server_settings: Settings, make_service: Callable[..., Service],
        photos: dict[str, bytes]) -> None:
    with TestClient(create_app(service=make_service(server_settings)),
                    raise_server_exceptions=False) as client:
        for form, field in (({"key": HAN * (MAX_KEY + 1)}, "key"),
                            ({"imgPath": HAN * (MAX_FILEPATH + 1)}, "imgPath")):
            resp = client.post("/api/image/sim/add/file", data=form,
                               files={"file": ("a.jpg", photos["camera"], "image/jpeg")})
            assert resp.status_code == resp.json()["code"] == 422, resp.json()
            assert field in resp.json()["msg"]


def test_an_old_collection_refuses_values_over_its_bytes_as_input(
        server_settings: Settings, make_service: Callable[..., Service],
        embedder: Embedder, photos: dict[str, bytes]) -> None:
    _old_collection(server_settings, embedder.model_id)
    service = make_service(server_settings)
    service.add(photos["camera"], key="k" * MAX_KEY)  # ASCII: as before
    with pytest.raises(InvalidParameter) as caught:
        service.add(photos["rocket"], key=HAN * 30)  # 30 characters, 90 bytes
    assert caught.value.field == "key" and "64 bytes" in caught.value.message
    with TestClient(create_app(service=service), raise_server_exceptions=False) as client:
        resp = client.post("/api/image/sim/add/file", data={"imgPath": "图片/" + HAN * 200},
                           files={"file": ("a.jpg", photos["coffee"], "image/jpeg")})
    assert resp.status_code == 422 and "imgPath" in resp.json()["msg"]
    assert service.store.count() == 1


def test_import_into_an_old_collection_fails_only_the_file_its_path_does_not_fit(
        server_settings: Settings, make_service: Callable[..., Service],
        embedder: Embedder, tmp_path: Path, photos: dict[str, bytes]) -> None:
    _old_collection(server_settings, embedder.model_id)
    service = make_service(server_settings)
    folder = tmp_path / "in"
    write_photos(folder, {n: photos[n] for n in ("camera", "rocket", "coffee")})
    deep = folder / (HAN * 80) / (HAN * 80)  # 160 characters, 480 bytes (+ the folder)
    deep.mkdir(parents=True)
    (deep / "chelsea.png").write_bytes(photos["chelsea"])
    summary = ingest.import_folder(service, folder)
    assert (summary.added, summary.failed) == (3, 1), summary.failures
    assert "chelsea.png" in summary.failures[0][0] and "bytes" in summary.failures[0][1]
