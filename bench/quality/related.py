"""Candidate pairs of dev images that show the same picture, for ``bench/quality/related.csv``.

    python bench/quality/related.py --data DIR [--sheets OUT]

The dev images are separate files, but some are edits of one another: pysiogame draws
"pedal" as its "bicycle" recoloured with an arrow, ``mvtb-data/mosaic`` is one aerial photo
cut into rotated tiles. ``bench/quality/quality.py`` must not count a search that calls such a pair
a copy as a *false* copy. This script lists every pair whose vectors are close or whose
keypoints agree (bogv's own tests, set loose so that they find more than bogv would call a
copy), and with ``--sheets`` draws each pair side by side. Which of them are related is
decided by eye and written to ``related.csv`` (a script cannot be the judge of the method
it grades), by one rule: the two share the pixels of one picture, one being an edit of the
other or both edits of a third (crop, recolour, overlay, mirror). Two captures of one scene
(a stereo pair, two shots of a building, two screenshots of one dialog) are not related.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import Item, load, read_manifest

from bogv.model import geometry
from bogv.model.embedder import Embedder
from bogv.model.preprocess import embed_tensor

NEIGHBOURS = 8
MIN_SIMILARITY = 0.8
MIN_INLIERS = 20


def candidates(data: Path, items: list[Item], embedder: Embedder
               ) -> list[tuple[float, int, Item, Item]]:
    vectors, points = [], []
    for item in items:
        img = load(data, item)
        vectors.append(embedder.embed_tensors(embed_tensor(img)[None])[0])
        points.append(geometry.keypoints(img))
    v = np.stack(vectors)
    sims = v @ v.T
    np.fill_diagonal(sims, -1)
    found = {}
    for a in range(len(items)):
        for b in np.argsort(-sims[a])[:NEIGHBOURS]:
            pair = (min(a, int(b)), max(a, int(b)))
            if pair in found:
                continue
            n = max(geometry.inliers(points[a], points[b]), geometry.inliers(points[b], points[a]))
            if sims[a, b] >= MIN_SIMILARITY or n >= MIN_INLIERS:
                found[pair] = (float(sims[a, b]), n)
    return sorted(((s, n, items[a], items[b]) for (a, b), (s, n) in found.items()),
                  key=lambda c: (-c[1], -c[0]))


def sheet(data: Path, pair: tuple[float, int, Item, Item], out: Path) -> None:
    s, n, a, b = pair
    canvas = Image.new("RGB", (820, 440), "white")
    for i, item in enumerate((a, b)):
        img = load(data, item)
        img.thumbnail((400, 400))
        canvas.paste(img, (i * 410, 30))
    ImageDraw.Draw(canvas).text((5, 5), f"{a.path} | {b.path} | sim {s:.3f} inliers {n}",
                                fill="black")
    canvas.save(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/work/devdata"))
    parser.add_argument("--cache", type=Path, default=Path(".bench-cache/quality"))
    parser.add_argument("--sheets", type=Path, help="draw each pair into this folder")
    args = parser.parse_args()
    found = candidates(args.data, read_manifest(args.data), Embedder(args.cache / "models"))
    if args.sheets:
        args.sheets.mkdir(parents=True, exist_ok=True)
    for k, pair in enumerate(found):
        s, n, a, b = pair
        print(f"{k:4d} {s:.3f} {n:4d} {a.path} {b.path}")
        if args.sheets:
            sheet(args.data, pair, args.sheets / f"{k:04d}.png")


if __name__ == "__main__":
    main()
