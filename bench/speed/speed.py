"""Ingest and search speed of bogv against the seed's pipeline, measured in one run.

    pip install -e ".[bench]"
    python bench/speed/speed.py            # the full run (first run also builds the cached inputs)
    python bench/speed/speed.py --quick    # smaller counts, for iterating

Prints one table. The machine is shared and noisy, so every ingest figure is the best of
``--rounds`` interleaved rounds and is reported as a ratio against baselines measured in the
same run: the *seed pipeline* (OpenCV full decode, torch ResNet-50 one image at a time, one
Milvus insert per image) and the *reference bound* (bogv's decode + preprocess + embed alone,
no store, no HTTP, at the best batch size). HTTP figures come from a real ``bogv serve``
subprocess on loopback. Inputs (1-3 MP JPEGs, 1 MP queries, real descriptors of augmented
dev photos for the 10k/100k stores) are made once and cached under ``--cache``.

The table opens with the CPU: its model, the features that choose onnxruntime's kernels
(AVX2, AVX-512, VNNI, ARM dot product) and the graph bogv runs on it (``bogv.model.cpu``),
since every figure below depends on them. ``--only stages`` gives CPU ms per image of each
step of an import, one thread, including inference by every graph this CPU may run.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).parent))

from launch import API, bogv_command, bogv_env
from speed_corpus import jpegs, query_jpegs, stored_vectors
from speed_server import Load, Watch, load, serve, tree_cpu

from bogv import imaging
from bogv.config import Settings, is_server
from bogv.errors import BogvError
from bogv.indexing import index_spec
from bogv.model import cpu, geometry
from bogv.model.descriptor import DIM
from bogv.model.embedder import Embedder
from bogv.model.preprocess import SIZE, embed_tensor
from bogv.service import KEYPOINTS, THUMBNAIL
from bogv.service import prepare as prepare_image
from bogv.sidecar import Sidecar
from bogv.store import INSERT_ROWS, Store
from bogv.thumbs import make_thumbnail

if TYPE_CHECKING:
    from speed_seed import SeedPipeline  # torch is imported only when ingest is measured

MB = 1024 * 1024


@dataclass(frozen=True)
class Counts:
    ingest: int
    seed: int
    add: int
    queries: int
    stores: tuple[int, ...]


FULL = Counts(ingest=2000, seed=200, add=400, queries=300, stores=(10_000, 100_000))
QUICK = Counts(ingest=400, seed=60, add=100, queries=80, stores=(10_000,))


@dataclass
class Row:
    figure: str
    value: str
    note: str = ""


# --- ingest ---------------------------------------------------------------------------------

def own_cpu() -> float:
    """CPU seconds of this process and its children so far (the seed's Milvus Lite)."""
    return sum(tree_cpu(psutil.Process()).values())


@dataclass(frozen=True)
class Rate:
    """One ingest measurement: images per second of wall time, CPU seconds per image."""

    per_s: float
    cpu_ms: float
    note: str = ""


def reference_bound(datas: list[bytes], embedder: Embedder,
                    batches: tuple[int, ...] = (1, 2, 4, 8, 16, 32)) -> Rate:
    """Decode + preprocess in a thread pool overlapped with embedding at the best batch size.

    No file I/O, no store, no thumbnail, no process start: what a pipeline that only turns
    JPEG bytes into bogv's stored descriptor (the vector, and the keypoints its copy check
    needs) achieves here. The batch size is the one that embeds 256 images fastest.
    """
    settings = Settings()

    def prepare(data: bytes) -> np.ndarray:
        return prepare_image(data, settings, thumbnail=False).tensor

    with ThreadPoolExecutor(settings.workers) as pool:
        sample = np.stack(list(pool.map(prepare, datas[:256])))
        timings = []
        for batch in batches:
            embedder.embed_tensors(sample[:batch])  # warm the session for this shape
            start = time.perf_counter()
            for i in range(0, len(sample), batch):
                embedder.embed_tensors(sample[i:i + batch])
            timings.append((time.perf_counter() - start, batch))
        batch = min(timings)[1]
        start, cpu = time.perf_counter(), own_cpu()
        ahead: deque[list[Future[np.ndarray]]] = deque()
        for i in range(0, len(datas), batch):
            ahead.append([pool.submit(prepare, d) for d in datas[i:i + batch]])
            if len(ahead) * batch > max(2 * batch, 32):  # decoding runs well ahead
                embedder.embed_tensors(np.stack([f.result() for f in ahead.popleft()]))
        while ahead:
            embedder.embed_tensors(np.stack([f.result() for f in ahead.popleft()]))
    seconds, cpu = time.perf_counter() - start, own_cpu() - cpu
    return Rate(len(datas) / seconds, cpu / len(datas) * 1e3, f"batch {batch}")


def seed_rate(seed: SeedPipeline, paths: list[Path]) -> Rate:
    cpu = own_cpu()
    seconds = seed.ingest(paths)
    return Rate(len(paths) / seconds, (own_cpu() - cpu) / len(paths) * 1e3)


def cli_import(folder: Path, data_dir: Path, models: Path,
               **env: str) -> tuple[dict[str, float], Watch]:
    """``bogv import FOLDER --json`` in a subprocess: its summary and its process tree.

    ``data_dir`` is new, or a store filled before (an import into a big collection). Each
    import gets its own, and all are removed at the end of the run: deleting the previous
    round's thousands of record files just before an import made that import's file
    creation cost ~1.5 ms of kernel CPU per image on this box's ext4 (mounted with
    ``discard``) against ~0.1 ms otherwise: the bench's own cleanup, not bogv.
    """
    if not (data_dir / "models").exists():  # the converted graph, as after a first run
        shutil.copytree(models, data_dir / "models")
    start = time.perf_counter()
    proc = subprocess.Popen(bogv_command("import", str(folder), "--json"),
                            env=bogv_env(data_dir, **env), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    watch = Watch(proc.pid)
    out, _ = proc.communicate(timeout=3600)
    watch.stop()
    if proc.returncode:
        raise RuntimeError(f"bogv import failed with {proc.returncode}")
    summary = json.loads(out)
    summary["wall"] = time.perf_counter() - start
    return summary, watch


def measure_ingest(args: argparse.Namespace, counts: Counts, work: Path,
                   embedder: Embedder, models: Path) -> list[Row]:
    from speed_seed import SeedPipeline

    paths = jpegs(args.cache, args.devdata, counts.ingest)
    folder, empty = work / "import", work / "empty"
    folder.mkdir()
    empty.mkdir()
    for p in paths:
        (folder / p.name).symlink_to(p)
    datas = [p.read_bytes() for p in paths]
    megapixels = np.mean([np.prod(imaging.decode(d, max_pixels=10**9).size)
                          for d in datas[:100]]) / 1e6
    seed = SeedPipeline(work / "seed.db")
    seeds, refs, imports, startups = [], [], [], []
    for r in range(args.rounds):
        print(f"  round {r + 1}/{args.rounds}: reference, seed, bogv import", file=sys.stderr)
        refs.append(reference_bound(datas, embedder))
        seeds.append(seed_rate(seed, paths[r * counts.seed:(r + 1) * counts.seed]))
        idle, watch = cli_import(empty, work / f"idle-data-{r}", models)
        startups.append((idle["wall"], watch.cpu_seconds))
        summary, watch = cli_import(folder, work / f"import-data-{r}", models)
        assert summary["added"] == len(paths), f"bogv import added {summary['added']}"
        cpu = (watch.cpu_seconds - startups[-1][1]) / len(paths) * 1e3
        # bogv import's seconds run from before the model and store open; an empty folder's
        # import in the same round is that start-up alone.
        seconds = summary["seconds"] - idle["seconds"]
        imports.append((Rate(len(paths) / seconds, cpu,
                             f"{len(paths) / summary['wall']:.1f} img/s with start-up"),
                        (watch.peak, watch.own_peak)))
    seed.close()
    ref = max(refs, key=lambda x: x.per_s)
    best_seed = max(seeds, key=lambda x: x.per_s)
    rate, rss = max(imports, key=lambda x: x[0].per_s)
    cpu_ref, cpu_seed = min(x.cpu_ms for x in refs), min(x.cpu_ms for x in seeds)
    cpu_import = min(x[0].cpu_ms for x in imports)
    startup = min(startups)
    cores = os.cpu_count() or 1

    def used(r: Rate) -> str:
        """Cores busy on average: CPU seconds per wall second."""
        return f"{r.per_s * r.cpu_ms / 1e3:.1f} of {cores} cores"

    return [
        Row("ingest inputs", f"{len(paths)} JPEGs", f"mean {megapixels:.1f} MP; seed: "
            f"{counts.seed} per round; best of {args.rounds} interleaved rounds"),
        Row("seed pipeline", f"{best_seed.per_s:.1f} img/s",
            f"{cpu_seed:.1f} CPU ms/img, {used(best_seed)}; cv2 full decode + ResNet-50 "
            "(torch, 1 image) + 1 insert/image"),
        Row("reference bound", f"{ref.per_s:.1f} img/s",
            f"{cpu_ref:.1f} CPU ms/img, {used(ref)}; decode+preprocess overlapped with "
            f"embed, in-process, {ref.note}"),
        Row("bogv import", f"{rate.per_s:.1f} img/s", f"{cpu_import:.1f} CPU ms/img, "
            f"{used(rate)}; {rate.note}"),
        Row("  import / seed", f"{rate.per_s / best_seed.per_s:.1f}x",
            f"target >= 10, using {used(rate)}; per CPU ms: {cpu_seed / cpu_import:.1f}x"),
        Row("  import / reference", f"{rate.per_s / ref.per_s:.2f}x",
            f"target >= 0.8, using {used(rate)}; per CPU ms: {cpu_ref / cpu_import:.2f}x"),
        Row("CPU bound", f"{cores * 1e3 / cpu_ref:.1f} img/s", "every core busy "
            "with the reference's CPU work; bogv import reaches "
            f"{rate.per_s * cpu_ref / (cores * 1e3):.2f}x"),
        Row("bogv import start-up", f"{startup[0]:.2f} s", f"{startup[1]:.1f} CPU s; an empty "
            "folder: model, Milvus Lite, collection"),
        Row("bogv import peak RSS", f"{rss[0] / MB:.0f} MB", f"process + Milvus Lite; "
            f"the bogv process alone {rss[1] / MB:.0f} MB"),
    ]


def measure_add(counts: Counts, args: argparse.Namespace, work: Path, models: Path) -> list[Row]:
    paths = jpegs(args.cache, args.devdata, counts.ingest + 2 * counts.add)[counts.ingest:]
    bodies = [p.read_bytes() for p in paths]
    data_dir = work / "add-data"
    shutil.copytree(models, data_dir / "models")
    rows = []
    with serve(data_dir) as server:
        for clients, chunk in ((1, bodies[:counts.add]), (4, bodies[counts.add:])):
            result = load(server.url, "/add/file", chunk, clients)
            rows.append(Row(f"/add/file, {clients} client{'s' * (clients > 1)}",
                            f"{result.rate:.1f} img/s",
                            f"p50 {result.percentile(50) * 1e3:.0f} ms, "
                            f"{result.errors} errors"))
    return rows


# --- start-up and search --------------------------------------------------------------------

def measure_startup(work: Path) -> list[Row]:
    data_dir = work / "startup-data"
    with serve(data_dir) as server:
        cold = server.startup
    with serve(data_dir) as server:
        warm = server.startup
    return [Row("start-up, cold", f"{cold:.2f} s", "empty DATA_DIR: converts the model, "
                "creates the collection"),
            Row("start-up, warm", f"{warm:.2f} s", "second start, empty store")]


def fill(data_dir: Path, vectors_path: Path, count: int, queries_path: Path) -> None:
    """(Subprocess) store ``count`` cached vectors through bogv's store, in big batches, then
    search the index with each query vector (the index's own recall, before the server owns
    the Milvus Lite file)."""
    from bogv.service import build_service

    vectors = np.load(vectors_path, mmap_mode="r")[:count]
    service = build_service(Settings(data_dir=data_dir))
    ids = []
    start = time.perf_counter()
    for i in range(0, count, INSERT_ROWS):
        chunk = np.ascontiguousarray(vectors[i:i + INSERT_ROWS])
        rows = [(f"k{j}", f"/stored/{j}.jpg", f"{j:064x}") for j in range(i, i + len(chunk))]
        ids.extend(service.store.insert(rows, chunk))
    seconds = time.perf_counter() - start
    settled = _settle(service.store, count) if is_server(service.settings.milvus_uri) else 0.0
    found = [[c.id for c in service.store.search(q[None], 10)] for q in np.load(queries_path)]
    service.close()
    np.save(data_dir.parent / f"{data_dir.name}-ids.npy", np.array(ids, np.int64))
    np.save(data_dir.parent / f"{data_dir.name}-found.npy", np.array(found, np.int64))
    print(json.dumps({"seconds": seconds, "settled": settled}))


def _settle(store: Store, count: int) -> float:
    """Seconds until a server has sealed the filled rows and indexed them all.

    A server seals a segment by itself once inserts stop for ``dataCoord.segment.maxIdleTime``
    (10 min) and then builds its index; until then it searches the rows unindexed, and the
    build takes the box's cores. Timing right after a bulk fill measures that one-off build
    against Milvus Lite, which has none (the fill stands in for a collection grown over time),
    so the rows are sealed now and the timing waits for the index."""
    start = time.perf_counter()
    store.client.flush(store.name)
    while True:
        info = store.client.describe_index(store.name, "embedding")
        if info.get("indexed_rows", 0) >= count and not info.get("pending_index_rows"):
            return time.perf_counter() - start
        time.sleep(1)


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and "models" not in p.parts)


def _recall(hits: list[list[int]], exact: list[list[int]]) -> float:
    return float(np.mean([len(set(h) & set(e)) / len(e) for h, e in zip(hits, exact,
                                                                         strict=True)]))


def measure_search(count: int, counts: Counts, args: argparse.Namespace, work: Path,
                   embedder: Embedder, models: Path) -> list[Row]:
    vectors = stored_vectors(args.cache, args.devdata, count, embedder)
    vectors_path = work / f"vectors-{count}.npy"
    np.save(vectors_path, vectors)
    queries = [p.read_bytes() for p in query_jpegs(args.cache, args.devdata, counts.queries)]
    settings = Settings()
    qvec = embedder.embed([imaging.decode(q, max_pixels=settings.max_pixels, min_side=SIZE)
                           for q in queries])
    np.save(work / f"queries-{count}.npy", qvec)
    data_dir = work / f"store-{count}"
    shutil.copytree(models, data_dir / "models")
    out = subprocess.run([sys.executable, __file__, "--fill", str(data_dir), str(vectors_path),
                          str(count), str(work / f"queries-{count}.npy")],
                         env=bogv_env(data_dir), check=True, capture_output=True)
    fill_seconds = json.loads(out.stdout.splitlines()[-1])["seconds"]
    ids = np.load(work / f"store-{count}-ids.npy")
    found = np.load(work / f"store-{count}-found.npy").tolist()
    exact = [ids[np.argsort(-(vectors @ v))[:10]].tolist() for v in qvec]
    tag = f"{count // 1000}k"
    rows = [Row(f"[{tag}] batched insert", f"{count / fill_seconds:.0f} rows/s",
                f"{count} rows through bogv's Store, {INSERT_ROWS} per insert")]
    with serve(data_dir) as server:
        rows.append(Row(f"[{tag}] start-up, warm", f"{server.startup:.2f} s",
                        f"{count} images stored"))
        with httpx.Client(base_url=server.url, timeout=60) as http:  # warms caches up
            for q in queries:
                http.post(f"{API}/search/file", files={"file": ("q.jpg", q)},
                          data={"limit": "10"}).raise_for_status()
        def measured(clients: int, bodies: list[bytes]) -> tuple[Load, float, float]:
            """The load, the server's CPU ms per request and its share of all cores."""
            cpu = server.watch.cpu_seconds
            result = load(server.url, "/search/file", bodies, clients)
            used = server.watch.cpu_seconds - cpu
            return (result, used / max(len(result.latencies), 1) * 1e3,
                    used / result.seconds / (os.cpu_count() or 1))

        single, cpu_ms, share = measured(1, queries)
        rows.append(Row(f"[{tag}] /search/file, 1 client",
                        f"p50 {single.percentile(50) * 1e3:.1f} ms, "
                        f"p99 {single.percentile(99) * 1e3:.1f} ms",
                        f"{single.rate:.1f} req/s, {cpu_ms:.1f} server CPU ms/req, server "
                        f"used {share:.0%} of the cores; 1 MP JPEG, {single.errors} errors"
                        + ("; target p50 <= 20, p99 <= 60 ms" if count >= 100_000 else "")))
        for clients in (4, 16):
            many, cpu_ms, share = measured(clients, queries * 2)
            rows.append(Row(f"[{tag}] /search/file, {clients} clients",
                            f"{many.rate:.1f} req/s",
                            f"{many.rate / single.rate:.2f}x 1 client; server used {share:.0%} "
                            f"of the cores (the clients share them); p50 "
                            f"{many.percentile(50) * 1e3:.0f} ms, p99 "
                            f"{many.percentile(99) * 1e3:.0f} ms, {many.errors} errors"))
        watch = server.watch
        rss, own, steady = watch.peak, watch.own_peak, watch.now
    spec = index_spec(settings, embedded=True)
    rows.append(Row(f"[{tag}] recall@10 vs exact", f"{_recall(found, exact):.3f}",
                    f"the index's top 10 for a query vector against exact inner products; "
                    f"{spec.type} {spec.build}, search {spec.search}"))
    rows.append(Row(f"[{tag}] serve peak RSS", f"{rss / MB:.0f} MB",
                    f"process + Milvus Lite (bogv alone {own / MB:.0f} MB; both after the "
                    f"searches {steady / MB:.0f} MB)"
                    + ("; target <= 1536" if count >= 100_000 else "")))
    rows.append(Row(f"[{tag}] index size on disk", f"{_du(data_dir) / MB:.0f} MB",
                    f"{count * DIM * 4 / MB:.0f} MB of raw float32 vectors"))
    return rows


# --- the machine and the steps of an import --------------------------------------------------

def machine_rows(embedder: Embedder) -> list[Row]:
    """What every figure depends on: cores, the CPU, its kernel-choosing features, the graph."""
    here = embedder.cpu
    has = {name: any(f in here.flags for f in flags) for name, flags in (
        ("AVX2", ("avx2",)), ("AVX-512", ("avx512f",)), ("VNNI", ("avx512_vnni", "avx_vnni")),
        ("ARM dot product", ("asimddp",)))}
    return [Row("machine", f"{os.cpu_count()} cores", f"onnxruntime, {Settings().workers} "
                "import workers (each decodes and embeds)"),
            Row("CPU", f"{here.model} ({here.arch})"),
            Row("CPU features", ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in has.items())),
            Row("graph", embedder.precision, embedder.model_id.split(":")[0])]


