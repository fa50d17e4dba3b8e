"""Pooling the network's last feature map into retrieval vectors.

Why these choices (measured by ``bench/quality/quality.py``, see the README):

- GeM pooling (generalised mean, p = 3) instead of the average: it weights the strongest
  activations, the objects, more than flat background. Edited copies are found and accepted
  more often, classes rank better, at no cost.
- One vector per stored image, the whole frame. A query is searched with that vector too,
  and also as the picture inside it (``content.query_views``) and pooled over the cells
  of its map clear of what is drawn over it (``content.uncovered_cells``). A second
  stored vector of a degraded copy (greyscale, half resolution) was tried and dropped: it
  bought +0.01 recall@1 and +0.01 accepted copies for twice the inference per import and
  twice the vectors in memory. Region vectors pooled from the shared map (corners,
  centre) were dropped too: no more crops found, five more rows per image. What tells
  copies apart is the keypoint check (``bogv.model.geometry``), not more vectors.
- The 1280 GeM channels are projected to 512 by a PCA with partial whitening (each
  component divided by its standard deviation to the power 0.75), learned once on the dev
  images the benchmark uses as distractors and shipped as ``pca512.npz``
  (``tools/projection.py`` regenerates it). Why: Milvus Lite holds every vector twice in
  memory and a third time while it loads; at 100k images the 1280-d store peaked at 2.5 GB,
  the 512-d one at ~1.2 GB. Quality went up, not down: the whitening lowers the weight of
  the few directions every photo shares, so a look-alike scores lower and a copy stands
  out (recall@1 0.96 -> 0.97, README). Full whitening found as many copies but ranked
  classes worse; no whitening lost recall.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

import numpy as np

from bogv._types import Vectors

__all__ = ["DIM", "PROJECTION", "Projection", "describe", "gem", "projection"]

PROJECTION = Path(__file__).with_name("pca512.npz")
"""``mean`` (1280,) and ``matrix`` (1280, 512): the learned projection."""
DIM = 512
"""Dimensions of a stored vector."""


def _l2(x: np.ndarray) -> Vectors:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    unit: Vectors = (x / np.maximum(norms, 1e-12)).astype(np.float32)
    return unit


def gem(fmap: np.ndarray, cells: np.ndarray | None = None) -> Vectors:
    """``(n, c, h, w)`` non-negative activations to ``(n, c)`` unit GeM (p = 3) vectors;
    with ``cells`` (``(n, h, w)`` weights), a weighted mean over the map's cells.

    Cubes by multiplication: several times faster than ``np.power`` on import batches.
    """
    f = fmap.astype(np.float32, copy=False)
    if cells is None:
        return _l2(np.cbrt(np.mean(f * f * f, axis=(2, 3))))
    w = cells[:, None].astype(np.float32)
    return _l2(np.cbrt(np.sum(f * f * f * w, axis=(2, 3))
                       / np.maximum(np.sum(w, axis=(2, 3)), 1e-12)))


class Projection:
    """A centring and a linear map from GeM vectors to ``DIM`` dimensions."""

    def __init__(self, mean: np.ndarray, matrix: np.ndarray) -> None:
        self.mean = mean.astype(np.float32)
        # Rounded as it is stored, so a fitted projection and the shipped one are the same.
        self.matrix = matrix.astype(np.float16).astype(np.float32)
        digest = hashlib.sha256(self.mean.tobytes() + self.matrix.tobytes())
        self.version = f"pca{self.matrix.shape[1]}-{digest.hexdigest()[:8]}"
        """Names the projection in the model id: vectors of two projections never mix."""

    def __call__(self, vectors: np.ndarray) -> Vectors:
        # Not ``@``: numpy's OpenBLAS answers a matrix product with threads that then spin
        # for milliseconds, a core burnt after every batch (import went from 10 to 16 CPU ms
        # per image). einsum's own loop costs ~0.08 ms per image and wakes nobody.
        return _l2(np.einsum("ij,jk->ik", vectors - self.mean, self.matrix, optimize=False))

    def save(self, path: Path) -> None:
        np.savez(path, mean=self.mean, matrix=self.matrix.astype(np.float16))


@cache
def projection() -> Projection:
    """The shipped projection, read once (the matrix is stored as float16: 1.3 MB)."""
    with np.load(PROJECTION) as data:
        return Projection(data["mean"], data["matrix"])


def describe(fmap: np.ndarray, cells: np.ndarray | None = None) -> Vectors:
    """``(n, 1280, h, w)`` feature maps to ``(n, DIM)`` unit retrieval vectors (``cells``:
    pooled over those cells of the map alone, as in ``gem``)."""
    return projection()(gem(fmap, cells))
