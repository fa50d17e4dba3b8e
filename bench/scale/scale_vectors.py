"""Real descriptors of augmented real photos, for the cost curve (``bench/scale/scale.py``).

Every vector is the real EfficientNet-Lite0 descriptor of a real image: one of the dev
images (``/work/devdata``, see ``shared/datasets/fetch_dev_images.sh``) after a seeded random
augmentation (crop 30-100 % of the area, flip, rotation up to 15 degrees, colour jitter,
sometimes grey). No vector is drawn at random. The result is cached as a float32 ``.npy``
file so the curve can be re-measured without re-embedding; embedding is the slow part
(about 100-200 images/s on two cores).

    python bench/scale/scale_vectors.py --count 100000 --out artifacts/vectors-100k.npy
"""

from __future__ import annotations

import argparse
import csv
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from bogv.model.descriptor import DIM
from bogv.model.embedder import Embedder
from bogv.model.preprocess import SIZE, embed_tensor

BASE_SIDE = 320
"""Sources are decoded once at this size; augmenting a small copy keeps decoding cheap."""


def load_sources(devdata: Path) -> list[Image.Image]:
    with (devdata / "manifest.csv").open() as f:
        paths = [devdata / row["path"] for row in csv.DictReader(f)]
    images = []
    for path in paths:
        with Image.open(path) as img:
            img.draft("RGB", (BASE_SIDE, BASE_SIDE))
            rgb = img.convert("RGB")
        rgb.thumbnail((BASE_SIDE, BASE_SIDE))
        images.append(rgb)
    return images


def augment(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """One random, label-preserving edit of the kind a re-upload or a crop produces."""
    w, h = img.size
    area = rng.uniform(0.3, 1.0)
    aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
    cw = int(min(w, max(16, round(np.sqrt(area * w * h * aspect)))))
    ch = int(min(h, max(16, round(np.sqrt(area * w * h / aspect)))))
    left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    out = img.crop((left, top, left + cw, top + ch))
    if rng.random() < 0.5:
        out = ImageOps.mirror(out)
    if rng.random() < 0.5:
        out = out.rotate(float(rng.uniform(-15, 15)), Image.Resampling.BILINEAR, expand=False)
    out = ImageEnhance.Brightness(out).enhance(float(rng.uniform(0.7, 1.3)))
    out = ImageEnhance.Contrast(out).enhance(float(rng.uniform(0.7, 1.3)))
    out = ImageEnhance.Color(out).enhance(float(rng.uniform(0.6, 1.4)))
    if rng.random() < 0.1:
        out = ImageOps.grayscale(out).convert("RGB")
    return out


def tensors(sources: list[Image.Image], count: int, batch: int,
            seed: int) -> Iterator[np.ndarray]:
    """Batches of preprocessed tensors; the first pass over the sources is unedited."""
    rng = np.random.default_rng(seed)

    def make(i: int) -> np.ndarray:
        src = sources[i % len(sources)]
        return embed_tensor(src if i < len(sources) else augment(src, rng))

    with ThreadPoolExecutor(2) as pool:
        for start in range(0, count, batch):
            yield np.stack(list(pool.map(make, range(start, min(start + batch, count)))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=Path("artifacts/vectors-100k.npy"))
    parser.add_argument("--devdata", type=Path, default=Path("/work/devdata"))
    parser.add_argument("--models", type=Path, default=Path("data/models"))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    sources = load_sources(args.devdata)
    embedder = Embedder(args.models)
    out = np.lib.format.open_memmap(args.out.with_suffix(".partial.npy"), mode="w+",
                                    dtype=np.float32, shape=(args.count, DIM))
    t0, done = time.perf_counter(), 0
    for batch in tensors(sources, args.count, args.batch, args.seed):
        out[done:done + len(batch)] = embedder.embed_tensors(batch)
        done += len(batch)
        if done % (args.batch * 50) == 0 or done == args.count:
            rate = done / (time.perf_counter() - t0)
            print(f"{done}/{args.count} embedded, {rate:.0f}/s", flush=True)
    out.flush()
    del out
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".partial.npy").replace(args.out)
    print(f"{args.count} real descriptors of {len(sources)} sources -> {args.out} "
          f"(SIZE={SIZE})")


if __name__ == "__main__":
    main()
