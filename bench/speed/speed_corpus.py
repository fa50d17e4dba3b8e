"""Inputs for bench/speed/speed.py: phone-sized JPEGs and stored vectors, made once and cached.

Every input is derived from the real dev photos (manifest.csv under the dev data folder):
- ``jpegs``: 1-3 megapixel JPEGs (what phones and shops upload), each a random crop/flip of a
  dev image scaled to a random size in that range and re-encoded at quality 80-95;
- ``query_jpegs``: the same at 1 megapixel, from other crops, for search latency;
- ``stored_vectors``: real descriptors of augmented dev images (crop, flip, rotation, light,
  colour), for filling a store with 10k/100k rows without importing 100k files.
Everything is deterministic (seeded) and cached under the cache folder, so later runs only
pay for what changed; the vector cache is named by the model id, so another descriptor never
reuses stale vectors.
"""

from __future__ import annotations

import csv
import functools
import io
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from bogv.model.embedder import Embedder

__all__ = ["dev_images", "jpegs", "query_jpegs", "stored_vectors"]

MIN_SOURCE_PIXELS = 200_000
"""Dev images smaller than this are icons; scaled to megapixels they would be mostly blur."""


def dev_images(root: Path, *, min_pixels: int = 0) -> list[Path]:
    """The dev photos listed in ``root/manifest.csv`` with at least ``min_pixels`` pixels."""
    with (root / "manifest.csv").open() as f:
        paths = [root / row["path"] for row in csv.DictReader(f)]
    if not min_pixels:
        return paths
    big = []
    for path in paths:
        with Image.open(path) as img:
            if img.width * img.height >= min_pixels:
                big.append(path)
    return big


def _rgb(path: Path) -> Image.Image:
    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img)
        if img.mode in ("RGBA", "LA", "PA", "P"):
            rgba = img.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(white, rgba).convert("RGB")
        return img.convert("RGB")


def _crop(img: Image.Image, rng: random.Random, min_area: float) -> Image.Image:
    area = rng.uniform(min_area, 1.0)
    aspect = rng.uniform(0.75, 1.33)
    w = min(img.width, max(8, round(img.width * (area * aspect) ** 0.5)))
    h = min(img.height, max(8, round(img.height * (area / aspect) ** 0.5)))
    x, y = rng.randint(0, img.width - w), rng.randint(0, img.height - h)
    img = img.crop((x, y, x + w, y + h))
    return ImageOps.mirror(img) if rng.random() < 0.5 else img


def _phone_jpeg(src: Path, seed: int, megapixels: tuple[float, float]) -> bytes:
    rng = random.Random(seed)
    img = _crop(_rgb(src), rng, 0.6)
    scale = (rng.uniform(*megapixels) * 1e6 / (img.width * img.height)) ** 0.5
    img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                     Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=rng.randint(80, 95))
    return buf.getvalue()


def _make_jpegs(folder: Path, sources: list[Path], count: int, seed: int,
                megapixels: tuple[float, float]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{i:06d}.jpg" for i in range(count)]

    def make(i: int) -> None:
        if not paths[i].exists():
            tmp = paths[i].with_suffix(".tmp")
            tmp.write_bytes(_phone_jpeg(sources[i % len(sources)], seed + i, megapixels))
            tmp.replace(paths[i])

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(make, range(count)))
    return paths


def jpegs(cache: Path, devdata: Path, count: int) -> list[Path]:
    """``count`` JPEGs of 1-3 megapixels (the first ``n`` are the same for any count)."""
    sources = dev_images(devdata, min_pixels=MIN_SOURCE_PIXELS)
    return _make_jpegs(cache / "jpegs-1-3mp", sources, count, 0, (1.0, 3.0))


def query_jpegs(cache: Path, devdata: Path, count: int) -> list[Path]:
    """``count`` 1-megapixel JPEGs from other crops of the dev images, for searching."""
    sources = dev_images(devdata, min_pixels=MIN_SOURCE_PIXELS)[::-1]
    return _make_jpegs(cache / "queries-1mp", sources, count, 10_000_000, (1.0, 1.0))


def _augmented(img: Image.Image, rng: random.Random) -> Image.Image:
    """A crop (30-100% of the area), maybe mirrored or rotated, with other light and colour."""
    img = _crop(img, rng, 0.3)
    if rng.random() < 0.3:
        img = img.rotate(rng.uniform(-15, 15), Image.Resampling.BILINEAR,
                         fillcolor=(255, 255, 255))
    enhance = rng.choice((ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color))
    return enhance(img).enhance(rng.uniform(0.7, 1.3))


def _variants(sources: list[Path], per_source: int, indexes: range,
              batch: int) -> Iterator[list[Image.Image]]:
    """Batches of augmented images, made in two threads one batch ahead of the caller."""

    @functools.lru_cache(maxsize=16)
    def base(s: int) -> Image.Image:
        img = _rgb(sources[s % len(sources)])
        img.thumbnail((400, 400), Image.Resampling.BILINEAR)
        return img

    def make(i: int) -> Image.Image:
        s, v = divmod(i, per_source)
        return _augmented(base(s), random.Random(s * 1000 + v))

    with ThreadPoolExecutor(2) as pool:
        ahead = None
        for start in range(indexes.start, indexes.stop, batch):
            chunk = pool.map(make, range(start, min(start + batch, indexes.stop)))
            if ahead is not None:
                yield list(ahead)
            ahead = chunk
        if ahead is not None:
            yield list(ahead)


AUGMENT_VERSION = "aug2"
"""Names the cache: changes whenever ``_augmented`` does."""
PART = 10_000
"""Vectors are made and cached in parts of this many rows, so an interrupted run keeps them."""


def stored_vectors(cache: Path, devdata: Path, count: int, embedder: Embedder,
                   *, batch: int = 32) -> np.ndarray:
    """``(count, dim)`` real descriptors of augmented dev images, cached as ``.npy`` parts.

    Image ``i`` is variant ``i % 70`` of dev image ``i // 70``, so the first rows of a
    larger set are the same as a smaller one and parts are reused across counts.
    """
    folder = cache / f"vectors-{AUGMENT_VERSION}-{embedder.model_id.replace(':', '_')}"
    folder.mkdir(parents=True, exist_ok=True)
    sources = dev_images(devdata)
    parts = []
    for first in range(0, count, PART):
        path = folder / f"{first:07d}.npy"
        if not path.exists():
            rows = [embedder.embed(images) for images in
                    _variants(sources, 70, range(first, first + PART), batch)]
            np.save(path.with_suffix(".tmp.npy"), np.concatenate(rows).astype(np.float32))
            path.with_suffix(".tmp.npy").replace(path)
        parts.append(np.load(path))
    return np.concatenate(parts)[:count]