def _cpu_ms(step: Callable[[bytes], object], datas: list[bytes]) -> float:
    start = time.process_time()
    for data in datas:
        step(data)
    return (time.process_time() - start) / len(datas) * 1e3


def measure_stages(args: argparse.Namespace, counts: Counts, models: Path) -> list[Row]:
    """CPU ms per image of each step of an import, one after the other on one thread (the
    pool's threads would hide which step costs what). Inference runs in batches of
    ``BATCH_SIZE`` with one onnxruntime thread, for each graph this CPU may run."""
    settings = Settings()
    datas = [p.read_bytes() for p in jpegs(args.cache, args.devdata, counts.seed)]

    def decode(data: bytes) -> imaging.Image.Image:
        return imaging.decode(data, max_pixels=settings.max_pixels, min_side=SIZE,
                              min_long=geometry.SIDE)

    images = [decode(d) for d in datas]
    files = [(make_thumbnail(img), geometry.keypoints(img)) for img in images]
    records = Sidecar(Path(tempfile.mkdtemp(prefix="bogv-stages-")))
    steps: dict[str, Callable[[int], object]] = {
        "decode": lambda i: decode(datas[i]),
        "keypoints": lambda i: geometry.keypoints(images[i]),
        "tensor": lambda i: embed_tensor(images[i]),
        "thumbnail": lambda i: make_thumbnail(images[i]),
        "hashes": lambda i: (hashlib.md5(datas[i]).digest(), hashlib.sha256(datas[i]).digest()),
        "record files": lambda i: [records.save(i, kind, data) for kind, data
                                   in zip((THUMBNAIL, KEYPOINTS), files[i], strict=True)],
    }
    rows, total = [], 0.0
    for name, step in steps.items():
        start = time.process_time()
        for i in range(len(datas)):
            step(i)
        ms = (time.process_time() - start) / len(datas) * 1e3
        total += ms
        rows.append(Row(f"import step: {name}", f"{ms:.1f} CPU ms", "per image, one thread"))
    shutil.rmtree(records.root)
    tensors = np.stack([embed_tensor(img) for img in images])
    batch = settings.batch_size
    for precision in cpu.PRECISIONS:
        try:
            embedder = Embedder(models, threads=1, precision=precision)
        except BogvError as exc:  # the 8-bit graph where bogv refuses it
            rows.append(Row(f"import step: inference, {precision}", "-", exc.message[:70]))
            continue
        embedder.embed_tensors(tensors[:batch])  # warm the session
        start = time.process_time()
        for i in range(0, len(tensors), batch):
            embedder.embed_tensors(tensors[i:i + batch])
        ms = (time.process_time() - start) / len(tensors) * 1e3
        rows.append(Row(f"import step: inference, {precision}", f"{ms:.1f} CPU ms",
                        f"batches of {batch}; all steps with it: {total + ms:.1f} CPU ms"))
    return rows


