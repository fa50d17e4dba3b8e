"""``bogv duplicates``: progress on stderr, groups on stdout as a table, JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bogv import cli
from bogv.cli import app
from bogv.duplicates import Duplicates

from .images import edited_copy, photo, write_photos

runner = CliRunner()


@pytest.fixture
def imported(tmp_path: Path, photos: dict[str, bytes], monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = write_photos(tmp_path / "photos", photos)
    (folder / "coffee-small.jpg").write_bytes(edited_copy(photo("coffee")))
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("IMAGE_ALLOWED_ROOTS", str(folder))
    result = runner.invoke(app, ["import", str(folder)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return folder.resolve()


def test_duplicates_json_csv_and_table(imported: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def laid_out(*args: object, **kwargs: object) -> None:
        raise AssertionError("JSON for a pipe went through rich")

    # Rich lays out every token of what it highlights (12 s and 1.2 GB for the groups of
    # 30k images): JSON for a pipe is written as ``json.dumps`` makes it.
    monkeypatch.setattr(cli.out, "print_json", laid_out)
    result = runner.invoke(app, ["duplicates", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "7 new images checked" in result.stderr and "1 groups of copies" in result.stderr
    assert "scanning" in result.stderr and "grouping" in result.stderr  # two progress bars
    groups = json.loads(result.stdout)
    assert result.stdout == json.dumps(groups, indent=2, ensure_ascii=False) + "\n"
    assert [[m["filepath"] for m in g["members"]] for g in groups] == [
        [str(imported / "coffee.jpg"), str(imported / "coffee-small.jpg")]]
    assert groups[0]["why"] == "largest: 600x400 px" and groups[0]["members"][0]["suggested"]

    again = runner.invoke(app, ["duplicates", "--csv"], catch_exceptions=False)
    assert "0 new images checked" in again.stderr  # incremental: nothing new to check
    rows = list(csv.DictReader(io.StringIO(again.stdout)))
    assert [(r["group"], r["suggested"], Path(r["filepath"]).name) for r in rows] == [
        ("1", "True", "coffee.jpg"), ("1", "False", "coffee-small.jpg")]

    table = runner.invoke(app, ["duplicates"], catch_exceptions=False, env={"COLUMNS": "80"})
    header, *members, why = table.stdout.splitlines()
    at = header.index(" id ") + 1  # each id whole in its column, however narrow the terminal
    assert [line[at:].split()[0] for line in members] == [str(m["id"])
                                                          for m in groups[0]["members"]]
    assert "keep" in members[0] and members[1].endswith("coffee-small.jpg")
    assert why == f"group 1: keep {groups[0]['suggested']} (largest: 600x400 px)"

    nearly_same = runner.invoke(app, ["duplicates", "--json", "--min-score", "1"])
    assert json.loads(nearly_same.stdout) == []
    assert runner.invoke(app, ["duplicates", "--min-score", "0.2"]).exit_code == 2


def test_the_table_lines_up_wide_cells_and_escapes_control_characters() -> None:
    """A key in a wide script keeps the next column in line; a line break or a terminal's
    escape sequence in a file name is shown, not obeyed."""
    lines = list(cli._plain_table(("id", "key", "filepath"),
                                  [("1", "写真", "/a\nb"), ("12345", "k", "/c\x1b[31m")]))
    assert lines == ["id     key   filepath\n", "1      写真  /a\\x0ab\n",
                     "12345  k     /c\\x1b[31m\n"]


def test_delete_copies_keeps_one_image_of_each_group(imported: Path) -> None:
    """``--delete-copies`` deletes every member but the suggested image, after asking (no
    answer: nothing deleted), and the next scan finds no copies left. The first scan runs
    in two worker processes."""
    listed = runner.invoke(app, ["duplicates", "--json", "--processes", "2"],
                           catch_exceptions=False)
    members = json.loads(listed.stdout)[0]["members"]
    assert [m["suggested"] for m in members] == [True, False]

    refused = runner.invoke(app, ["duplicates", "--csv", "--delete-copies"], input="n\n")
    assert refused.exit_code == 0, refused.output
    assert "Delete 1 images: every member of the 1 groups but the image to keep?" in (
        refused.stderr)
    assert "nothing deleted" in refused.stderr
    assert runner.invoke(app, ["duplicates", "--delete-copies"], input="").exit_code == 1
    assert json.loads(runner.invoke(app, ["stats", "--json"]).stdout)["count"] == 7

    deleted = runner.invoke(app, ["duplicates", "--csv", "--delete-copies", "--yes"],
                            catch_exceptions=False)
    assert "deleted 1 images; kept 1, one of each group" in deleted.stderr
    assert "every member" not in deleted.stderr  # not asked
    assert Path(list(csv.DictReader(io.StringIO(deleted.stdout)))[1]["filepath"]).name == (
        "coffee-small.jpg")  # the groups as they were, then the delete
    assert json.loads(runner.invoke(app, ["stats", "--json"]).stdout)["count"] == 6
    after = runner.invoke(app, ["duplicates", "--json", "--delete-copies"],
                          catch_exceptions=False)
    assert json.loads(after.stdout) == [] and "nothing to delete" in after.stderr


def test_delete_copies_leaves_a_pair_dismissed_while_it_asked(
        imported: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The question may wait while a reviewer decides in the page: the pair called not
    duplicates meanwhile is not deleted, since the groups listed no longer hold."""
    made: list[Duplicates] = []
    listing = Duplicates.listing

    def listed(self: Duplicates, *args: Any) -> Any:
        made.append(self)
        return listing(self, *args)

    def answer(*args: object, **kwargs: object) -> bool:
        (group,) = made[-1].groups()
        made[-1].dismiss([m.id for m in group.members])  # as the page does meanwhile
        return True

    monkeypatch.setattr(Duplicates, "listing", listed)
    monkeypatch.setattr(cli.typer, "confirm", answer)
    result = runner.invoke(app, ["duplicates", "--delete-copies"], catch_exceptions=False)
    assert ("deleted 0 images; kept 1, one of each group; 1 left, the groups changed "
            "meanwhile") in " ".join(result.stderr.split())  # however the terminal folds it
    assert json.loads(runner.invoke(app, ["stats", "--json"]).stdout)["count"] == 7


def test_a_command_says_what_it_did_and_no_library_noise(tmp_path: Path) -> None:
    """Milvus Lite's import warned of pkg_resources and pymilvus of a missing MVCC
    timestamp, two or three times a run: lines a person cannot act on, around the one that
    matters. (A process of its own: this one has imported Milvus Lite already.)"""
    run = subprocess.run([sys.executable, "-m", "bogv", "duplicates", "--csv"],
                         env={**os.environ, "DATA_DIR": str(tmp_path / "data")},
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "0 new images checked" in run.stderr
    assert "pkg_resources" not in run.stderr and "mvccTs" not in run.stderr
