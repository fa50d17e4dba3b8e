"""The cost curve of the Lite backend: ingest, search latency, memory, disk and recall by size.

    python bench/scale/scale_vectors.py --count 50000 --out artifacts/vectors-50k.npy   # once, slow
    python bench/scale/scale.py --vectors artifacts/vectors-50k.npy --sizes 10000,100000,1000000
    python bench/scale/scale.py --import-images 600      # threads vs --processes vs --ray
    python bench/scale/scale.py --server http://127.0.0.1:19530 --sizes 10000,100000 --sweep 64,128

For each size a fresh Milvus Lite file gets ``size`` descriptors through ``Store.insert``
(bogv's own write path, batches of 1,000), then 200 held-out queries are searched one by
one. Recall@10 is measured against exact inner-product search done in numpy over the same
vectors, for several ``nprobe`` values. Latencies are also given as a ratio to the smallest
size measured in the same run, because this box is shared and absolute times are noisy.

Vectors: the first ones are real descriptors of augmented real photos (scale_vectors.py).
When a size needs more than the file holds, the rest are *interpolations* of two real
descriptors, ``normalise((1 - t) a + t b)`` with ``t`` in [0, 0.3]: points near real ones,
with their non-negative, clustered structure, but not model outputs. The table says how many
of each a row used. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from bogv.indexing import IndexSpec
from bogv.store import Store

QUERIES = 200
K = 10
INSERT_BATCH = 1000


CHUNK = 100_000


def chunks_for(real: np.ndarray, size: int, seed: int = 11) -> Iterator[np.ndarray]:
    """``size`` unit vectors in chunks (1M never sits in memory twice): the real ones
    first, then interpolations of random real pairs, the same for every run."""
    for start in range(0, size, CHUNK):
        n = min(CHUNK, size - start)
        out = np.empty((n, real.shape[1]), np.float32)
        have = max(0, min(n, len(real) - start))
        out[:have] = real[start:start + have]
        if have < n:
            rng = np.random.default_rng((seed, start))
            a = real[rng.integers(0, len(real), n - have)]
            b = real[rng.integers(0, len(real), n - have)]
            t = rng.uniform(0, 0.3, (n - have, 1)).astype(np.float32)
            mix = (1 - t) * a + t * b
            out[have:] = mix / np.linalg.norm(mix, axis=1, keepdims=True)
        yield out


class ExactTop:
    """Ground truth kept up to date chunk by chunk: the K best rows by inner product."""

    def __init__(self, queries: np.ndarray) -> None:
        self.queries = queries
        self.scores = np.full((len(queries), K), -np.inf, np.float32)
        self.rows = np.zeros((len(queries), K), np.int64)

    def add(self, chunk: np.ndarray, offset: int) -> None:
        scores = self.queries @ chunk.T
        top = np.argpartition(-scores, K, axis=1)[:, :K]
        s = np.concatenate([self.scores, np.take_along_axis(scores, top, 1)], 1)
        i = np.concatenate([self.rows, top + offset], 1)
        keep = np.argsort(-s, 1)[:, :K]
        self.scores, self.rows = np.take_along_axis(s, keep, 1), np.take_along_axis(i, keep, 1)


def engine_rss_mb() -> float:
    """Resident memory of this process's Milvus Lite engine (a child process)."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if f"PPid:\t{os.getpid()}\n" in status and b"milvus" in cmd:
            total += int(next(line.split()[1] for line in status.splitlines()
                              if line.startswith("VmRSS")))
    return total / 1024


def disk_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def server_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines()
                    if line.startswith("VmRSS"))) / 1024


