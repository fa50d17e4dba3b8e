"""``bogv duplicates``: scan the collection for copies and print the groups.

The scan shows a progress bar with its rate and time left on stderr; the groups go to
stdout as a table, JSON or CSV (one row per member, for a spreadsheet or a script that
deletes what is not suggested). It opens the store itself: with Milvus Lite that needs the
data file to itself, while on a Milvus server it runs beside the API replicas and saves
what it finds where they read it.
"""

from __future__ import annotations

import csv
import json
import sys
from typing import Annotated

import cv2
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from bogv.config import Settings
from bogv.duplicates import Duplicates, Group
from bogv.errors import BogvError
from bogv.service import build_service
from bogv.store import lite_file_in_use

__all__ = ["duplicates"]

_FIELDS = ("group", "suggested", "id", "key", "filepath", "score", "match", "width", "height",
           "why")


def _rows(groups: list[Group]) -> list[dict[str, object]]:
    return [{"group": n, **m.__dict__, "score": round(m.score, 4), "why": g.why}
            for n, g in enumerate(groups, 1) for m in g.members]


def duplicates(min_score: Annotated[float, typer.Option(
                   "--min-score", min=0.5, max=1.0, help="Leave out members scoring less "
                   "against their group's suggested image (0.5: every verified copy).")] = 0.5,
               as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
               as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV, one row per "
                                                    "member.")] = False) -> None:
    """Find the copies inside the collection (images added since the last scan are checked)
    and print each group, the image to keep first."""
    settings = Settings()
    if settings.is_embedded and lite_file_in_use(settings.store_uri):
        raise BogvError(f"a running service owns {settings.store_uri}: use its page (the "
                        "Duplicates tab) or POST /api/image/sim/duplicates/scan, or stop it")
    err, out = Console(stderr=True), Console()
    # The scan checks images in parallel itself; OpenCV's own threads only add
    # synchronisation to its 250-point matches (knnMatch 2.3x slower with 2 of them on a
    # busy 2-core machine). The whole process is this scan, so the setting is its own.
    cv2.setNumThreads(1)
    service = build_service(settings)
    try:
        dups = Duplicates(service)
        with Progress(TextColumn("scanning"), BarColumn(), MofNCompleteColumn(),
                      TaskProgressColumn(), TextColumn("[cyan]{task.fields[rate]}"),
                      TimeRemainingColumn(), console=err) as progress:
            task = progress.add_task("scan", total=None, rate="")

            def tick(done: int, total: int) -> None:
                speed = progress.tasks[task].speed
                progress.update(task, completed=done, total=total,
                                rate=f"{speed:.0f} img/s" if speed else "")

            report = dups.scan(tick)
        groups = dups.groups(min_score)
    finally:
        service.close()
    err.print(f"{report.scanned} new images checked in {report.seconds:.1f} s; "
              f"{len(groups)} groups of copies")
    rows = _rows(groups)
    if as_json:
        out.print_json(json.dumps([{"suggested": g.suggested, "why": g.why,
                                    "members": [m.__dict__ for m in g.members]}
                                   for g in groups]))
    elif as_csv:
        writer = csv.DictWriter(sys.stdout, _FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    else:
        table = Table("group", "", "score", "match", "size", "id", "key", "filepath")
        for column in table.columns:
            column.overflow = "fold"
        for row in rows:
            table.add_row(str(row["group"]), "keep" if row["suggested"] else "",
                          f"{row['score']:.3f}", str(row["match"]),
                          f"{row['width']}x{row['height']}", str(row["id"]), str(row["key"]),
                          str(row["filepath"]))
        out.print(table)
        for n, g in enumerate(groups, 1):
            out.print(f"group {n}: keep {g.suggested} ({g.why})", highlight=False)
