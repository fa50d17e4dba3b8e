"""The ``bogv`` command: serve, import, search, delete, stats, duplicates.

Commands call the same service as the API. Milvus Lite lets one process own a data file, so
when a running service holds it, import/search/delete/stats go through that service's HTTP
API instead (and say so). Results go to stdout, progress and messages to stderr; a
``BogvError`` ends the command with one red line and exit status 1.
"""

from __future__ import annotations

import csv
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Protocol

import cv2
import typer
from pydantic import ValidationError
from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from bogv.bulk import bulk_import
from bogv.client import Client
from bogv.config import Settings
from bogv.duplicates import Duplicates, Group
from bogv.errors import BogvError
from bogv.ingest import Outcome, Summary, find_files, import_folder, import_settings, stored_name
from bogv.results import Hit
from bogv.service import Service, build_service
from bogv.store import lite_file_in_use

__all__ = ["app", "main"]

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="bogv: reverse image search service.")
err = Console(stderr=True)
out = Console()


def _print_json(data: object) -> None:
    """``data`` as JSON on stdout: highlighted for a person at a terminal, plain for a
    script. Rich lays out every token, which took 12 s and a 1.2 GB peak for the 1,238
    groups of 30k images (``bogv duplicates --json``); written as is, a blink."""
    if out.is_terminal:
        out.print_json(json.dumps(data))
    else:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