def measure(size: int, real: np.ndarray, queries: np.ndarray, sweep: list[int],
            args: argparse.Namespace) -> list[dict[str, object]]:
    """One size: insert, wait for the index, then search at each breadth in ``sweep``."""
    truth = ExactTop(queries)
    folder = Path(tempfile.mkdtemp(prefix=f"bogv-scale-{size}-"))
    server = args.server is not None
    hnsw = server and args.server_index == "HNSW"
    knob = "ef" if hnsw else "nprobe"

    def spec(breadth: int) -> IndexSpec:
        if hnsw:
            return IndexSpec("HNSW", {"M": args.hnsw_m, "efConstruction": 200}, {"ef": breadth})
        kind = args.server_index if server else "IVF_FLAT"
        return IndexSpec(kind, {"nlist": args.nlist}, {"nprobe": breadth})

    try:
        uri = args.server or str(folder / "bogv.db")
        store = Store(uri, model_id="bench", dim=real.shape[1], index=spec(sweep[0]),
                      search_consistency=args.consistency,
                      collection=f"bench_{size}")
        t0 = time.perf_counter()
        row_ids: list[int] = []
        offset = 0
        for chunk in chunks_for(real, size):
            truth.add(chunk, offset)
            for start in range(0, len(chunk), INSERT_BATCH):
                part = chunk[start:start + INSERT_BATCH]
                rows = [(f"k{offset + start + i}", f"/bench/{offset + start + i}.jpg",
                         f"{offset + start + i:064x}") for i in range(len(part))]
                row_ids.extend(store.insert(rows, part))
            offset += len(chunk)
        insert_s = time.perf_counter() - t0
        store.client.flush(store.name)
        store.search(queries[:1], K)  # the first search waits for the index
        ready_s = time.perf_counter() - t0
        ids = np.array(row_ids)
        results = []
        for breadth in sweep:
            store.index = spec(breadth)
            latencies, hits, tied = [], 0, 0
            for q, want, kth in zip(queries, truth.rows, truth.scores[:, -1], strict=True):
                t = time.perf_counter()
                found = store.search(q[None], K)
                latencies.append((time.perf_counter() - t) * 1000)
                hits += len({h.id for h in found} & set(ids[want].tolist()))
                # With near-duplicates, another row of the same score is as right as the
                # one numpy happened to rank: count hits scoring at least the K-th best.
                tied += sum(h.similarity >= kth - 1e-5 for h in found)
            latencies.sort()
            results.append({
                "size": size, "real": min(size, len(real)), "knob": f"{knob}={breadth}",
                "insert_per_s": size / insert_s, "ready_s": ready_s,
                "p50_ms": statistics.median(latencies),
                "p99_ms": latencies[int(0.99 * (len(latencies) - 1))],
                "recall": hits / (K * len(queries)), "tied": tied / (K * len(queries)),
                "rss_mb": server_rss_mb(args.server_pid) if args.server_pid else
                engine_rss_mb(), "disk_mb": 0.0 if server else disk_mb(folder)})
        if server:
            store.client.drop_alias(f"bench_{size}")
            store.client.drop_collection(store.name)
        store.close()
        return results
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def curve(args: argparse.Namespace) -> None:
    data = np.load(args.vectors, mmap_mode="r")
    queries = np.asarray(data[-QUERIES:], np.float32)  # held out: never stored
    real = np.asarray(data[:-QUERIES], np.float32)
    index = (f"{args.server_index} (M={args.hnsw_m} / nlist={args.nlist}) on {args.server}"
             if args.server else f"IVF_FLAT nlist={args.nlist} on Milvus Lite")
    index += f", {args.consistency} searches"
    print(f"{len(real)} real descriptors from {args.vectors} (+{QUERIES} held-out queries); "
          f"{index}; {os.cpu_count()} cores", flush=True)
    print("\n| vectors | real | search | insert/s | ready (s) | p50 ms | p99 ms | p50 x "
          f"{args.sizes[0]:,} | recall@10 ids | recall@10 ties | engine RSS MB | disk MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
    base_p50: dict[object, float] = {}
    for size in args.sizes:
        for r in measure(size, real, queries, args.sweep, args):
            base_p50.setdefault(r["knob"], float(r["p50_ms"]))  # type: ignore[arg-type]
            print(f"| {r['size']:,} | {r['real']:,} | {r['knob']} | {r['insert_per_s']:,.0f} | "
                  f"{r['ready_s']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
                  f"{r['p50_ms'] / base_p50[r['knob']]:.1f} | {r['recall']:.3f} | "
                  f"{r['tied']:.3f} | {r['rss_mb']:,.0f} | {r['disk_mb']:,.0f} |", flush=True)


def import_rates(args: argparse.Namespace) -> None:
    """Images/s of `bogv import` with threads, worker processes and Ray on real photos."""
    import csv
    import subprocess

    with (args.devdata / "manifest.csv").open() as f:
        paths = [args.devdata / row["path"] for row in csv.DictReader(f)][:args.import_images]
    modes = {"threads (default)": [], "--processes 2": ["--processes", "2"],
             "--ray --processes 2": ["--ray", "--processes", "2"]}
    print(f"\nbogv import of {len(paths)} dev images, fresh Milvus Lite each, "
          f"{os.cpu_count()} cores\n\n| mode | seconds | images/s | x threads |\n|---|---|---|---|")
    base = 0.0
    for label, options in modes.items():
        work = Path(tempfile.mkdtemp(prefix="bogv-import-"))
        try:
            folder = work / "in"
            folder.mkdir()
            for i, path in enumerate(paths):
                os.symlink(path, folder / f"{i:05d}{path.suffix}")
            models = Path(args.models)
            if models.exists():
                shutil.copytree(models, work / "data" / "models")
            env = os.environ | {"DATA_DIR": str(work / "data")}
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "bogv", "import", str(folder), "--json",
                            *options], env=env, check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            seconds = time.perf_counter() - t
        finally:
            shutil.rmtree(work, ignore_errors=True)
        base = base or len(paths) / seconds
        print(f"| {label} | {seconds:.1f} | {len(paths) / seconds:.1f} | "
              f"{len(paths) / seconds / base:.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vectors", type=Path, default=Path("artifacts/vectors-50k.npy"))
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")],
                        default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--sweep", type=lambda s: [int(x) for x in s.split(",")],
                        default=[16, 64, 128], help="IVF nprobe values (HNSW ef with --server)")
    parser.add_argument("--nlist", type=int, default=1024)
    parser.add_argument("--server", help="measure HNSW on this Milvus server URI instead")
    parser.add_argument("--server-pid", type=int, default=0, help="its pid, for RSS")
    parser.add_argument("--server-index", default="HNSW", choices=["HNSW", "IVF_SQ8",
                                                                    "IVF_FLAT"])
    parser.add_argument("--hnsw-m", type=int, default=16)
    parser.add_argument("--consistency", default="Session",
                        help="search consistency level (Session is bogv's default)")
    parser.add_argument("--import-images", type=int, default=0,
                        help="instead of the curve, time `bogv import` on this many images")
    parser.add_argument("--devdata", type=Path, default=Path("/work/devdata"))
    parser.add_argument("--models", default="data/models",
                        help="converted model to copy, so each import skips the conversion")
    args = parser.parse_args()
    if args.import_images:
        import_rates(args)
    else:
        curve(args)


if __name__ == "__main__":
    main()
