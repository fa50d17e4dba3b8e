"""The methods bench/quality/quality.py compares: how an image becomes one or more vectors.

A method gives each indexed image one or more vectors (``index``) and each query one or more
(``query``); a query scores an indexed image by the best pair. Methods pool feature maps,
and the maps of every image set are computed once per geometry and view and kept on disk
(float16), so trying another pooling costs seconds, not a pass over 15,000 images.
"""

from __future__ import annotations

import hashlib
import inspect
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import imagehash
import numpy as np
from PIL import Image

from bogv import service
from bogv.model import content, descriptor, geometry, scoring
from bogv.model.content import CELLS, drawn_over, query_views, uncovered_cells
from bogv.model.embedder import Embedder
from bogv.model.preprocess import embed_tensor

__all__ = ["DEFAULT", "METHODS", "Features", "Method", "Runner"]

BATCH = 32
View = tuple[int, str]
"""Input side in pixels and a named transform of the image (``_VIEWS``)."""


class Features:
    """One batch: its feature maps by view, the images when a method needs pixels, and the
    cells of each whole map clear of overlays (``content.uncovered_cells``, all of them
    when it finds none) when a method pools over those."""

    def __init__(self, maps: dict[View, np.ndarray], images: list[Image.Image] | None,
                 cells: np.ndarray | None = None) -> None:
        self.maps, self._images, self.cells = maps, images, cells

    def fmap(self, size: int = 224, view: str = "whole") -> np.ndarray:
        return self.maps[size, view].astype(np.float32)

    @property
    def images(self) -> list[Image.Image]:
        assert self._images is not None
        return self._images


def _degraded(img: Image.Image) -> Image.Image:
    """Greyscale, softened, at low resolution: what heavy edits leave of a picture."""
    small = img.convert("L").resize((112, 112), Image.Resampling.BILINEAR, reducing_gap=3.0)
    return small.convert("RGB")


_VIEWS: dict[str, Callable[[Image.Image, int], np.ndarray]] = {
    "whole": embed_tensor,
    "degraded": lambda img, size: embed_tensor(_degraded(img), size),
    "content": lambda img, size: embed_tensor(query_views(img)[-1], size),
}


