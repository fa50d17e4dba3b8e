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
from collections.abc import Callable
from pathlib import Path
from unittest.mock import patch

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


def _every_pixel(pattern: Callable[..., pixels.Pattern]) -> Callable[..., pixels.Pattern]:
    """``pixels.pattern`` comparing every pixel, drawn over or not."""
    return lambda img, drawn=None: pattern(img)


_VARIANTS: dict[str, Callable[[], contextlib.AbstractContextManager[object]]] = {
    # as before issue 17: ``scoring.check_uncovered`` never asks for the second look
    "  ... without the second look (issue 17)":
        lambda: patch.object(scoring, "UNCOVERED_SIMILARITY", math.inf),
    # ``content.uncovered_cells`` finds no cells: the query's views alone
    "  ... without the vector outside overlays":
        lambda: patch.object(service_module, "uncovered_cells", lambda small, drawn: None),
    "  ... with a pixel check of every pixel":
        lambda: patch.object(pixels, "pattern", _every_pixel(pixels.pattern)),
    # ``service.compare_aligned`` compares no candidate's pixels where its matches put it
    "  ... without pixels where keypoints put them":
        lambda: patch.object(service_module, "compare_aligned", lambda *args: None),
}
"""Searches timed beside bogv's as shipped: each without one of its later checks."""


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
        lat_plain, lat_bogv = [], []
        lat_variant: dict[str, list[float]] = {name: [] for name in _VARIANTS}
        for q in queries:  # interleaved, so that all of them see the same load
            lat_plain.append(_timed(lambda q=q: plain.search(_plain_vectors(embedder, [q]), 10)))
            lat_bogv.append(_timed(lambda q=q: service.search(q, 10)))
            for name, variant in _VARIANTS.items():
                with variant():
                    lat_variant[name].append(_timed(lambda q=q: service.search(q, 10)))
        service.close()
        plain.close()
        size_plain = _store_bytes(plain.uri) / len(blobs)
        size_bogv = _store_bytes(service.store.uri) / len(blobs)
        files_bogv = sum(f.stat().st_size for f in service.files.root.rglob("*")
                         if f.is_file()) / len(blobs)
    n = len(blobs)
    med_p, med_b = statistics.median(lat_plain), statistics.median(lat_bogv)
    return [
        (f"import, ms per image ({n} images)", f"{1000 * t_plain / n:.1f}",
         f"{1000 * t_bogv / n:.1f}", f"{t_bogv / t_plain:.2f}x"),
        (f"search, median ms ({len(queries)} queries)", f"{1000 * med_p:.1f}",
         f"{1000 * med_b:.1f}", f"{med_b / med_p:.2f}x"),
        *((name, f"{1000 * med_p:.1f}", f"{1000 * med:.1f}", f"{med / med_p:.2f}x")
          for name, med in ((name, statistics.median(v)) for name, v in lat_variant.items())),
        ("Milvus Lite files, KB per image", f"{size_plain / 1024:.1f}",
         f"{size_bogv / 1024:.1f}", f"{size_bogv / size_plain:.2f}x"),
        ("record files (thumb, keypoints), KB/image", "0.0",
         f"{files_bogv / 1024:.1f}", "-"),
    ]
