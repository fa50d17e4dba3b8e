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


def second_look(strongest: int, masked: bool = True, pool: int = 4) -> Finder:
    """A query's second look (``geometry.uncovered_keypoints``): its ``strongest``
    keypoints among ``pool`` times as many candidates, outside ``geometry.overlay_mask``
    unless ``masked`` is False."""
    def find(small: np.ndarray) -> bytes:
        mask = geometry.overlay_mask(small) if masked else None
        return geometry.keypoints_of(small, strongest=strongest, pool=pool, mask=mask)
    return find


_V1 = finder(250, 0, pool=1)
"""orb320-v1: the strongest 250, as ORB keeps them."""
VARIANTS: dict[str, tuple[Finder, Finder, Finder | None]] = {
    "v1": (_V1, _V1, None),
    "250+250": (finder(250, 250), finder(250, 250), None),
    "250+150": (finder(250, 150), finder(250, 150), None),
    "150+150": (finder(150, 150), finder(150, 150), None),
    "v1+query250": (_V1, finder(250, 250), None),
    "spread 250": (finder(0, 250, pool=8), finder(0, 250, pool=8), None),
    "uncovered": (_V1, _V1, second_look(geometry.UNCOVERED)),
    "uncovered400": (_V1, _V1, second_look(400)),
    "uncovered x2": (_V1, _V1, second_look(geometry.UNCOVERED, pool=2)),
    "second400": (_V1, _V1, second_look(400, masked=False)),
}
"""Name -> (stored images' finder, queries' finder, queries' second look or None)."""


_MADE: dict[tuple[Finder, str], list[list[bytes]]] = {}


def _once(finder: Finder, name: str, make: Callable[[], list[list[bytes]]]
          ) -> list[list[bytes]]:
    """Records of one set a finder made already, for another variant: variants share
    finders (every one finds the first look as v1 does)."""
    if (finder, name) not in _MADE:
        _MADE[finder, name] = make()
    return _MADE[finder, name]


def _made(items: list[list[bytes]] | None) -> float:
    """The share of a set's searches that asked for a lazily made record (NaN: none)."""
    if not isinstance(items, _Lazy):
        return float("nan")
    return sum(list.__getitem__(items, i) is not None for i in range(len(items))) / len(items)


def keypoint_records(greys: dict[str, list[list[bytes]]], index: Finder, query: Finder,
                     second: Finder | None) -> dict[str, list[list[bytes]]]:
    out: dict[str, list[list[bytes]]] = {}
    g = greys["index-grey"]
    out["index-index"] = _once(index, "index", lambda: _Lazy(
        len(g), lambda i: [index(_grey(g[i][0]))]))
    for what in ("test", "calib", "negtest", "negcalib"):
        views = greys[f"{what}-greyquery"]
        out[f"{what}-query"] = _once(query, f"{what}-query", lambda vs=views: [
            [query(_grey(v)) for v in views_] for views_ in vs])
        out[f"{what}-mirror"] = _once(query, f"{what}-mirror", lambda vs=views: _Lazy(
            len(vs), lambda i: [query(np.ascontiguousarray(_grey(vs[i][0])[:, ::-1]))]))
        if second is not None:
            out[f"{what}-uncovered"] = _once(second, what, lambda vs=views, f=second: _Lazy(
                len(vs), lambda i: [f(_grey(vs[i][0]))]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/work/devdata"))
    parser.add_argument("--cache", type=Path, default=Path(".bench-cache/quality"))
    parser.add_argument("--variants", default="v1,250+250",
                        help=f"comma-separated, from: {', '.join(VARIANTS)}")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "int8"),
                        help="the graph whose feature maps --cache holds")
    args = parser.parse_args()
    method = METHODS["bogv+geometry"]
    split = q.make_split(args.data)
    embedder = Embedder(args.cache / "models", precision=args.precision)
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
    results: dict[str, q.Result] = {}
    looked: dict[str, dict[str, float]] = {}
    for name in args.variants.split(","):
        records = {**base, **keypoint_records(base, *VARIANTS[name])}
        results[name] = q.evaluate(method, vec, split, method.threshold, records)
        looked[name] = {what: _made(records.get(f"{what}-uncovered"))
                        for what in ("test", "negtest")}
    names = list(results)
    print(f"{'':22}" + "".join(f"{n:>16}" for n in names))
    for edit in [*EDITS, "all edits", "calibration split"]:  # recall@1 / @10 / called copy
        print(f"{edit:22}" + "".join(
            f"{q._cell(r.r1.get(edit, np.nan), r.r10.get(edit, np.nan), r.accept[edit]):>16}"
            for r in (results[n] for n in names)))
    for label in ("original", "edited", "related"):
        print(f"{'false copy: ' + label:22}" + "".join(
            f"{q._cell(results[n].false_copy[label]):>16}" for n in names))
    for what, label in (("test", "second look: copies"), ("negtest", "... not indexed")):
        print(f"{label:22}" + "".join(f"{q._cell(looked[n][what]):>16}" for n in names))


if __name__ == "__main__":
    main()