ApiOption = Annotated[str | None, typer.Option(
    "--api", help="URL of a running bogv to use instead of opening the store "
    "(default: http://127.0.0.1:API_PORT when a service owns the Milvus Lite file).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


class _Backend(Protocol):
    def search_file(self, path: Path, limit: int, min_score: float = 0.0) -> list[Hit]: ...
    def delete_ids(self, ids: list[int]) -> int: ...
    def delete_keys(self, keys: list[str]) -> int: ...
    def stats(self) -> dict[str, Any]: ...


class _Local:
    """The service itself, behind the same methods as the HTTP client."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def search_file(self, path: Path, limit: int, min_score: float = 0.0) -> list[Hit]:
        return self.service.search(path.read_bytes(), limit, min_score)

    def delete_ids(self, ids: list[int]) -> int:
        return self.service.delete_ids(ids)

    def delete_keys(self, keys: list[str]) -> int:
        return self.service.delete_keys(keys)

    def stats(self) -> dict[str, Any]:
        return self.service.stats()


def _settings() -> Settings:
    """The settings from the environment. An invalid one ends the command like a usage
    error (click's exit status 2) with one line naming the variable and what it expects,
    not pydantic's traceback."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])).upper()}={e['input']!r}: {e['msg']}"
            for e in exc.errors())
        _error(f"invalid setting {problems}")
        raise typer.Exit(2) from None


def _error(message: str) -> None:
    """One red line on stderr; the message is shown as it is, never read as markup."""
    err.print(f"[red]Error: {escape(message)}[/]", highlight=False, soft_wrap=True)


def _remote_url(settings: Settings, api: str | None) -> str | None:
    if api:
        return api
    if settings.is_embedded and lite_file_in_use(settings.store_uri):
        return f"http://127.0.0.1:{settings.api_port}"
    return None


@contextmanager
def _backend(settings: Settings, api: str | None) -> Iterator[_Local | Client]:
    url = _remote_url(settings, api)
    if url:
        err.print(f"[dim]using the running service at {escape(url)}[/]", soft_wrap=True)
        client = Client(url, settings.token.get_secret_value())
        try:
            yield client
        finally:
            client.close()
    else:
        service = build_service(settings)
        try:
            yield _Local(service)
        finally:
            service.close()


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TaskProgressColumn(), TextColumn("[cyan]{task.fields[rate]}"),
                    TimeRemainingColumn(), console=err)


@app.command()
def serve(host: Annotated[str | None, typer.Option(help="Bind address (API_HOST).")] = None,
          port: Annotated[int | None, typer.Option(help="Port (API_PORT).")] = None,
          help_settings: Annotated[bool, typer.Option(
              "--help-settings", help="List every setting with its value and exit.")] = False,
          ) -> None:
    """Run the HTTP API (embedded Milvus Lite unless MILVUS_URI/MILVUS_HOST is set)."""
    settings = _settings()
    if help_settings:
        table = Table("variable", "value", "meaning")
        for row in settings.describe():
            table.add_row(*map(Text, row))
        out.print(table)
        return
    import uvicorn

    from bogv.api.app import create_app
    from bogv.logs import configure

    configure(settings.log_level, settings.log_format)
    # bogv logs each request itself (bogv.access), in the configured format.
    uvicorn.run(create_app(settings), host=host or settings.api_host,
                port=port or settings.api_port, log_level=settings.log_level.lower(),
                log_config=None, access_log=False)


@app.command("import")
def import_(folder: Annotated[Path, typer.Argument(exists=True, file_okay=False)],
            move_to: Annotated[Path | None, typer.Option(
                "--move-to", help="Move each indexed file here (direct import only).")] = None,
            processes: Annotated[int, typer.Option(
                "--processes", min=0, help="Decode and embed in this many worker processes "
                "(or Ray workers with --ray); 0: threads in this process.")] = 0,
            use_ray: Annotated[bool, typer.Option(
                "--ray", help="Run the pipeline on Ray (RAY_ADDRESS, else a local Ray); "
                "needs bogv[ray].")] = False,
            api: ApiOption = None, as_json: JsonOption = False) -> None:
    """Index every image below FOLDER (key = MD5 of the file, filepath = its path)."""
    settings = _settings()
    bulk = use_ray or processes > 0
    if bulk and move_to is not None:
        raise typer.BadParameter("--move-to works with the default import only")
    logging.getLogger("bogv.ingest").setLevel(logging.ERROR)  # the summary lists failures
    files = find_files(folder)
    url = _remote_url(settings, api)
    summary = Summary()
    started = time.monotonic()
    with _progress() as progress:
        task = progress.add_task("importing", total=len(files), rate="")

        def tick(_: Outcome) -> None:
            speed = progress.tasks[task].speed
            progress.update(task, advance=1, rate=f"{speed:.1f} img/s" if speed else "")

        if url and bulk:
            raise BogvError(f"a running service at {url} owns the store; --processes and "
                            "--ray write to the store directly: stop it, or use a Milvus server")
        if url:
            err.print(f"importing through the running service at {escape(url)} "
                      "(it owns the data file)", soft_wrap=True)

            def count(outcome: Outcome) -> None:
                summary.count(outcome)
                tick(outcome)

            _import_http(Client(url, settings.token.get_secret_value()), files, count)
        else:
            err.print(f"importing directly into {escape(settings.store_uri)}", soft_wrap=True)
            service = build_service(import_settings(settings))
            try:
                if bulk:
                    summary = bulk_import(service, files, executor="ray" if use_ray
                                          else "processes", workers=processes or 2,
                                          on_outcome=tick)
                else:
                    summary = import_folder(service, folder, move_to=move_to,
                                            on_outcome=tick, files=files)
            finally:
                service.close()
    _print_summary(summary, time.monotonic() - started, as_json)


def _import_http(client: Client, files: list[Path],
                 count: Callable[[Outcome], None]) -> None:
    def send(path: Path) -> Outcome:
        try:
            created = client.add_file(path, img_path=stored_name(path.resolve()))
        except BogvError as exc:
            return Outcome(path, "failed", exc.message)
        return Outcome(path, "added") if created else Outcome(path, "skipped", "already indexed")

    try:
        with ThreadPoolExecutor(4) as pool:
            for outcome in pool.map(send, files):
                count(outcome)
    finally:
        client.close()


def _print_summary(summary: Summary, seconds: float, as_json: bool) -> None:
    """Counts on stdout (the result); each failure with its reason on stderr."""
    if as_json:
        _print_json({"added": summary.added, "skipped": summary.skipped,
                     "failed": summary.failed, "seconds": round(seconds, 2),
                     "failures": [{"path": p, "reason": r} for p, r in summary.failures]})
        return
    for path, reason in summary.failures:
        err.print(f"[yellow]failed[/] {escape(path)}: {escape(reason)}", highlight=False,
                  soft_wrap=True)
    total = summary.added + summary.skipped + summary.failed
    rate = f", {summary.added / seconds:.1f} added/s" if summary.added and seconds else ""
    out.print(f"{total} files in {seconds:.1f} s{rate}: {summary.added} added, "
              f"{summary.skipped} skipped as already indexed, {summary.failed} failed"
              + (" (reasons above)" if summary.failed else ""), highlight=False, soft_wrap=True)


@app.command()
def reembed(images: Annotated[list[Path] | None, typer.Option(
                "--images", exists=True, file_okay=False,
                help="Folder holding the original images (found by content); repeatable.")
            ] = None,
            source: Annotated[str | None, typer.Option(
                "--from", help="Collection to copy from (default: what COLLECTION means now; "
                "name the old one to copy writes that reached it after a switch).")] = None,
            allow_missing: Annotated[bool, typer.Option(
                "--allow-missing", help="Switch even if some images were not found (their "
                "records are left behind).")] = False,
            as_json: JsonOption = False) -> None:
    """Re-embed COLLECTION with this version's model into a new collection, then switch."""
    from bogv.model.embedder import Embedder
    from bogv.reembed import reembed as run

    settings = _settings()
    if settings.is_embedded and lite_file_in_use(settings.store_uri):
        raise BogvError(f"a running service owns {settings.store_uri}; Milvus Lite has one "
                        "owner, so stop it first (on a Milvus server reembed runs alongside)")
    embedder = Embedder(settings.model_cache, threads=settings.intra_op_threads,
                        precision=settings.precision)
    with _progress() as progress:
        task = progress.add_task("re-embedding", total=None, rate="")
        report = run(settings, embedder, images=images or [], source=source,
                     allow_missing=allow_missing,
                     on_copied=lambda n: progress.update(task, advance=n))
    if as_json:
        _print_json(report.__dict__)
    else:
        for record_id, filepath in report.missing:
            err.print(f"[yellow]image not found[/] id {record_id}: {escape(filepath)}",
                      highlight=False, soft_wrap=True)
        out.print(Text(f"{report.source} -> {report.target}: copied {report.copied}, removed "
                       f"{report.removed}, missing {len(report.missing)}, "
                       f"{'switched' if report.switched else 'not switched'}"))
    if report.missing and not report.switched:
        raise BogvError(f"{len(report.missing)} images not found; not switched. Give the "
                        "folders that hold them with --images, or --allow-missing")


@app.command()
def search(image: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
           limit: Annotated[int, typer.Option(help="Number of hits.")] = 10,
           min_score: Annotated[float, typer.Option(help="Minimum score 0..1.")] = 0.0,
           api: ApiOption = None, as_json: JsonOption = False) -> None:
    """Print the stored images most similar to IMAGE, best first."""
    with _backend(_settings(), api) as backend:
        hits = backend.search_file(image, limit, min_score)
    if as_json:
        _print_json([h.__dict__ for h in hits])
        return
    table = Table("score", "match", "id", "key", "filepath")
    for column in table.columns:
        column.overflow = "fold"
    for h in hits:
        table.add_row(f"{h.score:.4f}", h.match, str(h.id), Text(h.key), Text(h.filepath))
    out.print(table)


@app.command()
def delete(ids: Annotated[list[int] | None, typer.Option("--id", help="Record id.")] = None,
           keys: Annotated[list[str] | None, typer.Option("--key", help="Key.")] = None,
           api: ApiOption = None) -> None:
    """Delete records by --id and/or --key (repeatable); prints how many were deleted."""
    if not ids and not keys:
        raise typer.BadParameter("give --id or --key")
    with _backend(_settings(), api) as backend:
        n = (backend.delete_ids(ids) if ids else 0) + (backend.delete_keys(keys) if keys else 0)
    out.print(n)


@app.command()
def stats(api: ApiOption = None, as_json: JsonOption = False) -> None:
    """Record count, model and store in use."""
    with _backend(_settings(), api) as backend:
        data = backend.stats()
    if as_json:
        _print_json(data)
    else:
        for k, v in data.items():
            out.print(Text(f"{k}: {v}"))


_DUPLICATE_FIELDS = ("group", "suggested", "id", "key", "filepath", "score", "match", "width",
                     "height", "why")


def _member_rows(groups: list[Group]) -> list[dict[str, object]]:
    return [{"group": n, **m.__dict__, "score": round(m.score, 4), "why": g.why}
            for n, g in enumerate(groups, 1) for m in g.members]


@app.command()
def duplicates(min_score: Annotated[float, typer.Option(
                   "--min-score", min=0.5, max=1.0, help="Leave out members scoring less "
                   "against their group's suggested image (0.5: every verified copy).")] = 0.5,
               as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
               as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV, one row per "
                                                    "member.")] = False,
               delete_copies: Annotated[bool, typer.Option(
                   "--delete-copies", help="Then delete every member but its group's suggested "
                   "image (what the page's keep does), after asking.")] = False,
               yes: Annotated[bool, typer.Option(
                   "--yes", help="Delete without asking (--delete-copies).")] = False,
               processes: Annotated[int, typer.Option(
                   "--processes", min=0, help="Check images and anchor the groups in this "
                   "many worker processes, one per core (each holds its own indexes: ~1 GB at "
                   "100k images); 0: two threads in this process.")] = 0) -> None:
    """Find the copies inside the collection (images added since the last scan are checked)
    and print each group, the image to keep first.

    It opens the store itself: with Milvus Lite that needs the data file to itself, while on
    a Milvus server it runs beside the API replicas and saves what it finds where they read
    it. CSV has one row per member, for a spreadsheet or a script that deletes what is not
    suggested; --delete-copies deletes those itself (no one clicks "keep" in 4,000 groups),
    --min-score narrowing the groups first."""
    settings = _settings()
    if settings.is_embedded and lite_file_in_use(settings.store_uri):
        raise BogvError(f"a running service owns {settings.store_uri}: use its page (the "
                        "Duplicates tab) or POST /api/image/sim/duplicates/scan, or stop it")
    # The scan checks images in parallel itself; OpenCV's own threads only add
    # synchronisation to its 250-point matches (knnMatch 2.3x slower with 2 of them on a
    # busy 2-core machine). The whole process is this scan, so the setting is its own.
    cv2.setNumThreads(1)
    service = build_service(settings)
    try:
        dups = Duplicates(service, processes=processes)
        with _progress() as progress:

            def ticks(stage: str) -> Callable[[int, int], None]:
                task = progress.add_task(stage, total=None, rate="")

                def tick(done: int, total: int) -> None:
                    speed = progress.tasks[task].speed
                    progress.update(task, completed=done, total=total,
                                    rate=f"{speed:.0f} img/s" if speed else "")
                return tick

            report = dups.scan(ticks("scanning"))
            # images of the groups to make again (none when the last ones are kept)
            listed, groups = dups.listing(min_score, ticks("grouping"))
        late = (f" (and {report.late} added shortly before the last scan's newest, which "
                "another replica may have stored late)" if report.late else "")
        err.print(f"{report.scanned} new images checked{late} in {report.seconds:.1f} s; "
                  f"{len(groups)} groups of copies")
        _print_groups(groups, as_json, as_csv)
        if delete_copies:
            _delete_copies(dups, groups, listed, yes)
    finally:
        service.close()


