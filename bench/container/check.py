"""Black-box check of running bogv containers over HTTP, for bench/container/container.sh.

Adds a few pictures through one API (`--add`), then searches an edited copy of each through
every `--search` API until the added record comes first, reads its thumbnail there (record
files live on the volume the replicas share), and deletes them again. With `--imported`,
also finds, exactly once, the picture that `--write-import` put in the folder a replica
imports at start-up. Only HTTP,
as a client would: the store's consistency is whatever the service promises, so a search
through another replica is retried for at most `--visible-within` seconds before it counts
as a failure. It runs inside the bogv image (PIL, numpy and httpx are there) on the host's
network, against the ports the containers publish on 127.0.0.1. Exit status 1 on any
failure, with the reason on stderr.
"""

from __future__ import annotations

import argparse
import io
import sys
import time

import httpx
import numpy as np
from PIL import Image, ImageDraw

API = "/api/image/sim"


def picture(seed: int) -> bytes:
    """A textured 480x360 PNG of its own: shapes and noise give ORB keypoints to verify."""
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, (45, 60, 3), dtype=np.uint8)).resize(
        (480, 360), Image.BICUBIC)
    draw = ImageDraw.Draw(img)
    for _ in range(40):
        x, y = rng.integers(0, 440), rng.integers(0, 320)
        w, h = rng.integers(10, 120, 2)
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((int(x), int(y), int(x + w), int(y + h)), fill=colour, outline=(0, 0, 0))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


IMPORT_SEED = 999
"""The picture `--write-import` writes, so `--imported` can search for it."""


def edited(png: bytes) -> bytes:
    """The picture cropped by 8% on two sides and saved as JPEG: a copy, not the same bytes."""
    img = Image.open(io.BytesIO(png)).convert("RGB")
    w, h = img.size
    out = io.BytesIO()
    img.crop((int(w * 0.08), int(h * 0.08), w, h)).save(out, "JPEG", quality=80)
    return out.getvalue()


def fail(message: str) -> None:
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def wait_ready(client: httpx.Client, base: str, timeout: float) -> float:
    """Seconds until `/readyz` answers 200 (model loaded, Milvus reachable)."""
    start = time.monotonic()
    last = "no answer"
    while time.monotonic() - start < timeout:
        try:
            r = client.get(f"{base}/readyz", timeout=5)
            if r.status_code == 200:
                return time.monotonic() - start
            last = f"{r.status_code} {r.text[:200]}"
        except httpx.HTTPError as e:
            last = repr(e)
        time.sleep(1)
    fail(f"{base}/readyz not ready in {timeout:.0f} s: {last}")
    return timeout


def add(client: httpx.Client, base: str, png: bytes, key: str) -> float:
    start = time.monotonic()
    r = client.post(f"{base}{API}/add/file", files={"file": (f"{key}.png", png, "image/png")},
                    data={"key": key})
    elapsed = time.monotonic() - start
    if r.status_code != 200 or r.json().get("data") is not True:
        fail(f"add {key} through {base}: {r.status_code} {r.text[:300]}")
    if r.headers.get("x-bogv-created") != "true":
        fail(f"add {key} through {base}: X-Bogv-Created={r.headers.get('x-bogv-created')}")
    return elapsed


def search(client: httpx.Client, base: str, query: bytes) -> tuple[list[dict], float]:
    start = time.monotonic()
    r = client.post(f"{base}{API}/search/file", files={"file": ("q.jpg", query, "image/jpeg")},
                    data={"limit": "3"})
    elapsed = time.monotonic() - start
    if r.status_code != 200:
        fail(f"search through {base}: {r.status_code} {r.text[:300]}")
    return r.json()["data"], elapsed


def found(client: httpx.Client, base: str, query: bytes, key: str, within: float,
          ) -> tuple[dict, float, float]:
    """The first hit once it is `key`, seconds until then, and the last search's latency."""
    start = time.monotonic()
    while True:
        hits, latency = search(client, base, query)
        if hits and hits[0]["key"] == key:
            return hits[0], time.monotonic() - start, latency
        if time.monotonic() - start > within:
            fail(f"search through {base} did not find {key} first within {within:.0f} s: {hits}")
        time.sleep(0.2)


