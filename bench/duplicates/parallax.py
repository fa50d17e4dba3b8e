"""How far copies' and two views' keypoint matches stray along one direction
(``geometry.parallax``), against the threshold the duplicate scan uses
(``containment.PARALLAX``).

    python bench/duplicates/parallax.py --data DEVDATA

Every dev image and each of the quality benchmark's edits of it, stored as
``bench/duplicates/duplicates.py`` stores them (JPEG quality 92, the record's keypoints):
each pair whose matches make a copy (``scoring.COPY_INLIERS``) one way round is one row,
both ways counted. Then the dev set's photos of one scene from two places, both ways round.
A pair at ``PARALLAX`` or more is left to the pixel check, so the copies there are the ones
that must meet it instead. Two processes; ~4 minutes on a 2-core box.
"""

from __future__ import annotations

import argparse
import io
import random
import sys
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "quality"))  # the edits

from quality import Item, load, read_manifest
from quality_edits import EDITS

from bogv import imaging
from bogv.containment import PARALLAX
from bogv.model import geometry, scoring
from bogv.service import record_points

SCENES = (
    ("images/mvtb-data/rocks2-l.png", "images/mvtb-data/rocks2-r.png"),
    ("images/scikit-image/motorcycle_left.png", "images/scikit-image/motorcycle_right.png"),
    ("images/mvtb-data/building2-2.png", "images/mvtb-data/building2-3.png"),
    ("images/mvtb-data/eiffel-1.png", "images/mvtb-data/eiffel-2.png"),
    ("images/mvtb-data/castle.png", "images/mvtb-data/castle2.png"),
    ("images/kalzium-data/screenshots/quick-1.png",
     "images/kalzium-data/screenshots/screenshot2.png"),
)
"""Pairs of dev images that are two captures of one scene, not copies: the duplicate
bench's false pairs before ``PARALLAX`` (the first two) and after."""


def stored_keypoints(img: imaging.Image.Image) -> bytes:
    """The keypoints a record keeps of ``img`` stored as the duplicate bench stores it."""
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=92)
    with imaging.Image.open(io.BytesIO(buf.getvalue())) as decoded:
        return record_points(decoded.convert("RGB"))[0]


def strays(one: bytes, other: bytes) -> float | None:
    """``geometry.parallax`` of a pair matched as a copy, None when it is not."""
    matched = geometry.match(one, other)
    if matched is None or matched.count < scoring.COPY_INLIERS:
        return None
    return geometry.parallax(matched)


def copies_of(job: tuple[Path, Item]) -> list[tuple[str, float]]:
    """(edit, parallax) of each edited copy of one dev image matched as a copy, each way."""
    cv2.setNumThreads(1)
    data, item = job
    try:
        img = load(data, item)
    except (OSError, ValueError):
        return []
    original = stored_keypoints(img)
    found = []
    for name, edit in EDITS.items():
        copy = stored_keypoints(edit(img, random.Random(f"{item.path}:{name}")))
        for one, other in ((copy, original), (original, copy)):
            if (value := strays(one, other)) is not None:
                found.append((name, value))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the dev images' folder")
    args = parser.parse_args()
    items = read_manifest(args.data)
    by_edit: dict[str, list[float]] = defaultdict(list)
    with ProcessPoolExecutor(2) as pool:
        for found in pool.map(copies_of, [(args.data, i) for i in items], chunksize=4):
            for name, value in found:
                by_edit[name].append(value)
    every = np.array([v for values in by_edit.values() for v in values])
    print(f"## Copies of {len(items)} dev images, matched as copies "
          f"(parallax threshold {PARALLAX} px)\n")
    print("| edit | pairs | median px | 99.9th percentile px | at the threshold or more |")
    print("|---|---|---|---|---|")
    for name, values in [*by_edit.items(), ("all", list(every))]:
        v = np.array(values)
        print(f"| {name} | {len(v)} | {np.median(v):.3f} | {np.percentile(v, 99.9):.3f} "
              f"| {int((v >= PARALLAX).sum())} |")
    known = {i.path: i for i in items}
    print("\n## Two captures of one scene\n")
    print("| pair | matches, parallax px (one way round; the other) |")
    print("|---|---|")
    for a, b in SCENES:
        if a not in known or b not in known:
            continue
        one, other = (stored_keypoints(load(args.data, known[p])) for p in (a, b))
        ways = [geometry.match(x, y) for x, y in ((one, other), (other, one))]
        shown = "; ".join("none" if m is None else f"{m.count}, {geometry.parallax(m):.2f}"
                          for m in ways)
        print(f"| {Path(a).stem} / {Path(b).stem} | {shown} |")


if __name__ == "__main__":
    main()
