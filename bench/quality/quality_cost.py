"""What bogv's descriptor costs next to the plain one: import time, search latency, size.

Both run end to end on real dev images through a real Milvus Lite file each: decode,
preprocess, the network, pooling, insert (import), and decode to ranked hits (search).
The plain side is the seed's pipeline (one average-pooled vector per image, no keypoints);
the bogv side is ``Service.add_prepared`` and ``Service.search`` as shipped. Ratios, not
absolute times, are the result: the machine is shared.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from bogv import imaging
from bogv import service as service_module
from bogv.config import Settings
from bogv.model import pixels, scoring
from bogv.model.embedder import Embedder
from bogv.model.preprocess import SIZE, embed_tensor
from bogv.service import Service, build_service
from bogv.store import Store

__all__ = ["measure"]

PLAIN_DIM = 1280
"""The plain vector is the head's channels averaged, like the seed's: no projection."""


def _store_bytes(uri: str) -> int:
    """Milvus Lite's data file and whatever it keeps beside it, named after it."""
    db = Path(uri)
    return sum(f.stat().st_size for f in db.parent.rglob(f"*{db.name}*") if f.is_file())


def _plain_vectors(embedder: Embedder, blobs: list[bytes]) -> np.ndarray:
    imgs = [imaging.decode(b, max_pixels=1 << 30, min_side=SIZE) for b in blobs]
    vec = embedder.run(np.stack([embed_tensor(i) for i in imgs]), "fmap").mean(axis=(2, 3))
    return (vec / np.linalg.norm(vec, axis=1, keepdims=True)).astype(np.float32)


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


@contextlib.contextmanager
def _no_second_look() -> Iterator[None]:
    """Searches as before issue 17: no look at the keypoints outside overlays
    (``scoring.check_uncovered`` never asks)."""
    saved = scoring.UNCOVERED_SIMILARITY
    scoring.UNCOVERED_SIMILARITY = math.inf
    try:
        yield
    finally:
        scoring.UNCOVERED_SIMILARITY = saved


@contextlib.contextmanager
def _no_vector_outside() -> Iterator[None]:
    """Searches as before the vector outside overlays (``content.uncovered_cells`` finds
    no cells: the query's views alone)."""
    saved = service_module.uncovered_cells
    service_module.uncovered_cells = lambda drawn: None
    try:
        yield
    finally:
        service_module.uncovered_cells = saved


@contextlib.contextmanager
def _whole_pixel_check() -> Iterator[None]:
    """Searches whose pixel check compares every pixel, drawn over or not."""
    saved = pixels.pattern
    pixels.pattern = lambda img, drawn=None: saved(img)
    try:
        yield
    finally:
        pixels.pattern = saved


def measure(files: list[Path], queries: list[bytes], batch: int = 16) -> list[tuple[str, ...]]:
    """Rows for the cost table: (what, plain, bogv, ratio)."""
    blobs = [f.read_bytes() for f in files]
    with tempfile.TemporaryDirectory() as tmp:
        service: Service = build_service(Settings(data_dir=Path(tmp) / "bogv"))
        embedder = service.embedder
        plain = Store(str(Path(tmp) / "plain" / "plain.db"), model_id="plain-avg", dim=PLAIN_DIM)

        def import_bogv() -> None:
            for a in range(0, len(blobs), batch):
                chunk = [service.prepare(b) for b in blobs[a:a + batch]]
                service.add_prepared(chunk, [None] * len(chunk), [""] * len(chunk))

        def import_plain() -> None:
            for a in range(0, len(blobs), batch):
                chunk = blobs[a:a + batch]
                plain.insert([("k", "", "s")] * len(chunk), _plain_vectors(embedder, chunk))

        t_plain, t_bogv = _timed(import_plain), _timed(import_bogv)
        service.search(queries[0])  # warm both paths up
        plain.search(_plain_vectors(embedder, queries[:1]), 10)
        lat_plain, lat_bogv, lat_first, lat_whole, lat_px = [], [], [], [], []
        for q in queries:  # interleaved, so that all five see the same load
            lat_plain.append(_timed(lambda q=q: plain.search(_plain_vectors(embedder, [q]), 10)))
            lat_bogv.append(_timed(lambda q=q: service.search(q, 10)))
            with _no_second_look():
                lat_first.append(_timed(lambda q=q: service.search(q, 10)))
            with _no_vector_outside():
                lat_whole.append(_timed(lambda q=q: service.search(q, 10)))
            with _whole_pixel_check():
                lat_px.append(_timed(lambda q=q: service.search(q, 10)))
        service.close()
        plain.close()
        size_plain = _store_bytes(plain.uri) / len(blobs)
        size_bogv = _store_bytes(service.store.uri) / len(blobs)
        files_bogv = sum(f.stat().st_size for f in service.files.root.rglob("*")
                         if f.is_file()) / len(blobs)
    n = len(blobs)
    med_p, med_b = statistics.median(lat_plain), statistics.median(lat_bogv)
    med_f, med_w = statistics.median(lat_first), statistics.median(lat_whole)
    med_x = statistics.median(lat_px)
    return [
        (f"import, ms per image ({n} images)", f"{1000 * t_plain / n:.1f}",
         f"{1000 * t_bogv / n:.1f}", f"{t_bogv / t_plain:.2f}x"),
        (f"search, median ms ({len(queries)} queries)", f"{1000 * med_p:.1f}",
         f"{1000 * med_b:.1f}", f"{med_b / med_p:.2f}x"),
        ("  ... without the second look (issue 17)", f"{1000 * med_p:.1f}",
         f"{1000 * med_f:.1f}", f"{med_f / med_p:.2f}x"),
        ("  ... without the vector outside overlays", f"{1000 * med_p:.1f}",
         f"{1000 * med_w:.1f}", f"{med_w / med_p:.2f}x"),
        ("  ... with a pixel check of every pixel", f"{1000 * med_p:.1f}",
         f"{1000 * med_x:.1f}", f"{med_x / med_p:.2f}x"),
        ("Milvus Lite files, KB per image", f"{size_plain / 1024:.1f}",
         f"{size_bogv / 1024:.1f}", f"{size_bogv / size_plain:.2f}x"),
        ("record files (thumb, keypoints), KB/image", "0.0",
         f"{files_bogv / 1024:.1f}", "-"),
    ]
