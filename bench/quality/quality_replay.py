"""Replays bench/quality/quality.py's copy check offline with other keypoints: seconds, not a pass
over the images.

    python bench/quality/quality.py --data DIR --keep-grey       # once: keeps what ORB looks at
    python bench/quality/quality_replay.py --data DIR --variants shipped,spread

Each variant finds keypoints on the grey pictures the benchmark kept (``--keep-grey``),
stored images' and queries' alike, and the benchmark's own ``evaluate`` then runs
bogv's checks (``service.count_inliers``, ``compare_pixels``) with them, calibrating its
thresholds on the calibration split as always. Stored images' keypoints are found only for
the candidates a search checks, mirror images' only when a search asks.
"""

from __future__ import annotations

import argparse
import functools
import io
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality as q
from quality_edits import EDITS
from quality_methods import METHODS, Runner

from bogv import imaging
from bogv.model import geometry
from bogv.model.embedder import Embedder

Finder = Callable[[np.ndarray], bytes]
"""Keypoints of a ``geometry.grey`` picture, packed as ``geometry`` stores them."""


def _grey(png: bytes) -> np.ndarray:
    with imaging.Image.open(io.BytesIO(png)) as img:
        return np.asarray(img.convert("L"))


class _Lazy(list):
    """A list whose items are made on first use, then kept."""

    def __init__(self, n: int, make: Callable[[int], list[bytes]]) -> None:
        super().__init__([None] * n)
        self.make = make

    def __getitem__(self, i):  # type: ignore[override]
        item = super().__getitem__(i)
        if item is None:
            item = self.make(i)
            self[i] = item
        return item


def finder(strongest: int, spread: int, grid: int = geometry.GRID, cap: float = geometry._CAP,
           pool: int = 4) -> Finder:
    return functools.partial(geometry.keypoints_of, strongest=strongest, spread=spread,
                             grid=grid, cap=cap, pool=pool)


_V1 = finder(250, 0, pool=1)
"""orb320-v1: the strongest 250, as ORB keeps them."""
VARIANTS: dict[str, tuple[Finder, Finder]] = {
    "v1": (_V1, _V1),
    "250+250": (finder(250, 250), finder(250, 250)),
    "250+150": (finder(250, 150), finder(250, 150)),
    "150+150": (finder(150, 150), finder(150, 150)),
    "v1+query250": (_V1, finder(250, 250)),
    "spread 250": (finder(0, 250, pool=8), finder(0, 250, pool=8)),
}
"""Name -> (stored images' finder, queries' finder)."""


def keypoint_records(greys: dict[str, list[list[bytes]]], index: Finder, query: Finder
                     ) -> dict[str, list[list[bytes]]]:
    out: dict[str, list[list[bytes]]] = {}
    g = greys["index-grey"]
    out["index-index"] = _Lazy(len(g), lambda i: [index(_grey(g[i][0]))])
    for what in ("test", "calib", "negtest", "negcalib"):
        views = greys[f"{what}-greyquery"]
        out[f"{what}-query"] = [[query(_grey(v)) for v in vs] for vs in views]
        out[f"{what}-mirror"] = _Lazy(len(views), lambda i, vs=views: [
            query(np.ascontiguousarray(_grey(vs[i][0])[:, ::-1]))])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/work/devdata"))
    parser.add_argument("--cache", type=Path, default=Path(".bench-cache/quality"))
    parser.add_argument("--variants", default="v1,250+250",
                        help=f"comma-separated, from: {', '.join(VARIANTS)}")
    args = parser.parse_args()
    method = METHODS["bogv+geometry"]
    split = q.make_split(args.data)
    embedder = Embedder(args.cache / "models")
    key = q.fmap_key(embedder)
    runner = Runner(embedder, args.cache, key)
    cache = q.Cache(args.cache, key)
    counts = {"index": len(q.index_owners(split)), "test": len(split.test) * len(EDITS),
              "calib": len(split.calib) * len(EDITS),
              "negtest": len(split.neg_test) * (len(EDITS) + 1),
              "negcalib": len(split.neg_calib) * (len(EDITS) + 1)}
    vec, base = {}, {}
    for what, n in counts.items():
        side = "index" if what == "index" else "query"
        vec[f"{what}-{side}"] = q.vectors_for(runner, cache, [method], what, [], n, side)
        sides = ("thumbnail", "grey") if side == "index" else ("pixels", "greyquery")
        found = q.records_for(args.cache, key, what, [], sides)
        base.update((f"{what}-{s}", v) for s, v in found.items())
    vec["labelled-index"] = vec["labelled-query"] = q.vectors_for(
        runner, cache, [method], "labelled", [], len(split.labelled), "index")
    results = {}
    for name in args.variants.split(","):
        records = {**base, **keypoint_records(base, *VARIANTS[name])}
        results[name] = q.evaluate(method, vec, split, method.threshold, records)
    names = list(results)
    print(f"{'':22}" + "".join(f"{n:>16}" for n in names))
    for edit in [*EDITS, "all edits", "calibration split"]:
        print(f"{edit:22}" + "".join(
            f"{q._cell(results[n].r1.get(edit, np.nan), results[n].accept[edit]):>16}"
            for n in names))
    for label in ("original", "edited", "related"):
        print(f"{'false copy: ' + label:22}" + "".join(
            f"{q._cell(results[n].false_copy[label]):>16}" for n in names))


if __name__ == "__main__":
    main()
