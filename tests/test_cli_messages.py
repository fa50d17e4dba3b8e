"""What the ``bogv`` command prints when something is wrong: one line, the right exit code,
and text shown as it is (rich markup in a message or a name is not interpreted)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bogv.cli import app

from .conftest import free_port
from .images import write_photos

runner = CliRunner()


@pytest.mark.parametrize("argv", [
    ["serve"], ["serve", "--help-settings"], ["import", "."], ["search", "pyproject.toml"],
    ["delete", "--id", "1"], ["stats"], ["reembed"], ["duplicates"],
])
def test_bad_settings_are_one_line_naming_the_variable_and_exit_2(
        argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_PORT", "abc")
    result = runner.invoke(app, argv, catch_exceptions=False)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "API_PORT" in lines[0] and "'abc'" in lines[0] and "integer" in lines[0]


def test_error_messages_are_printed_as_they_are(tmp_path: Path) -> None:
    api = f"http://127.0.0.1:{free_port()}/a[b]/c[/raw]"  # nothing listens there
    result = subprocess.run([sys.executable, "-m", "bogv", "stats", "--api", api],
                            env={**os.environ, "DATA_DIR": str(tmp_path / "data")},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert f"using the running service at {api}" in result.stderr
    assert f"Error: bogv at {api} is unreachable" in result.stderr


def test_names_in_results_are_printed_as_they_are(tmp_path: Path, photos: dict[str, bytes],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    folder = write_photos(tmp_path / "a[b]" / "c[/raw]", {"coffee": photos["coffee"]})
    assert runner.invoke(app, ["import", str(folder)], catch_exceptions=False).exit_code == 0
    result = runner.invoke(app, ["search", str(folder / "coffee.jpg")], catch_exceptions=False,
                           env={"COLUMNS": "400"})
    assert result.exit_code == 0 and "a[b]/c[/raw]/coffee.jpg" in result.stdout, result.stdout
