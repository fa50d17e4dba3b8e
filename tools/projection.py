"""Regenerate ``bogv/model/pca512.npz``: the projection of GeM vectors to 512 dimensions.

    python tools/projection.py --data /work/devdata

Learned on the distractors of ``bench/quality/quality.py`` (dev images and their crops and colour
shifts, 4,555 images), never on its test or calibration originals, from the same 8-bit
graph and whole-frame GeM that bogv stores. It reuses that benchmark's cached feature maps
(``--cache``). Run it only when the graph or the pooling changes: the projection's hash is
part of the model id, so every index must then be re-embedded.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench" / "quality"))
from quality import _Lazy, fmap_key, index_images, index_owners, make_split
from quality_methods import Method, Runner

from bogv.model import descriptor
from bogv.model.embedder import Embedder

POWER = 0.75
"""Each component is divided by its standard deviation to this power: 1 is full whitening
(as many copies found, classes ranked worse), 0 plain PCA (fewer copies found)."""


def fit(vectors: np.ndarray, dims: int, power: float) -> descriptor.Projection:
    """The principal components of ``vectors``, partially whitened."""
    mean = vectors.mean(axis=0)
    _, sv, vt = np.linalg.svd(vectors - mean, full_matrices=False)
    std = sv[:dims] / np.sqrt(len(vectors))
    return descriptor.Projection(mean, vt[:dims].T / std ** power)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/work/devdata"))
    parser.add_argument("--cache", type=Path, default=Path(".bench-cache/quality"))
    parser.add_argument("--out", type=Path, default=descriptor.PROJECTION)
    args = parser.parse_args()
    split = make_split(args.data)
    embedder = Embedder(args.cache / "models")
    pooled = Method("gem", lambda f: list(descriptor.gem(f.fmap())[:, None, :]),
                    lambda f: [])
    vectors, _ = Runner(embedder, args.cache, fmap_key(embedder)).run(
        [pooled], "index", _Lazy(lambda: index_images(args.data, split)),
        len(index_owners(split)), "index")["gem"]
    distractors = vectors[len(split.test) + len(split.calib):]
    fit(distractors, descriptor.DIM, POWER).save(args.out)
    print(f"{args.out}: {len(distractors)} distractors, {descriptor.DIM} of "
          f"{vectors.shape[1]} dimensions, power {POWER}")


if __name__ == "__main__":
    main()
