"""``bench/speed/speed.py --server``: Milvus Lite and a Milvus server side by side, in one run.

    python bench/speed/speed.py --server                          # starts the PyPI `milvus` server
    python bench/speed/speed.py --server http://127.0.0.1:19530   # or uses a running one
    BOGV_BENCH_MILVUS_URI=http://127.0.0.1:19530 python bench/speed/speed.py --server

Both stores get the same rows (real descriptors), the same queries and the same images, with
bogv's shipped defaults and nothing tuned: ``/search/file`` p50/p99 and ``/add/file`` p50 of a
real ``bogv serve`` over a store of 10k (and 100k) rows, and the rate of ``bogv import``.
The backends alternate, so the machine's load falls on both alike; the ratios are the result.
On a server the bench makes collections named ``bench_<pid>_...`` and drops them at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
from launch import API, bogv_env
from speed_corpus import jpegs, query_jpegs, stored_vectors
from speed_server import load, serve

from bogv.config import Settings
from bogv.model.embedder import Embedder

__all__ = ["compare"]

Figures = dict[str, float]
PREFIX = f"bench_{os.getpid()}"


@contextmanager
def milvus_server(uri: str, work: Path) -> Iterator[str]:
    """``uri``, or a Milvus server from the PyPI ``milvus`` package (2.3.5, no Docker) run
    for the bench in ``work``. It listens on every interface: loopback-only machines only."""
    if uri:
        yield uri
        return
    from milvus import MilvusServer, MilvusServerConfig  # pip install milvus==2.3.5

    server = MilvusServer(MilvusServerConfig(data_dir=str(work / "milvus")))
    for component in ("rootCoord", "proxy", "queryCoord", "queryNode", "indexNode",
                      "dataCoord", "dataNode"):
        server.config.set(f"{component}.ip", "127.0.0.1")
    server.start()
    try:
        yield f"http://127.0.0.1:{server.listen_port}"
    finally:
        server.stop()


def _drop_bench_collections(uri: str) -> None:
    from bogv._pymilvus import MilvusClient

    client = MilvusClient(uri=uri)
    for alias in client.list_aliases().get("aliases", []):
        if alias.startswith(PREFIX):
            client.drop_alias(alias)
    for name in client.list_collections():
        if name.startswith(PREFIX):
            client.drop_collection(name)
    client.close()


def _serving(count: int, env: dict[str, str], tag: str, vectors_path: Path,
             queries: list[bytes], adds: list[bytes], work: Path, models: Path,
             imports: tuple[Path, Path]) -> Figures:
    """Search and add latency of ``bogv serve`` over ``count`` stored rows, then the rate of
    ``bogv import`` of the ``imports`` folder into that store (start-up on it not counted)."""
    data_dir = work / f"{tag}-{count}"
    shutil.copytree(models, data_dir / "models")
    np.save(work / f"q-{tag}-{count}.npy", np.zeros((0, 1), np.float32))  # fill's queries
    filled = subprocess.run([sys.executable, str(Path(__file__).with_name("speed.py")), "--fill",
                             str(data_dir), str(vectors_path), str(count),
                             str(work / f"q-{tag}-{count}.npy")],
                            env=bogv_env(data_dir, **env), check=True, capture_output=True,
                            text=True)
    with serve(data_dir, **env) as server:
        with httpx.Client(base_url=server.url, timeout=60) as http:  # warms caches up
            for q in queries[:20]:
                http.post(f"{API}/search/file", files={"file": ("q.jpg", q)}).raise_for_status()
        search = load(server.url, "/search/file", queries, 1)
        add = load(server.url, "/add/file", adds, 1)
    if search.errors or add.errors:
        raise RuntimeError(f"{tag}: {search.errors} search and {add.errors} add errors")
    return {"search p50": search.percentile(50) * 1e3, "search p99": search.percentile(99) * 1e3,
            "add p50": add.percentile(50) * 1e3, "add p99": add.percentile(99) * 1e3,
            "import": _rate(*imports, data_dir, data_dir, env, tag, models),
            "settled": json.loads(filled.stdout.splitlines()[-1])["settled"]}


def _import_rate(folder: Path, empty: Path, env: dict[str, str], tag: str, work: Path,
                 models: Path) -> float:
    """Images per second of ``bogv import`` into a new store, start-up not counted (an empty
    folder's import into another new store is that start-up alone: a collection of its own,
    so on a server it pays the collection's creation as the real import does)."""
    return _rate(folder, empty, work / f"{tag}-idle", work / f"{tag}-data", env, tag, models,
                 idle_env={**env, "COLLECTION": env["COLLECTION"] + "_idle"})


def _rate(folder: Path, empty: Path, idle_dir: Path, data_dir: Path, env: dict[str, str],
          tag: str, models: Path, idle_env: dict[str, str] | None = None) -> float:
    """Images per second of ``bogv import folder``, less the time of ``bogv import empty``
    (start-up, opening the store) run first in ``idle_dir`` with ``idle_env``."""
    from speed import cli_import

    idle, _ = cli_import(empty, idle_dir, models, **(idle_env or env))
    summary, _ = cli_import(folder, data_dir, models, **env)
    if summary["added"] != len(list(folder.iterdir())):
        raise RuntimeError(f"{tag}: bogv import added {summary['added']}")
    seconds = summary["seconds"] - idle["seconds"]
    if seconds <= 0:  # start-up varies more than a small folder takes: no rate to report
        raise RuntimeError(f"{tag}: {summary['added']} images are too few to time an import")
    return float(summary["added"] / seconds)


def _load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def compare(args: argparse.Namespace, stores: tuple[int, ...], queries_n: int, adds_n: int,
            import_n: int, work: Path, embedder: Embedder, models: Path) -> None:
    """Prints the side-by-side table (Markdown) on stdout."""
    uri = args.server if isinstance(args.server, str) and args.server else os.environ.get(
        "BOGV_BENCH_MILVUS_URI", "")
    queries = [p.read_bytes() for p in query_jpegs(args.cache, args.devdata, queries_n)]
    images = jpegs(args.cache, args.devdata, import_n + 2 * adds_n * len(stores))
    folder, empty = work / "import", work / "empty"
    folder.mkdir()
    empty.mkdir()
    for p in images[:import_n]:
        (folder / p.name).symlink_to(p)
    rows: list[tuple[str, Figures, Figures, str]] = []
    notes = [f"start: {_load()}"]
    with milvus_server(uri, work) as server_uri:
        try:
            backends = {"lite": {}, "server": {"MILVUS_URI": server_uri}}
            rates: dict[str, list[float]] = {"lite": [], "server": []}
            for r in range(args.rounds or 2):  # interleaved rounds, best of each
                for tag, env in backends.items():
                    print(f"  import round {r + 1}: {tag}", file=sys.stderr)
                    rates[tag].append(_import_rate(
                        folder, empty, {**env, "COLLECTION": f"{PREFIX}_imp{r}"}, f"{tag}-i{r}",
                        work, models))
            rows.append((f"bogv import, {import_n} JPEGs (img/s)", {"v": max(rates["lite"])},
                         {"v": max(rates["server"])}, "target server >= 0.8x"))
            notes.append(f"after import: {_load()}")
            bodies = images[import_n:]
            for n, count in enumerate(stores):
                vectors = stored_vectors(args.cache, args.devdata, count, embedder)
                vectors_path = work / f"vectors-{count}.npy"
                np.save(vectors_path, vectors)
                adds = [p.read_bytes() for p in bodies[2 * n * adds_n:(2 * n + 1) * adds_n]]
                figures = {}
                for tag, env in backends.items():
                    print(f"  {count} rows: {tag}", file=sys.stderr)
                    figures[tag] = _serving(count, {**env, "COLLECTION": f"{PREFIX}_{count}"},
                                            tag, vectors_path, queries, adds, work, models,
                                            (folder, empty))
                k = f"[{count // 1000}k]"
                for figure, target in (("search p50", "target server <= 1.3x"),
                                       ("search p99", ""), ("add p50", "target server <= 60 ms"),
                                       ("add p99", "")):
                    rows.append((f"{k} /{figure.replace(' ', '/file ')} (ms)",
                                 {"v": figures["lite"][figure]},
                                 {"v": figures["server"][figure]}, target))
                rows.append((f"{k} bogv import, {import_n} JPEGs (img/s)",
                             {"v": figures["lite"]["import"]},
                             {"v": figures["server"]["import"]}, "target server >= 0.8x"))
                notes.append(f"after {count} rows: {_load()}; before timing, the server sealed "
                             f"and indexed them in {figures['server']['settled']:.0f} s")
        finally:
            _drop_bench_collections(server_uri)
    _print(rows, notes, server_uri if uri else "the PyPI milvus package's server, started here")


def _print(rows: list[tuple[str, Figures, Figures, str]], notes: list[str], server: str) -> None:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text()
                .splitlines() if line.startswith("model name")), "?")
    print(f"Milvus Lite vs Milvus server ({server}); {os.cpu_count()} cores, {cpu}; "
          f"shipped defaults ({Settings().search_consistency} consistency)")
    print()
    print("| figure | Milvus Lite | Milvus server | server / Lite | |")
    print("|---|---|---|---|---|")
    for figure, lite, server_, target in rows:
        print(f"| {figure} | {lite['v']:.1f} | {server_['v']:.1f} | "
              f"{server_['v'] / lite['v']:.2f}x | {target} |")
    print()
    for note in notes:
        print(f"- {note}")

