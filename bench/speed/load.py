"""A bounded load test: concurrent clients adding, searching and deleting on a real server.

    python bench/speed/load.py                   # 8 clients, 180 s, against a fresh `bogv serve`
    python bench/speed/load.py --clients 4 --duration 30 --json

Starts ``python -m bogv serve`` on a free loopback port over a fresh data directory (or uses
``--url``), then runs asyncio clients with httpx, each in a loop: add an image under a new
key, search with it (it must come back), and every other round delete an earlier key (by
key or by id) and search with that key's image. The run fails (exit 1) on any transport
error, any 5xx or other unexpected status, any record missing after its add returned, and
any deleted key found by a search *issued after* its delete returned. Prints throughput and
p50/p99 latency per operation. Loopback only; bounded in time; stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import io
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import skimage.data
from launch import API, launched
from PIL import Image

PHOTOS = ("coffee", "chelsea", "astronaut", "rocket", "camera", "motorcycle_left")


@functools.cache
def photo(name: str) -> Image.Image:
    """A photograph shipped inside scikit-image's wheel (no download)."""
    with Image.open(next(Path(skimage.data.__file__).parent.glob(f"{name}.*"))) as img:
        return img.convert("RGB")


def images(client: int, count: int) -> list[bytes]:
    """Distinct JPEG crops of real photographs, different for every client."""
    out = []
    for i in range(count):
        src = photo(PHOTOS[(client + i) % len(PHOTOS)])
        side = 96 + (client * 7 + i * 3) % 64
        x = (client * 37 + i * 23) % (src.width - side)
        y = (client * 11 + i * 17) % (src.height - side)
        buf = io.BytesIO()
        src.crop((x, y, x + side, y + side)).save(buf, "JPEG", quality=85)
        out.append(buf.getvalue())
    return out


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    server_errors: int = 0
    deleted: dict[str, float] = field(default_factory=dict)
    """key -> when its delete returned (monotonic seconds)."""
    stale_deletes: list[str] = field(default_factory=list)
    missing_adds: list[str] = field(default_factory=list)

    def record(self, op: str, seconds: float) -> None:
        self.latencies.setdefault(op, []).append(seconds)


async def call(http: httpx.AsyncClient, tally: Tally, op: str, path: str,
               **kwargs: object) -> tuple[object, float]:
    """POST, time it, check the envelope; returns (data, the monotonic time it was issued)."""
    issued = time.monotonic()
    try:
        resp = await http.post(API + path, **kwargs)  # type: ignore[arg-type]
    except httpx.HTTPError as exc:
        tally.errors.append(f"{op}: {type(exc).__name__}: {exc}")
        return None, issued
    tally.record(op, time.monotonic() - issued)
    if resp.status_code >= 500:
        tally.server_errors += 1
    body = resp.json()
    if resp.status_code != 200 or body.get("code") != 200:
        tally.errors.append(f"{op}: HTTP {resp.status_code}: {body.get('msg')}")
        return None, issued
    return body["data"], issued


async def client_loop(n: int, pics: list[bytes], base: str, deadline: float,
                      tally: Tally) -> None:
    live: list[tuple[str, int]] = []  # (key, index of its image)
    rounds = 0
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        while time.monotonic() < deadline:
            pic = rounds % len(pics)
            key = f"c{n}-r{rounds}"
            added, _ = await call(http, tally, "add", "/add/file", data={"key": key},
                                  files={"file": (f"{key}.jpg", pics[pic])})
            hits = await search(http, tally, pics[pic])
            if added is True and hits is not None:
                if key not in {h["key"] for h in hits}:
                    tally.missing_adds.append(key)
                live.append((key, pic))
            if rounds % 2 and live:
                await delete(http, tally, live.pop(0), pics, by_id=rounds % 4 == 1)
            rounds += 1


async def search(http: httpx.AsyncClient, tally: Tally, pic: bytes) -> list[dict] | None:
    hits, issued = await call(http, tally, "search", "/search/file", data={"limit": "50"},
                              files={"file": ("q.jpg", pic)})
    if not isinstance(hits, list):
        return None
    for hit in hits:  # no key deleted before this search was issued may come back
        gone = tally.deleted.get(hit["key"])
        if gone is not None and gone < issued:
            tally.stale_deletes.append(hit["key"])
    return hits


async def delete(http: httpx.AsyncClient, tally: Tally, victim: tuple[str, int],
                 pics: list[bytes], *, by_id: bool) -> None:
    key, pic = victim
    if by_id:
        hits = await search(http, tally, pics[pic])
        ids = [h["id"] for h in hits or [] if h["key"] == key]
        count, _ = await call(http, tally, "delete", "/del/id",
                              json={"id": ",".join(map(str, ids)) or "0"})
    else:
        count, _ = await call(http, tally, "delete", "/del/key", json={"key": key})
    if count == 1:
        tally.deleted[key] = time.monotonic()
    else:
        tally.errors.append(f"delete {key}: deleted {count}, expected 1")
    await search(http, tally, pics[pic])  # at once: the deleted key must be gone


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q) * 1000) if values else 0.0


def report(tally: Tally, seconds: float, clients: int) -> dict[str, object]:
    ops = {op: {"count": len(v), "per_s": len(v) / seconds, "p50_ms": percentile(v, 50),
                "p99_ms": percentile(v, 99)} for op, v in sorted(tally.latencies.items())}
    every = [x for v in tally.latencies.values() for x in v]
    ops["all"] = {"count": len(every), "per_s": len(every) / seconds,
                  "p50_ms": percentile(every, 50), "p99_ms": percentile(every, 99)}
    return {"clients": clients, "seconds": round(seconds, 1), "operations": ops,
            "errors": len(tally.errors), "server_errors": tally.server_errors,
            "stale_deletes": len(tally.stale_deletes), "missing_adds": len(tally.missing_adds),
            "deleted": len(tally.deleted), "first_errors": tally.errors[:5]}


def table(result: dict[str, object]) -> str:
    lines = [f"{result['clients']} clients, {result['seconds']} s, loopback",
             f"{'operation':<10}{'count':>8}{'per s':>9}{'p50 ms':>9}{'p99 ms':>9}"]
    for op, row in result["operations"].items():  # type: ignore[union-attr]
        lines.append(f"{op:<10}{row['count']:>8}{row['per_s']:>9.1f}"
                     f"{row['p50_ms']:>9.1f}{row['p99_ms']:>9.1f}")
    lines.append(f"errors {result['errors']}, 5xx {result['server_errors']}, deleted keys "
                 f"{result['deleted']}, found after delete {result['stale_deletes']}, "
                 f"missing after add {result['missing_adds']}")
    return "\n".join(lines)


async def run(base: str, clients: int, duration: float) -> dict[str, object]:
    tally = Tally()
    pics = [images(n, 24) for n in range(clients)]
    start = time.monotonic()
    await asyncio.gather(*(client_loop(n, pics[n], base, start + duration, tally)
                           for n in range(clients)))
    return report(tally, time.monotonic() - start, clients)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of load")
    parser.add_argument("--url", help="a running bogv (default: start one on loopback)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    if args.url:
        result = asyncio.run(run(args.url, args.clients, args.duration))
    else:
        with tempfile.TemporaryDirectory(prefix="bogv-load-") as tmp, \
                launched(Path(tmp) / "data", timeout=180) as server:
            result = asyncio.run(run(server.url, args.clients, args.duration))
    print(json.dumps(result) if args.json else table(result))
    clean = not (result["errors"] or result["server_errors"] or result["stale_deletes"]
                 or result["missing_adds"])
    sys.exit(0 if clean else 1)


if __name__ == "__main__":
    main()