def l2(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


def avg(fmap: np.ndarray) -> np.ndarray:
    return l2(fmap.mean(axis=(2, 3)))


def gem(fmap: np.ndarray, p: float = 3.0) -> np.ndarray:
    if p == 3.0:  # multiplications: several times faster than np.power
        return l2(np.cbrt(np.mean(fmap * fmap * fmap, axis=(2, 3))))
    return l2(np.power(np.mean(np.power(fmap, p), axis=(2, 3)), 1 / p))


def boxes(fmap: np.ndarray, spans: Iterable[tuple[float, float, float, float]],
          p: float = 3.0) -> np.ndarray:
    """GeM over fractional boxes (x0, y0, x1, y1) of the map: (n, len(spans), c)."""
    h, w = fmap.shape[2:]
    out = [np.zeros((len(fmap), 0, fmap.shape[1]), np.float32)]
    for x0, y0, x1, y1 in spans:
        a, b = round(y0 * h), max(round(y1 * h), round(y0 * h) + 1)
        c, d = round(x0 * w), max(round(x1 * w), round(x0 * w) + 1)
        out.append(gem(fmap[:, :, a:b, c:d], p)[:, None, :])
    return np.concatenate(out, axis=1)


def _phash(images: list[Image.Image]) -> np.ndarray:
    bits = np.array([imagehash.phash(img).hash.ravel() for img in images], np.float32)
    return (bits * 2 - 1) / 8  # unit +-1/8 vectors: inner product = 1 - 2 * hamming / 64


@dataclass(frozen=True)
class Method:
    name: str
    index: Callable[[Features], list[np.ndarray]]
    query: Callable[[Features], list[np.ndarray]]
    needs: tuple[View, ...] = ((224, "whole"),)
    """Feature maps ``index`` reads."""
    query_needs: tuple[View, ...] = ((224, "whole"),)
    """Feature maps ``query`` reads."""
    pixels: bool = False
    threshold: float | None = None
    """A fixed copy threshold on the method's score (bogv's with its checks: its own,
    ``scoring.COPY_SCORE``); None: choose on the calibration split."""
    layout: Callable[[Features], list[np.ndarray]] | None = None
    """Query vectors for the second stage (``verify``), from the query's whole map."""
    verify: Callable[[np.ndarray, np.ndarray, float], float] | None = None
    """Second stage: (query layout, a candidate's vectors, first-stage score) -> score."""
    geometric: int = 0
    """Second stage: bogv's keypoint check (``bogv.model.geometry``) on up to this many of
    the best candidates (``service.count_inliers`` decides how many)."""
    pixel_check: bool = False
    """Third stage: bogv's pixel check (``bogv.model.pixels``) of the best-scoring candidate."""
    cells: bool = False
    """``query`` reads ``Features.cells``."""


def _one(fn: Callable[[Features], np.ndarray]) -> Callable[[Features], list[np.ndarray]]:
    return lambda f: list(fn(f)[:, None, :])


CORNERS_5 = [(0, 0, 5 / 7, 5 / 7), (2 / 7, 0, 1, 5 / 7), (0, 2 / 7, 5 / 7, 1),
             (2 / 7, 2 / 7, 1, 1), (1 / 7, 1 / 7, 6 / 7, 6 / 7)]


def _multi(spans: list[tuple[float, float, float, float]], views: tuple[str, ...] = ()
           ) -> Callable[[Features], list[np.ndarray]]:
    """Whole frame, regions of the same map, and the whole frame of other views."""
    def index(f: Features) -> list[np.ndarray]:
        fm = f.fmap()
        parts = [gem(fm)[:, None, :], boxes(fm, spans)]
        parts += [gem(f.fmap(224, v))[:, None, :] for v in views]
        return list(np.concatenate(parts, axis=1))
    return index


_FC: list[np.ndarray] = []


def _semantic(f: Features, weight: float) -> list[np.ndarray]:
    """GeM joined with the square roots of the ImageNet class probabilities."""
    if not _FC:
        from bogv.model.embedder import weights_path
        from bogv.model.weights import load_legacy_state_dict
        w = load_legacy_state_dict(weights_path())
        _FC.extend([w["_fc.weight"].astype(np.float32), w["_fc.bias"].astype(np.float32)])
    fm = f.fmap()
    logits = fm.mean(axis=(2, 3)) @ _FC[0].T + _FC[1]
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    both = np.concatenate([gem(fm), weight * np.sqrt(probs)], axis=1)
    return list(l2(both)[:, None, :])


_FLIP = [0, 2, 1, 4, 3, 5]
"""View order of a mirrored image: corners swap left and right, whole and centre stay."""


def _aligned(lq: np.ndarray, rows: np.ndarray) -> float:
    """Mean similarity of corresponding views (as is, or mirrored): the layout agrees."""
    return float(max(np.mean(np.sum(lq * rows, axis=1)),
                     np.mean(np.sum(lq[_FLIP] * rows, axis=1))))


def _verify_aligned_or_crop(lq: np.ndarray, rows: np.ndarray, first: float) -> float:
    """Whole-frame hypothesis needs every region to agree; a crop its one region."""
    return max(_aligned(lq, rows), float(np.max(rows[1:] @ lq[0])))


def _verify_blend(lq: np.ndarray, rows: np.ndarray, first: float) -> float:
    whole = float(lq[0] @ rows[0])
    return max(0.5 * (whole + _aligned(lq, rows)), float(np.max(rows[1:] @ lq[0])))


def _bogv(f: Features) -> list[np.ndarray]:
    """What bogv stores (``Embedder.embed_tensors``), from the cached maps."""
    return list(descriptor.describe(f.fmap())[:, None, :])


def _bogv_query(f: Features) -> list[np.ndarray]:
    """What bogv searches with (``Embedder.embed_tensors`` of ``service.prepare_query``):
    the whole frame, the picture inside it, and the whole frame pooled outside what is
    drawn over it (the whole frame's vector again when a view or the cells add nothing:
    the best pair is unchanged)."""
    whole = f.fmap()
    assert f.cells is not None
    return list(np.stack([descriptor.describe(whole),
                          descriptor.describe(f.fmap(224, "content")),
                          descriptor.describe(whole, f.cells)], axis=1))


_BOGV_QUERY = ((224, "whole"), (224, "content"))

DEFAULT = ("phash", "plain-avg", "gem3", "bogv", "bogv+keypoints", "bogv+geometry")
"""What a plain run compares: the baselines and bogv as shipped. The other methods are the
experiments the README reports (``--methods`` runs them)."""

METHODS: dict[str, Method] = {m.name: m for m in (
    Method("phash", _one(lambda f: _phash(f.images)), _one(lambda f: _phash(f.images)),
           needs=(), pixels=True),
    Method("plain-avg", _one(lambda f: avg(f.fmap())), _one(lambda f: avg(f.fmap()))),
    Method("gem3", _one(lambda f: gem(f.fmap())), _one(lambda f: gem(f.fmap()))),
    Method("gem3-regions5", _multi(CORNERS_5), _one(lambda f: gem(f.fmap()))),
    Method("reg5+deg", _multi(CORNERS_5, ("degraded",)), _one(lambda f: gem(f.fmap())),
           needs=((224, "whole"), (224, "degraded"))),
    Method("bogv", _bogv, _bogv_query, query_needs=_BOGV_QUERY, cells=True),
    Method("bogv+keypoints", _bogv, _bogv_query, query_needs=_BOGV_QUERY,
           threshold=scoring.COPY_SCORE, geometric=service.DEEPER, cells=True),
    Method("bogv+geometry", _bogv, _bogv_query, query_needs=_BOGV_QUERY,
           threshold=scoring.COPY_SCORE, geometric=service.DEEPER, pixel_check=True,
           cells=True),
    Method("gem3+deg", _multi([], ("degraded",)), _one(lambda f: gem(f.fmap())),
           needs=((224, "whole"), (224, "degraded"))),
    Method("gem3+sem", lambda f: _semantic(f, 0.7), lambda f: _semantic(f, 0.7)),
    Method("reg5+check", _multi(CORNERS_5), _one(lambda f: gem(f.fmap())),
           layout=_multi(CORNERS_5), verify=_verify_aligned_or_crop),
    Method("reg5+blend", _multi(CORNERS_5), _one(lambda f: gem(f.fmap())),
           layout=_multi(CORNERS_5), verify=_verify_blend),
)}


class Runner:
    """Computes the feature maps of an image set once, on disk, and pools them per method."""

    def __init__(self, embedder: Embedder, folder: Path, key: str) -> None:
        self.embedder, self.folder, self.key = embedder, folder, key

    def _map_path(self, what: str, view: View) -> Path:
        return self.folder / f"fmap-{what}-{view[0]}-{view[1]}-{self.key}.npy"

    def run(self, methods: list[Method], what: str, images: Iterable[Image.Image], n: int,
            side: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        views = sorted({v for m in methods if not m.pixels
                        for v in (m.needs if side == "index" else m.query_needs)})
        missing = [v for v in views if not self._map_path(what, v).exists()]
        out: dict[str, _Acc] = {m.name: _Acc() for m in methods}
        pixel_methods = [m for m in methods if m.pixels]
        if missing or pixel_methods:
            self._first_pass(what, images, n, missing, pixel_methods, side, out)
        maps = {v: np.load(self._map_path(what, v), mmap_mode="r") for v in views}
        cells = (self._cells(what, images, n)
                 if side == "query" and any(m.cells for m in methods) else None)
        for start in range(0, n, 256):
            feats = Features({v: m[start:start + 256] for v, m in maps.items()}, None,
                             None if cells is None else cells[start:start + 256])
            for m in methods:
                if not m.pixels:
                    out[m.name].add(m.index(feats) if side == "index" else m.query(feats))
        return {name: acc.result() for name, acc in out.items()}

    def _cells(self, what: str, images: Iterable[Image.Image], n: int) -> np.ndarray:
        """``content.uncovered_cells`` of every query of a set (all cells when it finds
        none), kept on disk: one more pass over the images the first time, and again
        whenever the code that finds them changes (named by its source)."""
        source = inspect.getsource(content) + inspect.getsource(geometry)
        digest = hashlib.sha256(source.encode()).hexdigest()[:8]
        path = self.folder / f"cells-{what}-{digest}-{self.key}.npy"
        if not path.exists():
            every = np.ones((CELLS, CELLS), np.float32)
            found = [uncovered_cells(grey, drawn_over(grey))
                     for grey in (geometry.grey(img) for img in images)]
            assert len(found) == n, (what, len(found), n)
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, np.stack([every if c is None else c for c in found]))
            tmp.replace(path)
        cells: np.ndarray = np.load(path)
        return cells

    def _first_pass(self, what: str, images: Iterable[Image.Image], n: int,
                    missing: list[View], pixel_methods: list[Method], side: str,
                    out: dict[str, _Acc]) -> None:
        tmp = {v: self._map_path(what, v).with_suffix(".tmp.npy") for v in missing}
        maps = {v: np.lib.format.open_memmap(
            tmp[v], mode="w+", dtype=np.float16,
            shape=(n, 1280, math.ceil(v[0] / 32), math.ceil(v[0] / 32))) for v in missing}
        done = 0
        for batch in _batches(images):
            for v in missing:
                tensors = np.stack([_VIEWS[v[1]](img, v[0]) for img in batch])
                maps[v][done:done + len(batch)] = self.embedder.run(tensors, "fmap")
            feats = Features({}, batch)
            for m in pixel_methods:
                out[m.name].add(m.index(feats) if side == "index" else m.query(feats))
            done += len(batch)
        assert done == n, (what, done, n)
        for v in missing:
            maps[v].flush()
            del maps[v]
            tmp[v].replace(self._map_path(what, v))


@dataclass
class _Acc:
    vecs: list[np.ndarray] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)

    def add(self, per_image: list[np.ndarray]) -> None:
        self.vecs.extend(per_image)
        self.counts.extend(len(v) for v in per_image)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        return np.concatenate(self.vecs).astype(np.float32), np.array(self.counts)


def _batches(images: Iterable[Image.Image]) -> Iterable[list[Image.Image]]:
    batch: list[Image.Image] = []
    for img in images:
        batch.append(img)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