def _print_groups(groups: list[Group], as_json: bool, as_csv: bool) -> None:
    rows = _member_rows(groups)
    if as_json:
        _print_json([{"suggested": g.suggested, "why": g.why,
                      "members": [m.__dict__ for m in g.members]} for g in groups])
    elif as_csv:
        writer = csv.DictWriter(sys.stdout, _DUPLICATE_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    else:
        sys.stdout.writelines(_plain_table(
            ("group", "", "score", "match", "size", "id", "key", "filepath"),
            [(str(row["group"]), "keep" if row["suggested"] else "", f"{row['score']:.3f}",
              str(row["match"]), f"{row['width']}x{row['height']}", str(row["id"]),
              str(row["key"]), str(row["filepath"])) for row in rows]))
        sys.stdout.writelines(f"group {n}: keep {g.suggested} ({g.why})\n"
                              for n, g in enumerate(groups, 1))


_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}
"""Control characters, written escaped: a key or a file name holding a line break or a
terminal's escape sequence would otherwise break the table or act on the terminal."""


def _plain_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> Iterator[str]:
    """Lines of a table, each column as wide on screen as its widest cell (the last left
    unpadded, long paths running on): rich lays out 10k rows in about 10 s, and the groups
    of 100k images list most of them. Nothing folds, so an id stays whole to copy."""
    cells = [header, *([c.translate(_CONTROL) for c in row] for row in rows)]
    widths = [max(map(cell_len, column)) for column in zip(*cells, strict=True)]
    for *first, last in cells:
        yield "  ".join([*(c + " " * (w - cell_len(c))
                           for c, w in zip(first, widths[:-1], strict=True)), last]) + "\n"


def _delete_copies(dups: Duplicates, groups: list[Group], listed: str, yes: bool) -> None:
    """Keep the suggested member of each of ``groups`` (listed at ``version`` ``listed``)
    and delete the others (``keep``: the question may wait while the page's reviewers
    decide too); asked first unless ``yes`` (a pipe with nothing to answer aborts)."""
    choices = [(g.suggested, [m.id for m in g.members if not m.suggested]) for g in groups]
    asked = sum(len(others) for _, others in choices)
    if not asked:
        err.print("nothing to delete")
        return
    if not yes and not typer.confirm(f"Delete {asked} images: every member of the "
                                     f"{len(groups)} groups but the image to keep?", err=True):
        err.print("nothing deleted")
        return
    with _progress() as progress:
        task = progress.add_task("deleting", total=asked, rate="")
        report = dups.keep(choices, listed, lambda done, total: progress.update(
            task, completed=done, total=total))
    left = (f"; {len(report.left)} left, the groups changed meanwhile" if report.left else "")
    err.print(f"deleted {report.deleted} images; kept {len(groups)}, one of each group{left}")


def main() -> None:
    try:
        app(standalone_mode=True)
    except BogvError as exc:
        _error(exc.message)
        sys.exit(1)