def thumbnail(client: httpx.Client, base: str, hit: dict) -> None:
    r = client.get(f"{base}{API}/thumb/{hit['id']}")
    if r.status_code != 200 or r.headers.get("content-type") != "image/jpeg":
        fail(f"thumbnail of {hit} through {base}: {r.status_code} {r.text[:200]}")


def imported(client: httpx.Client, base: str, filepath: str, within: float) -> float:
    """Seconds until the start-up import's picture is found, stored once, as `filepath`."""
    query = edited(picture(IMPORT_SEED))
    start = time.monotonic()
    while True:
        hits, _ = search(client, base, query)
        stored = [h for h in hits if h["filepath"] == filepath]
        if len(stored) > 1:
            fail(f"the imported picture is stored {len(stored)} times: {hits}")
        if stored and hits[0] is stored[0]:
            thumbnail(client, base, stored[0])
            return time.monotonic() - start
        if time.monotonic() - start > within:
            fail(f"search through {base} did not find {filepath} first within {within:.0f} s: "
                 f"{hits}")
        time.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-import", metavar="PATH",
                        help="only write the start-up import's picture to PATH, then exit")
    parser.add_argument("--imported", metavar="FILEPATH",
                        help="also find that picture, imported at start-up, stored as FILEPATH")
    parser.add_argument("--add", help="base URL of the API to add through")
    parser.add_argument("--search", action="append",
                        help="base URL of an API to search through (repeatable)")
    parser.add_argument("--prefix", help="key prefix, unique to this run")
    parser.add_argument("--pictures", type=int, default=3)
    parser.add_argument("--ready-within", type=float, default=300)
    parser.add_argument("--visible-within", type=float, default=30)
    args = parser.parse_args()
    if args.write_import:
        with open(args.write_import, "wb") as f:
            f.write(picture(IMPORT_SEED))
        return
    if not (args.add and args.search and args.prefix):
        parser.error("--add, --search and --prefix are required")

    with httpx.Client(timeout=60) as client:
        for base in dict.fromkeys([args.add, *args.search]):
            print(f"{base}: ready after {wait_ready(client, base, args.ready_within):.1f} s")
        pictures = {f"{args.prefix}-{i}": picture(1000 + i) for i in range(args.pictures)}
        for key, png in pictures.items():
            print(f"add {key} through {args.add}: {add(client, args.add, png, key) * 1000:.0f} ms")
        for base in args.search:
            for key, png in pictures.items():
                hit, visible, latency = found(client, base, edited(png), key, args.visible_within)
                if hit["match"] not in ("copy", "exact"):
                    fail(f"search through {base}: {key} came first but as {hit}")
                thumbnail(client, base, hit)
                print(f"search through {base}: {key} first as {hit['match']} "
                      f"(score {hit['score']:.3f}) after {visible:.2f} s, last search "
                      f"{latency * 1000:.0f} ms")
        if args.imported:
            for base in args.search:
                seconds = imported(client, base, args.imported, args.ready_within)
                print(f"search through {base}: the start-up import's {args.imported} first, "
                      f"once, after {seconds:.1f} s")
        keys = ",".join(pictures)
        r = client.post(f"{args.add}{API}/del/key", json={"key": keys})
        if r.status_code != 200 or r.json()["data"] != len(pictures):
            fail(f"delete {keys} through {args.add}: {r.status_code} {r.text[:300]}")
        for key, png in pictures.items():
            hits, _ = search(client, args.add, edited(png))
            if any(h["key"] == key for h in hits):
                fail(f"{key} still found through {args.add} after its delete: {hits}")
        print(f"deleted {len(pictures)} through {args.add}; gone from its next searches")
    print("OK")


if __name__ == "__main__":
    main()
