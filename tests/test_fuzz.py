"""Schemathesis fuzzes every operation of the app's own OpenAPI schema, with valid and invalid
data: no response >= 500, and every response (status, content type, body) as documented.

A short run (25 examples per operation and mode) is in the default suite; ``-m slow`` runs
400. URLs are resolved without DNS and every host is refused, so nothing leaves the machine.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from bogv.api.app import create_app
from bogv.config import Settings
from bogv.model.descriptor import DIM
from bogv.model.embedder import Embedder
from bogv.service import Service
from bogv.store import Store

from .remote import offline_resolve

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, negative_data_rejection]
STATUSES: Counter[int] = Counter()
FUZZ_CONFIG = SchemathesisConfig.from_dict({"checks": {"negative_data_rejection": {
    # 413 is a rejection too: a body over the cap is refused before it is parsed
    "expected-statuses": [400, 401, 403, 404, 413, 415, 422]}}})


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder,
               photos: dict[str, bytes]) -> Iterator[schemathesis.BaseSchema]:
    tmp = tmp_path_factory.mktemp("fuzz")
    (tmp / "allowed").mkdir()
    (tmp / "allowed" / "coffee.jpg").write_bytes(photos["coffee"])
    config = Settings(data_dir=tmp / "data", token="", image_allowed_roots=str(tmp / "allowed"),
                      max_upload_bytes=1_000_000)
    store = Store(config.store_uri, model_id=embedder.model_id, dim=DIM)
    service = Service(config, embedder, store, resolve=offline_resolve)
    service.add(photos["chelsea"], "cat", "cat.jpg")
    app = create_app(service=service)
    with TestClient(app):  # the lifespan runs once; schemathesis then calls the app in-process
        yield schemathesis.openapi.from_asgi("/openapi.json", app, config=FUZZ_CONFIG)
    store.close()
    print(f"\nfuzz responses by status: {dict(sorted(STATUSES.items()))}")


def operations() -> list[tuple[str, str]]:
    """(operation, generation mode) for every documented operation, read from the schema of
    an app that is never started; operations without input get no invalid-data run."""
    spec = create_app(Settings(data_dir=Path("unused"))).openapi()
    return [(f"{method.upper()} {path}", mode) for path, methods in spec["paths"].items()
            for method, operation in methods.items() for mode in ("positive", "negative")
            if mode == "positive" or "requestBody" in operation]


def fuzz(schema: schemathesis.BaseSchema, label: str, mode: str, examples: int) -> None:
    operation = next(result.ok() for result in schema.get_all_operations()
                     if result.ok().label == label)

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=GenerationMode(mode)))
    def run(case: schemathesis.Case) -> None:
        response = case.call()
        STATUSES[response.status_code] += 1
        case.validate_response(response, checks=CHECKS)

    run()


@pytest.mark.parametrize(("label", "mode"), operations())
def test_api_fuzz(api_schema: schemathesis.BaseSchema, label: str, mode: str) -> None:
    fuzz(api_schema, label, mode, examples=25)


@pytest.mark.slow
@pytest.mark.parametrize(("label", "mode"), operations())
def test_api_fuzz_long(api_schema: schemathesis.BaseSchema, label: str, mode: str) -> None:
    fuzz(api_schema, label, mode, examples=400)


def test_schema_documents_bodies_and_errors(tmp_path: Path) -> None:
    """The schema the fuzzer reads describes the real inputs and the error envelope."""
    spec = create_app(Settings(data_dir=tmp_path)).openapi()
    schemas = spec["components"]["schemas"]
    assert schemas["AddUrl"]["properties"]["key"]["anyOf"][0]["maxLength"] == 64
    assert {s.get("type") for s in schemas["DeleteIds"]["properties"]["id"]["anyOf"]} == {
        "string", "integer", "array"}
    add_file = spec["paths"]["/api/image/sim/add/file"]["post"]
    assert {"400", "401", "413", "415", "422", "503"} <= set(add_file["responses"])
    error = add_file["responses"]["413"]["content"]["application/json"]["schema"]["$ref"]
    assert error.endswith("/ErrorOut")
    assert set(schemas["ErrorOut"]["properties"]) == {"msg", "code", "data"}
