"""The ``bogv`` command, in-process and against a real ``bogv serve`` subprocess."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from bogv.cli import app
from bogv.model import cpu

from .conftest import Served
from .images import PHOTOS, edited_copy, photo, write_photos

runner = CliRunner()


@pytest.fixture
def folder(tmp_path: Path, photos: dict[str, bytes]) -> Path:
    folder = write_photos(tmp_path / "photos", photos)
    (folder / "notes.txt").write_text("hello")
    return folder


@pytest.fixture
def data_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_import_search_delete_stats(folder: Path, data_env: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["import", str(folder), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["added"], summary["skipped"], summary["failed"]) == (len(PHOTOS), 0, 1)
    assert summary["failures"][0]["path"].endswith("notes.txt") and summary["seconds"] > 0
    assert "directly into" in result.stderr

    again = runner.invoke(app, ["import", str(folder)], catch_exceptions=False)
    assert f": 0 added, {len(PHOTOS)} skipped as already indexed, 1 failed (reasons above)" \
        in again.stdout
    assert re.search(r"failed .*notes\.txt: not an image", again.stderr)

    query = tmp_path / "query.jpg"
    query.write_bytes(edited_copy(photo("astronaut")))
    result = runner.invoke(app, ["search", str(query), "--limit", "2", "--json"],
                           catch_exceptions=False)
    hits = json.loads(result.stdout)
    assert len(hits) == 2 and hits[0]["filepath"] == str((folder / "astronaut.jpg").resolve())

    result = runner.invoke(app, ["delete", "--id", str(hits[0]["id"]), "--id", "1"],
                           catch_exceptions=False)
    assert result.stdout.strip() == "1"
    stats = json.loads(runner.invoke(app, ["stats", "--json"], catch_exceptions=False).stdout)
    assert stats["count"] == len(PHOTOS) - 1 and stats["store"] == "milvus-lite"
    assert stats["precision"] == "fp32" and stats["cpu"] == str(cpu.detect())


def test_search_prints_table(folder: Path, data_env: Path) -> None:
    runner.invoke(app, ["import", str(folder)], catch_exceptions=False)
    result = runner.invoke(app, ["search", str(folder / "coffee.jpg")], catch_exceptions=False,
                           env={"COLUMNS": "250"})
    assert result.exit_code == 0 and "1.0000" in result.stdout and "coffee.jpg" in result.stdout


def test_cli_goes_through_the_running_service(served: Served, folder: Path) -> None:
    url, env = served.url, served.env
    result = subprocess.run([sys.executable, "-m", "bogv", "import", str(folder), "--json"],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "through the running service" in result.stderr
    assert json.loads(result.stdout)["added"] == len(PHOTOS)
    stats = httpx.get(f"{url}/api/image/sim/stats").json()["data"]
    assert stats["count"] == len(PHOTOS)
    again = subprocess.run([sys.executable, "-m", "bogv", "import", str(folder), "--json"],
                           env=env, capture_output=True, text=True, timeout=300)
    summary = json.loads(again.stdout)  # the service says which files it already held
    assert (summary["added"], summary["skipped"], summary["failed"]) == (0, len(PHOTOS), 1)
    result = subprocess.run([sys.executable, "-m", "bogv", "search", str(folder / "rocket.jpg"),
                             "--json", "--limit", "1"], env=env, capture_output=True, text=True,
                            timeout=120)
    assert json.loads(result.stdout)[0]["filepath"] == str((folder / "rocket.jpg").resolve())


def test_errors_exit_1_with_one_line(folder: Path, data_env: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    result = subprocess.run([sys.executable, "-m", "bogv", "search", str(bad)],
                            env={**os.environ, "DATA_DIR": str(data_env)}, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1
    assert "Error: not an image" in result.stderr and "Traceback" not in result.stderr