# --- the command ----------------------------------------------------------------------------

def print_table(rows: list[Row]) -> None:
    width = [max(len(getattr(r, f)) for r in rows) for f in ("figure", "value")]
    print(f"| {'figure':<{width[0]}} | {'value':<{width[1]}} | note |")
    print(f"|{'-' * (width[0] + 2)}|{'-' * (width[1] + 2)}|------|")
    for r in rows:
        print(f"| {r.figure:<{width[0]}} | {r.value:<{width[1]}} | {r.note} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts, for iterating")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved ingest rounds")
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get(
        "BOGV_BENCH_CACHE", Path(tempfile.gettempdir()) / "bogv-bench")))
    parser.add_argument("--devdata", type=Path, default=Path(os.environ.get(
        "BOGV_DEVDATA", "/work/devdata")), help="fetch_dev_images.sh output folder")
    parser.add_argument("--only", choices=("stages", "ingest", "add", "startup", "search"),
                        nargs="*")
    parser.add_argument("--server", nargs="?", const=True, default=None, metavar="URI",
                        help="Milvus Lite and a Milvus server side by side (bench/"
                        "speed_backends.py): the server at URI (or BOGV_BENCH_MILVUS_URI), "
                        "else one started from the PyPI milvus package")
    parser.add_argument("--stores", type=int, nargs="+", help="store sizes to search "
                        "(default 10000 100000; --quick: 10000)")
    parser.add_argument("--fill", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fill:
        fill(Path(args.fill[0]), Path(args.fill[1]), int(args.fill[2]), Path(args.fill[3]))
        return
    counts = QUICK if args.quick else FULL
    if args.stores:
        counts = dataclasses.replace(counts, stores=tuple(args.stores))
    if args.server:
        from speed_backends import compare

        with tempfile.TemporaryDirectory(prefix="bogv-speed-") as tmp:
            compare(args, counts.stores, counts.queries, counts.add, counts.ingest // 5,
                    Path(tmp), Embedder(args.cache / "models"), args.cache / "models")
        return
    args.rounds = args.rounds or (2 if args.quick else 3)
    parts = set(args.only or ("stages", "ingest", "add", "startup", "search"))
    models = args.cache / "models"
    settings = Settings()
    # Converts the graph into the cache once; PRECISION chooses it, as for `bogv serve`.
    embedder = Embedder(models, precision=settings.precision)
    print(f"CPU: {embedder.cpu}; graph: {embedder.precision}", file=sys.stderr)
    rows = machine_rows(embedder)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bogv-speed-") as tmp:
        work = Path(tmp)
        steps: list[tuple[str, Callable[[], list[Row]]]] = [
            ("stages", lambda: measure_stages(args, counts, models)),
            ("ingest", lambda: measure_ingest(args, counts, work, embedder, models)),
            ("add", lambda: measure_add(counts, args, work, models)),
            ("startup", lambda: measure_startup(work)),
            *(("search", lambda n=n: measure_search(n, counts, args, work, embedder, models))
              for n in counts.stores)]
        for name, step in steps:
            if name in parts:
                print(f"measuring {name} ...", file=sys.stderr)
                rows.extend(step())
    rows.append(Row("load average", f"{load_before:.1f} -> {os.getloadavg()[0]:.1f}",
                    "1 minute, at the start and the end: other work shares these cores"))
    print_table(rows)


if __name__ == "__main__":
    main()
