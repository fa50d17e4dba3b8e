"""The API token and the stored Milvus secrets never show in logs, messages or settings
listings, and the token is compared in constant time."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from bogv.api import shared
from bogv.api.app import create_app
from bogv.cli import app as cli
from bogv.config import Settings
from bogv.service import Service

TOKEN = "tok-9f8e7d6c5b4a"
PASSWORD = "pw-0a1b2c3d4e5f"
MILVUS_TOKEN = "mt-77aa88bb99cc"
SECRETS = (TOKEN, PASSWORD, MILVUS_TOKEN)


def leaked(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def test_no_secret_in_logs_or_responses(tmp_path: Path, make_service: Callable[..., Service],
                                        photos: dict[str, bytes],
                                        caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(data_dir=tmp_path / "d", token=TOKEN, milvus_user="root",
                        milvus_password=PASSWORD, milvus_host_token=MILVUS_TOKEN,
                        image_allowed_roots=str(tmp_path), image_inc_path=tmp_path / "inc")
    caplog.set_level(logging.DEBUG)
    bodies = []
    with TestClient(create_app(service=make_service(settings)),
                    raise_server_exceptions=False) as client:
        api = "/api/image/sim"
        for headers in ({}, {"token": TOKEN[:-1]}, {"token": TOKEN + "x"},
                        {"Authorization": f"Bearer {PASSWORD}"}, {"token": TOKEN}):
            bodies.append(client.post(f"{api}/add/file", headers=headers,
                                      files={"file": ("c.jpg", photos["coffee"])}).text)
            bodies.append(client.post(f"{api}/add/url", headers=headers,
                                      json={"url": f"http://root:{PASSWORD}@127.0.0.1:9/"}).text)
            bodies.append(client.post(f"{api}/search/path", headers=headers,
                                      json={"path": str(tmp_path / "none.jpg")}).text)
            bodies.append(client.get(f"{api}/stats", headers=headers).text)
    assert '"code":401' in bodies[0] and '"code":200' in bodies[-1]
    assert not leaked("\n".join(bodies))
    assert not leaked(caplog.text)
    assert "IMAGE_INC_PATH" in caplog.text or "not a folder" in caplog.text  # logs were caught


def test_settings_listing_and_repr_redact_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (("TOKEN", TOKEN), ("MILVUS_PASSWORD", PASSWORD),
                        ("MILVUS_HOST_TOKEN", MILVUS_TOKEN), ("MILVUS_USER", "root")):
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.token.get_secret_value() == TOKEN  # the values are there ...
    assert not leaked(repr(settings)) and not leaked(str(settings.describe()))  # ... unseen
    result = CliRunner().invoke(cli, ["serve", "--help-settings"], env={"COLUMNS": "300"})
    assert result.exit_code == 0 and "MILVUS_PASSWORD" in result.stdout
    assert not leaked(result.stdout)


def test_token_is_compared_in_constant_time(tmp_path: Path,
                                            make_service: Callable[..., Service],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Every check goes through ``hmac.compare_digest``, whose time does not depend on where
    the first wrong character is."""
    calls: list[tuple[bytes, bytes]] = []
    compare = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return compare(a, b)

    monkeypatch.setattr(shared.hmac, "compare_digest", spy)
    settings = Settings(data_dir=tmp_path / "d", token=TOKEN)
    with TestClient(create_app(service=make_service(settings))) as client:
        for given in ("", "x", TOKEN[:4], TOKEN):
            client.get("/api/image/sim/stats", headers={"token": given})
    assert [a for a, _ in calls] == [b"", b"x", TOKEN[:4].encode(), TOKEN.encode()]
    assert all(b == TOKEN.encode() for _, b in calls)
