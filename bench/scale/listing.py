"""Browse paging at scale: ``Store.newest`` against reading every id and sorting.

Milvus has no ORDER BY, so the listing endpoint finds the newest records by counting id
windows (ids are time-ordered). The baseline, measured in the same run on the same store,
is the obvious way: read every id with a query iterator, sort, slice. Records are real
descriptors of the dev images (repeated to reach N), inserted in import-sized batches so
ids are as dense as a bulk import makes them (the hardest case for windowing).

    python bench/scale/listing.py --n 100000 --images /work/devdata
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bogv.config import Settings
from bogv.errors import BogvError
from bogv.service import Service, build_service
from bogv.store import MAX_BATCH, Store


def embed_dev_images(service: Service, folder: Path, n: int) -> np.ndarray:
    # The smallest files: decoding 4K wallpapers would only slow the set-up down.
    files = sorted((p for p in (folder / "images").rglob("*") if p.is_file()),
                   key=lambda p: (p.stat().st_size, p))
    vectors = []
    for path in files:
        if len(vectors) == n:
            break
        try:
            prepared = service.prepare(path.read_bytes(), thumbnail=False)
        except BogvError:  # a bench skips what it cannot decode
            continue
        vectors.append(service.embedder.embed_tensors(prepared.tensor[None])[0])
    return np.stack(vectors)


def newest_by_sorting(store: Store, limit: int, before: int | None) -> list[int]:
    """The baseline: every id (below ``before``), sorted."""
    expr = f"id < {before}" if before is not None else ""
    it = store.client.query_iterator(store.name, filter=expr, output_fields=["id"],
                                     batch_size=MAX_BATCH)
    ids: list[int] = []
    while batch := it.next():
        ids.extend(int(r["id"]) for r in batch)
    it.close()
    return sorted(ids, reverse=True)[:limit]


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--limit", type=int, default=48)
    parser.add_argument("--images", type=Path, default=Path("/work/devdata"))
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        # FLAT: paging never touches the vector index, and IVF builds slow the set-up down.
        service = build_service(Settings(data_dir=Path(tmp), index_type="FLAT"))
        store = service.store
        t0 = time.perf_counter()
        vectors = embed_dev_images(service, args.images, 128)
        t1 = time.perf_counter()
        batch = 2000
        for start in range(0, args.n, batch):
            n = min(batch, args.n - start)
            rows = [(f"k{start + i}", f"f{start + i}", f"s{start + i}") for i in range(n)]
            store.insert(rows, vectors[np.arange(start, start + n) % len(vectors)])
        print(f"embedded {len(vectors)} in {t1 - t0:.0f} s, inserted {args.n} in "
              f"{time.perf_counter() - t1:.0f} s", file=sys.stderr)
        ids = sorted(newest_by_sorting(store, args.n, None), reverse=True)
        print(f"{store.count()} records, {len(vectors)} distinct real descriptors, "
              f"limit {args.limit}", file=sys.stderr)
        calls = 0
        count = store.count

        def counting(expr: str = "") -> int:
            nonlocal calls
            calls += 1
            return count(expr)

        store.count = counting  # type: ignore[method-assign]
        rows_out = []
        for label, before in [("first page", None), ("page at 10%", ids[args.n // 10]),
                              ("page at 50%", ids[args.n // 2]),
                              ("last page", ids[-args.limit // 2])]:
            base_ms, expected = timed(lambda b=before: newest_by_sorting(store, args.limit, b),
                                      args.repeat)
            calls = 0
            ours_ms, page = timed(lambda b=before: store.newest(args.limit, before=b),
                                  args.repeat)
            counts = calls // args.repeat
            got = [r.id for r in page.records]  # type: ignore[attr-defined]
            assert got == expected, f"{label}: wrong page"
            rows_out.append((label, base_ms, ours_ms, counts))
        service.close()
    print(f"| page ({args.n} records) | read all ids + sort, ms | Store.newest, ms "
          "| its count(*) queries | speed-up |")
    print("|---|---:|---:|---:|---:|")
    for label, base_ms, ours_ms, counts in rows_out:
        print(f"| {label} | {base_ms:.1f} | {ours_ms:.1f} | {counts} "
              f"| {base_ms / ours_ms:.1f}x |")


if __name__ == "__main__":
    main()
