"""Retrieval quality on real images: edited copies among thousands of look-alikes, and classes.

    python bench/quality/quality.py             # the whole benchmark, one table (a few minutes)
    python bench/quality/quality.py --data DIR  # dev images elsewhere (default /work/devdata)

Needs the dev images (``shared/datasets/fetch_dev_images.sh OUTDIR``) and ``pip install -e
".[bench]"``. It is a script, not a test: the default pytest run never collects it.

The split is fixed by a seed. Of the dev images, ``TEST_TARGETS`` + ``CALIB_TARGETS`` are
indexed and queried through each edit in ``quality_edits.EDITS``; ``TEST_NEGATIVES`` +
``CALIB_NEGATIVES`` are *not* indexed and queried as they are and edited (a search for a
picture the index does not hold must not come back as a ``copy``). A not-indexed original
whose own edit is indexed (``related.csv``: a drawing recoloured, a crop of the same photo)
is no such picture: a ``copy`` label is right for it, so it is left out of the false copies
and of the calibration, and reported on its own line. Every other dev image is
indexed as a distractor together with four look-alikes of it (crops, colour shifts). The
copy threshold of a method is chosen on the calibration split only; test figures use it.
Methods are scored by the best match between a query vector and any vector of an indexed
image. Vectors are cached on disk (``--cache``), keyed by model id and method, so a rerun
only computes what changed.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import io
import json
import random
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality_cost import measure
from quality_edits import EDITS, distractor_variants
from quality_methods import DEFAULT, METHODS, Method, Runner

from bogv import imaging, placed, service
from bogv.containment import pixels_judge
from bogv.model import geometry, pixels, scoring, stars
from bogv.model.content import drawn_over, query_views
from bogv.model.embedder import Embedder
from bogv.pieces import Pieces
from bogv.starfields import StarFields
from bogv.thumbs import make_thumbnail

SEED = 3
VERSION = "q2"  # bump when the split, the edits or the variants change
TEST_TARGETS, CALIB_TARGETS = 200, 100
TEST_NEGATIVES, CALIB_NEGATIVES = 150, 100
MAX_SIDE = 1024
"""Originals are capped at this size before editing: the model sees 224 px anyway."""
RELATED = Path(__file__).with_name("related.csv")
"""Pairs of dev images that share the pixels of one picture, judged by eye
(``bench/quality/related.py`` lists the candidates)."""
CALIB_FALSE_COPY = 0.01
"""A method's copy threshold: the lowest that labels at most this share of the calibration
negatives a copy, counting the not-indexed originals alone and with their edits."""


@dataclass(frozen=True)
class Item:
    path: str
    source: str
    category: str


@dataclass
class Split:
    test: list[Item]
    calib: list[Item]
    neg_test: list[Item]
    neg_calib: list[Item]
    distractors: list[Item]
    labelled: list[Item] = field(default_factory=list)
    related: set[str] = field(default_factory=set)
    """Not-indexed originals that have an edit of themselves in the index."""

    def unrelated(self, negatives: list[Item]) -> np.ndarray:
        """Which query rows of ``negatives`` (each original and its edits) are counted."""
        return np.repeat([i.path not in self.related for i in negatives], len(EDITS) + 1)


def related_pairs(path: Path = RELATED) -> list[tuple[str, str]]:
    with path.open() as f:
        return [(r["a"], r["b"]) for r in csv.DictReader(f)]


def read_manifest(data: Path) -> list[Item]:
    """The dev images ``fetch_dev_images.sh`` listed, by path."""
    with (data / "manifest.csv").open() as f:
        items = [Item(r["path"], r["source"], r["category"]) for r in csv.DictReader(f)]
    return sorted(items, key=lambda i: i.path)


def make_split(data: Path) -> Split:
    items = read_manifest(data)
    random.Random(SEED).shuffle(items)
    n1, n2 = TEST_TARGETS, TEST_TARGETS + CALIB_TARGETS
    n3, n4 = n2 + TEST_NEGATIVES, n2 + TEST_NEGATIVES + CALIB_NEGATIVES
    indexed = {i.path for i in items[:n2] + items[n4:]}
    related = {a for x, y in related_pairs() for a, b in ((x, y), (y, x)) if b in indexed}
    negatives = {i.path for i in items[n2:n4]}
    return Split(items[:n1], items[n1:n2], items[n2:n3], items[n3:n4], items[n4:],
                 sorted((i for i in items if i.source == "pysiogame"), key=lambda i: i.path),
                 related & negatives)


def fmap_key(embedder: Embedder) -> str:
    """Names cached feature maps: they depend on the network, not on pooling or projection,
    so the key is the graph's part of the model id."""
    graph = embedder.model_id.rsplit(":", 1)[0]
    return hashlib.sha256(f"{graph}|{VERSION}|{SEED}".encode()).hexdigest()[:12]


def load(data: Path, item: Item) -> imaging.Image.Image:
    img = imaging.decode((data / item.path).read_bytes(), max_pixels=1 << 30,
                         min_side=MAX_SIDE)
    img.thumbnail((MAX_SIDE, MAX_SIDE), imaging.Image.Resampling.LANCZOS)
    return img


def _rng(*parts: object) -> random.Random:
    return random.Random(":".join(map(str, (SEED, VERSION, *parts))))


# --- the image sets, generated lazily (thousands of decoded images do not fit in memory) ---

def index_images(data: Path, split: Split) -> Iterator[imaging.Image.Image]:
    for item in split.test + split.calib:
        yield load(data, item)
    for item in split.distractors:
        img = load(data, item)
        yield img
        yield from distractor_variants(img, _rng("variants", item.path))


def index_owners(split: Split) -> list[str]:
    """Which original each indexed image comes from (targets are their own originals)."""
    owners = [i.path for i in split.test + split.calib]
    for item in split.distractors:
        owners += [item.path] * 5
    return owners


def query_images(data: Path, items: list[Item], with_original: bool
                 ) -> Iterator[imaging.Image.Image]:
    for item in items:
        img = load(data, item)
        if with_original:
            yield img
        for name, edit in EDITS.items():
            yield edit(img, _rng("edit", name, item.path))


def query_labels(items: list[Item], with_original: bool) -> list[tuple[Item, str]]:
    names = (["original"] if with_original else []) + list(EDITS)
    return [(item, name) for item in items for name in names]


# --- vectors ----------------------------------------------------------------------------

class Cache:
    """Vectors of methods that work on pixels (pHash): those need a pass over the images."""

    def __init__(self, folder: Path, key: str) -> None:
        self.folder, self.key = folder, key
        folder.mkdir(parents=True, exist_ok=True)

    def _path(self, method: str, what: str) -> Path:
        return self.folder / f"vec-{what}-{method}-{self.key}.npz"

    def get(self, method: str, what: str) -> tuple[np.ndarray, np.ndarray] | None:
        path = self._path(method, what)
        if not path.exists():
            return None
        with np.load(path) as z:
            return z["vectors"], z["counts"]

    def put(self, method: str, what: str, vectors: np.ndarray, counts: np.ndarray) -> None:
        path = self._path(method, what)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, vectors=vectors, counts=counts)
        tmp.replace(path)


def _pattern_bytes(pattern: pixels.Pattern) -> bytes:
    buf = io.BytesIO()
    shown = {} if pattern.coarse_shown is None else {
        "coarse_shown": pattern.coarse_shown, "fine_shown": pattern.fine_shown}
    hue = {} if pattern.hue is None else {"hue": pattern.hue}
    np.savez(buf, coarse=pattern.coarse, fine=pattern.fine, **shown, **hue)
    return buf.getvalue()


def _query_pattern(img: imaging.Image.Image) -> pixels.Pattern:
    """A query's pixel pattern as ``service.search`` makes it (``service.prepare_query``'s
    ``drawn``)."""
    return pixels.pattern(img, drawn_over(geometry.grey(img)))


def _png(grey: np.ndarray) -> bytes:
    buf = io.BytesIO()
    imaging.Image.fromarray(grey).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def _pattern(data: bytes) -> pixels.Pattern:
    with np.load(io.BytesIO(data)) as z:
        shown = (z["coarse_shown"], z["fine_shown"]) if "coarse_shown" in z else (None, None)
        return pixels.Pattern(z["coarse"], z["fine"], *shown, z.get("hue"))


_RECORDS: dict[str, tuple[str, Callable[[imaging.Image.Image], list[bytes]]]] = {
    "index": (f"keypoints-{geometry.VERSION}-index", lambda img: [geometry.keypoints(img)]),
    "query": (f"keypoints-{geometry.VERSION}-query",
              lambda img: [geometry.keypoints(v) for v in query_views(img)]),
    "mirror": (f"keypoints-{geometry.VERSION}-mirror",
               lambda img: [geometry.keypoints(ImageOps.mirror(img))]),
    "uncovered": (f"keypoints-{geometry.VERSION}-uncovered{geometry.UNCOVERED}"
                  f"-spread{geometry.UNCOVERED_SPREAD}-letters{geometry.TALLEST}",
                  lambda img: [geometry.uncovered_keypoints(img)]),
    "enlarged": (f"keypoints-{geometry.VERSION}-enlarged{geometry.ENLARGED}"
                 f"-uncovered{geometry.UNCOVERED}-spread{geometry.UNCOVERED_SPREAD}"
                 f"-letters{geometry.TALLEST}", lambda img: [service.enlarged_look(img)]),
    "pool": (f"keypoints-{geometry.VERSION}-pool{geometry.POOL}-drawn{geometry.POOLED}",
             lambda img: [geometry.pool(img)]),
    "stars": (f"stars{stars.VERSION}-{geometry.SIDE}-inside{stars.PART}",
              lambda img: [service.record_stars(geometry.grey(img))]),
    "thumbnail": ("thumbnail", lambda img: [make_thumbnail(img)]),
    "pixels": (f"pixels-{pixels.SIDE}-{pixels.FINE}-shown-hue{pixels.HUE_SIDE}",
               lambda img: [_pattern_bytes(_query_pattern(img))]),
    "grey": (f"grey-{geometry.SIDE}", lambda img: [_png(geometry.grey(img))]),
    "greyquery": (f"grey-{geometry.SIDE}-views",
                  lambda img: [_png(geometry.grey(v)) for v in query_views(img)]),
}
"""What bogv keeps of a stored image (its keypoints, its thumbnail) and finds for a query
(its views' keypoints, its mirror image's, its second look's and that look at it enlarged
when it is small, its pool of keypoints (``geometry.pool``), its pixel pattern, the grey
pictures of its views), by file name prefix; and, for ``bench/quality/quality_replay.py``
(``--keep-grey``), the grey pictures ORB looks at in the indexed images."""


def records_for(folder: Path, key: str, what: str, images: Iterable[imaging.Image.Image],
                sides: tuple[str, ...]) -> dict[str, list[list[bytes]]]:
    """``_RECORDS`` of every image of a set for each of ``sides``, cached as base64 in JSON,
    one file a side. Missing sides are found in one pass over the images, which are slow to
    make (decoded and edited)."""
    paths = {s: folder / f"{_RECORDS[s][0]}-{what}-{key}.json" for s in sides}
    missing = [s for s in sides if not paths[s].exists()]
    if missing:
        t0 = time.perf_counter()
        found: dict[str, list[list[str]]] = {s: [] for s in missing}
        for img in images:
            for s in missing:
                found[s].append([base64.b64encode(b).decode() for b in _RECORDS[s][1](img)])
        if not found[missing[0]]:  # a replay that passed no images: keep no empty cache
            raise FileNotFoundError(f"no cached {', '.join(missing)} for {what}, nor images")
        for s in missing:
            paths[s].write_text(json.dumps(found[s]))
        print(f"  {what}: {', '.join(missing)} of {len(found[missing[0]])} images in "
              f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return {s: [[base64.b64decode(t) for t in views] for views in json.loads(paths[s].read_text())]
            for s in sides}


def vectors_for(runner: Runner, cache: Cache, methods: list[Method], what: str,
                images: Iterable[imaging.Image.Image], n: int, side: str
                ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per method: all vectors stacked, and how many belong to each image, in order."""
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    todo = []
    for m in methods:
        hit = cache.get(m.name, f"{what}-{side}") if m.pixels else None
        if hit is None:
            todo.append(m)
        else:
            out[m.name] = hit
    if todo:
        t0 = time.perf_counter()
        got = runner.run(todo, what, images, n, side)
        for m in todo:
            if m.pixels:
                cache.put(m.name, f"{what}-{side}", *got[m.name])
            out[m.name] = got[m.name]
        print(f"  {what}/{side}: {n} images in {time.perf_counter() - t0:.0f} s",
              file=sys.stderr)
    return out


# --- scoring ----------------------------------------------------------------------------

def _starts(counts: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)


def similarities(queries: np.ndarray, qcounts: np.ndarray, rows: np.ndarray,
                 counts: np.ndarray) -> np.ndarray:
    """(query images, indexed images): the best pair of their vectors."""
    per_row = np.maximum.reduceat(queries @ rows.T, _starts(counts), axis=1)
    return np.maximum.reduceat(per_row, _starts(qcounts), axis=0)


def best_per_image(queries: np.ndarray, qcounts: np.ndarray, rows: np.ndarray,
                   counts: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` images per query by their best-matching pair: (indices, similarities)."""
    qstarts = np.concatenate([_starts(qcounts), [len(queries)]])
    top_i = np.zeros((len(qcounts), k), np.int64)
    top_s = np.zeros((len(qcounts), k), np.float32)
    for a in range(0, len(qcounts), 256):
        b = min(a + 256, len(qcounts))
        per_image = similarities(queries[qstarts[a]:qstarts[b]], qcounts[a:b], rows, counts)
        idx = np.argpartition(-per_image, k, axis=1)[:, :k]
        part = np.take_along_axis(per_image, idx, axis=1)
        order = np.argsort(-part, axis=1)
        top_i[a:b] = np.take_along_axis(idx, order, axis=1)
        top_s[a:b] = np.take_along_axis(part, order, axis=1)
    return top_i, top_s


def recheck(method: Method, layout: tuple[np.ndarray, np.ndarray], rows: np.ndarray,
            counts: np.ndarray, ids: np.ndarray, sims: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """Second stage: rescore each query's candidates from all their vectors, re-sort."""
    assert method.verify is not None
    starts, qstarts = _starts(counts), _starts(layout[1])
    out_i, out_s = ids.copy(), sims.copy()
    for q in range(len(ids)):
        lq = layout[0][qstarts[q]:qstarts[q] + layout[1][q]]
        new = np.array([method.verify(lq, rows[starts[c]:starts[c] + counts[c]], float(s))
                        for c, s in zip(ids[q], sims[q], strict=True)])
        order = np.argsort(-new, kind="stable")
        out_i[q], out_s[q] = ids[q][order], new[order]
    return out_i, out_s


@dataclass
class Result:
    r1: dict[str, float]
    r10: dict[str, float]
    accept: dict[str, float]
    false_copy: dict[str, float]
    threshold: float
    p10: float
    p10_by_class: dict[str, float]
    sources: dict[str, tuple[float, float]]
    neg_sources: dict[str, float]


def threshold_for(neg_scores: np.ndarray) -> float:
    """Lowest threshold leaving at most CALIB_FALSE_COPY of the negatives at or above it."""
    allowed = int(np.floor(CALIB_FALSE_COPY * len(neg_scores)))
    ranked = np.sort(neg_scores)[::-1]
    return float(np.nextafter(ranked[allowed], np.float32(np.inf)))


def _mean(values: list[bool] | list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def query_sides(greys: list[list[bytes]]) -> np.ndarray:
    """Each query's longer side in px, as ``scoring.copy_inliers`` reads it: that of the
    grey picture its keypoints were found on (shrunk to ``geometry.SIDE``, never enlarged,
    which is as full as ``scoring.FULL_SIDE``)."""
    return np.array([max(imaging.Image.open(io.BytesIO(views[0])).size) for views in greys])


def needed(sides: np.ndarray, full: float = scoring.COPY_INLIERS) -> np.ndarray:
    """``scoring.copy_inliers`` of each query (``full``: the calibration's try)."""
    return np.array([scoring.copy_inliers(float(s), full) for s in sides])


def inlier_counts(queries: list[list[bytes]], mirrors: list[list[bytes]],
                  index: list[list[bytes]], ids: np.ndarray, sims: np.ndarray,
                  uncovered: list[list[bytes]] | None, needs: np.ndarray,
                  deeper: Callable[[int, Sequence[bytes]], tuple[list[int], list[float]]],
                  enlarged: list[list[bytes]] | None = None,
                  pool: list[list[bytes]] | None = None) -> np.ndarray:
    """Inliers of each query's first ``ids.shape[1]`` candidates, as bogv counts them
    (``service.count_inliers``: the best view's, or the mirror image's, the second
    look's, that look at it enlarged, or its pool's matched where they are placed
    (``geometry.guided``) when it asks; 0 for candidates it does not check);
    ``needs``: the matches that make a copy of each query. Where a search would look past
    its first ten, the index images ``deeper(q, looks)`` gives (``Service.deeper``: those
    sharing the most descriptor pieces, with their similarities) take the places after the
    tenth in ``ids`` and ``sims``, changed in place, as they follow a search's first ten."""
    k = ids.shape[1]
    checked = service.MORE_CHECKED

    def further(q: int, looks: Sequence[bytes]) -> list[bytes]:
        found, similarity = deeper(q, looks)
        rest = [(c, s) for c, s in zip(ids[q][checked:], sims[q][checked:k], strict=True)
                if c not in found]
        row = [*zip(found, similarity, strict=True), *rest][:k - checked]
        ids[q][checked:], sims[q][checked:k] = zip(*row, strict=True)
        return [index[c][0] for c in found]

    rows = [service.count_inliers(queries[q], [lambda c=c: index[c][0] for c in ids[q][:checked]],
                                  list(sims[q]), lambda q=q: mirrors[q][0],
                                  None if uncovered is None else lambda q=q: uncovered[q][0],
                                  copy_inliers=float(needs[q]),
                                  further=lambda looks, _, q=q: further(q, looks),
                                  enlarged=None if enlarged is None else
                                  lambda q=q: enlarged[q][0],
                                  pooled=None if pool is None else lambda q=q: pool[q][0])
            for q in range(len(ids))]
    return np.array([r + [0] * (k - len(r)) for r in rows])


def index_pieces(index: list[list[bytes]], queries: np.ndarray, qcounts: np.ndarray,
                 rows: np.ndarray, counts: np.ndarray, first: np.ndarray
                 ) -> Callable[[int, Sequence[bytes]], tuple[list[int], list[float]]]:
    """``inlier_counts``'s ``deeper`` for one set of queries: the index images sharing
    the most descriptor pieces with a query's looks (``bogv.pieces``, as a search asks it),
    none of its ``first`` ten, by similarity as Milvus returns them."""
    pieces = Pieces()
    pieces.add((i, points[0]) for i, points in enumerate(index))
    starts = _starts(qcounts)

    def deeper(q: int, looks: Sequence[bytes]) -> tuple[list[int], list[float]]:
        found = pieces.best(looks, service.VOTED, set(first[q].tolist()))
        if not found:
            return [], []
        mine = similarities(queries[starts[q]:starts[q] + qcounts[q]], qcounts[q:q + 1],
                            rows, counts)[0]
        found.sort(key=lambda c: -mine[c])
        return found, [float(mine[c]) for c in found]

    return deeper


def star_counts(greys: list[list[bytes]], fields: StarFields, index: list[list[bytes]],
                ids: np.ndarray, sims: np.ndarray, inl: np.ndarray, needs: np.ndarray,
                queries: np.ndarray, qcounts: np.ndarray, rows: np.ndarray,
                counts: np.ndarray) -> None:
    """Where a search asks the index of star fields (``Service.starred``: no candidate is a
    copy by its keypoints, ``scoring.check_stars``), the field it names and its matches
    where the stars put them (``service.star_matches``) are counted: in its place among a
    query's candidates, or in the last place, with its similarity; changed in place."""
    k = inl.shape[1]
    starts = _starts(qcounts)
    for q in range(len(ids)):
        if not scoring.check_stars(list(sims[q]), list(inl[q]), copy_inliers=float(needs[q])):
            continue
        seen, grey = stars.first_field([np.asarray(imaging.Image.open(io.BytesIO(g)))
                                        for g in greys[q]])
        aligned = fields.best(seen) if seen else None
        if aligned is None:
            continue
        n = service.star_matches(geometry.star_look(grey), aligned, index[aligned.id][0],
                                 float(needs[q]))
        if not n:
            continue
        at = np.flatnonzero(ids[q][:k] == aligned.id)
        if len(at):
            inl[q][at[0]] = max(inl[q][at[0]], n)
            continue
        mine = similarities(queries[starts[q]:starts[q] + qcounts[q]], qcounts[q:q + 1],
                            rows, counts)[0]
        ids[q][k - 1], sims[q][k - 1], inl[q][k - 1] = aligned.id, mine[aligned.id], n


def pixel_likeness(patterns: list[list[bytes]], thumbnails: list[list[bytes]],
                   ids: np.ndarray, sims: np.ndarray, inl: np.ndarray,
                   views: list[list[bytes]], index: list[list[bytes]], needs: np.ndarray
                   ) -> np.ndarray:
    """Pixel likeness of each query's first ``inl.shape[1]`` candidates, as bogv finds it
    (``service.compare_pixels``: of the best-scoring one, when no candidate is verified
    yet)."""
    k = inl.shape[1]
    return np.array([service.compare_pixels(
        list(sims[q]), list(inl[q]), lambda q=q: _pattern(patterns[q][0]),
        [lambda c=c: thumbnails[c][0] for c in ids[q][:k]],
        judge=lambda i, q=q: pixels_judge(views[q][0], index[ids[q][i]][0], int(inl[q][i])),
        copy_inliers=float(needs[q]))
        for q in range(len(ids))])


def aligned_likeness(greys: list[list[bytes]], views: list[list[bytes]],
                     uncovered: list[list[bytes]], index: list[list[bytes]],
                     thumbnails: list[list[bytes]], ids: np.ndarray, sims: np.ndarray,
                     inl: np.ndarray, px: np.ndarray, needs: np.ndarray) -> np.ndarray:
    """Pixel likeness where keypoint matches put each query's candidates, as bogv finds it
    (``service.compare_aligned``: of one candidate, when no check verified any), at full
    precision so that its threshold can be calibrated; -inf where not compared."""
    k = inl.shape[1]
    out = np.full(px.shape, -np.inf)
    for q in range(len(ids)):
        pictures = [np.asarray(imaging.Image.open(io.BytesIO(g))) for g in greys[q]]

        def aligned(view: int, m: geometry.Matched, thumbnail: bytes,
                    pictures: list[np.ndarray] = pictures) -> float:
            grey = pictures[view]
            return placed.likeness(grey, drawn_over(grey), (1.0,), thumbnail, m, np.inf)

        got = service.compare_aligned(list(sims[q]), list(inl[q]), list(px[q]),
                                      [lambda c=c, q=q: service.best_match(
                                          views[q], uncovered[q][0], index[c][0])
                                       for c in ids[q][:k]],
                                      [lambda c=c: thumbnails[c][0] for c in ids[q][:k]],
                                      aligned, float(needs[q]))
        if got is not None:
            out[q, got[0]] = got[1]
    return out


def with_aligned(px: np.ndarray, aligned: np.ndarray, t_al: float) -> np.ndarray:
    """Pixel likeness once a likeness where the matches put the pictures that reaches
    ``t_al`` stands for it (``service.verify``)."""
    return np.where(aligned >= t_al, np.maximum(px, aligned), px)


def with_geometry(ids: np.ndarray, sims: np.ndarray, inl: np.ndarray, t_in: np.ndarray,
                  px: np.ndarray | None = None, t_px: float = np.inf
                  ) -> tuple[np.ndarray, np.ndarray]:
    """bogv's order and scores (``scoring.scores``, as ``service.search`` sorts its hits)
    under the calibration's thresholds: ``t_in`` inliers (each query's, ``needed``) or
    ``t_px`` pixel likeness make a copy. ``inl`` (and ``px``) cover each query's first
    candidates; the rest score by their similarity alone."""
    inliers = np.zeros_like(sims)
    inliers[:, :inl.shape[1]] = inl
    likeness = np.zeros_like(sims)
    if px is not None:
        likeness[:, :px.shape[1]] = px
    key = scoring.scores(sims, inliers, likeness, copy_inliers=np.asarray(t_in)[:, None],
                         copy_pixels=t_px)
    order = np.argsort(-key, axis=1, kind="stable")
    return np.take_along_axis(ids, order, axis=1), np.take_along_axis(key, order, axis=1)


def lowest_within_budget(flagged: Callable[[float], np.ndarray], steps: Iterable[float]
                         ) -> float:
    """The first of ``steps`` (ascending) at which the calibration negatives' false copies
    keep within budget; ``flagged(t)``: which of them call their first hit a copy."""
    stride = len(EDITS) + 1
    for t in steps:
        f = flagged(t)
        if (f.mean() <= CALIB_FALSE_COPY
                and f[::stride].sum() <= int(CALIB_FALSE_COPY * len(f[::stride]))):
            return t
    return np.inf


def evaluate(method: Method, vec: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]],
             split: Split, threshold: float | None,
             records: dict[str, list[list[bytes]]]) -> Result:
    rows, counts = vec["index-index"][method.name]
    owners = index_owners(split)
    target_pos = {p: i for i, p in enumerate(owners[:len(split.test) + len(split.calib)])}

    def run(what: str) -> tuple[np.ndarray, np.ndarray]:
        ids, sims = best_per_image(*vec[what][method.name], rows, counts,
                                   max(10, method.geometric))
        if method.verify is not None:
            ids, sims = recheck(method, vec[what][f"{method.name}#layout"], rows, counts,
                                ids, sims)
        return ids, sims

    runs = {what: run(what) for what in ("calib-query", "negcalib-query", "test-query",
                                         "negtest-query")}
    counted = split.unrelated(split.neg_calib)  # calibrate on pictures the index lacks
    if method.geometric:
        assert threshold is not None
        sides = {what: query_sides(records[f"{what.split('-')[0]}-greyquery"]) for what in runs}
        inl = {what: inlier_counts(records[f"{what.split('-')[0]}-query"],
                                   records[f"{what.split('-')[0]}-mirror"],
                                   records["index-index"], r[0][:, :method.geometric], r[1],
                                   records.get(f"{what.split('-')[0]}-uncovered"),
                                   needed(sides[what]),
                                   index_pieces(records["index-index"], *vec[what][method.name],
                                                rows, counts, r[0][:, :service.MORE_CHECKED]),
                                   records.get(f"{what.split('-')[0]}-enlarged"),
                                   records.get(f"{what.split('-')[0]}-pool"))
               for what, r in runs.items()}
        if "index-stars" in records:
            fields = StarFields()
            fields.add((i, found[0]) for i, found in enumerate(records["index-stars"]))
            for what, r in runs.items():
                star_counts(records[f"{what.split('-')[0]}-greyquery"], fields,
                            records["index-index"], r[0], r[1], inl[what], needed(sides[what]),
                            *vec[what][method.name], rows, counts)
        neg = runs["negcalib-query"][0][counted], runs["negcalib-query"][1][counted]
        negsides = sides["negcalib-query"][counted]
        t_in = int(lowest_within_budget(
            lambda t: with_geometry(*neg, inl["negcalib-query"][counted], needed(negsides, t)
                                    )[1][:, 0] >= threshold,
            range(6, 500)))
        needs = {what: needed(sides[what], t_in) for what in runs}
        print(f"  {method.name}: a copy needs >= {t_in} inliers (from "
              f"{scoring.FULL_SIDE} px up, proportionally fewer below)", file=sys.stderr)
        px = {what: None for what in runs}
        t_px = np.inf
        if method.pixel_check:
            px = {what: pixel_likeness(records[f"{what.split('-')[0]}-pixels"],
                                       records["index-thumbnail"], *r, inl[what],
                                       records[f"{what.split('-')[0]}-query"],
                                       records["index-index"], needs[what])
                  for what, r in runs.items()}
            negpx = px["negcalib-query"][counted]
            t_px = lowest_within_budget(
                lambda t: with_geometry(*neg, inl["negcalib-query"][counted],
                                        needs["negcalib-query"][counted], negpx, t
                                        )[1][:, 0] >= threshold,
                np.arange(0.8, 1.0005, 0.001))
            print(f"  {method.name}: ... or a pixel likeness >= {t_px:.3f}", file=sys.stderr)
            al = {what: aligned_likeness(records[f"{what.split('-')[0]}-greyquery"],
                                         records[f"{what.split('-')[0]}-query"],
                                         records[f"{what.split('-')[0]}-uncovered"],
                                         records["index-index"], records["index-thumbnail"],
                                         r[0][:, :method.geometric], r[1], inl[what], px[what],
                                         needs[what])
                  for what, r in runs.items()}
            negal = al["negcalib-query"][counted]
            t_al = lowest_within_budget(
                lambda t: with_geometry(*neg, inl["negcalib-query"][counted],
                                        needs["negcalib-query"][counted],
                                        with_aligned(negpx, negal, t), t_px
                                        )[1][:, 0] >= threshold,
                [t for t in np.arange(0.9, 1.0005, 0.005) if t >= t_px])
            print(f"  {method.name}: ... or a likeness where the matches put them >= "
                  f"{t_al:.3f}", file=sys.stderr)
            px = {what: with_aligned(px[what], al[what], t_al) for what in runs}
        runs = {what: with_geometry(*r, inl[what], needs[what], px[what], t_px)
                for what, r in runs.items()}
    calib_i, calib_s = runs["calib-query"]
    negc_s = runs["negcalib-query"][1][counted]
    if threshold is None:  # at most 1% of the not-indexed originals, and of all negatives
        threshold = max(threshold_for(negc_s[:, 0]),
                        threshold_for(negc_s[::len(EDITS) + 1, 0]))
    calib_want = np.repeat([target_pos[i.path] for i in split.calib], len(EDITS))
    test_i, test_s = runs["test-query"]
    negt_s = runs["negtest-query"][1]

    r1, r10, acc = defaultdict(list), defaultdict(list), defaultdict(list)
    by_source: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    for (item, edit), ids, sims in zip(query_labels(split.test, False), test_i, test_s,
                                       strict=True):
        want = target_pos[item.path]
        first = ids[0] == want
        accepted = bool(first and sims[0] >= threshold)
        for key in (edit, "all edits"):
            r1[key].append(first)
            r10[key].append(want in ids[:10])
            acc[key].append(accepted)
        by_source[item.source].append((first, accepted))
    false_copy: dict[str, list[bool]] = defaultdict(list)
    neg_by_source: dict[str, list[bool]] = defaultdict(list)
    for (item, edit), sims in zip(query_labels(split.neg_test, True), negt_s, strict=True):
        flagged = bool(sims[0] >= threshold)
        if item.path in split.related:
            false_copy["related"].append(flagged)
            continue
        false_copy["original" if edit == "original" else "edited"].append(flagged)
        if edit == "original":
            neg_by_source[item.source].append(flagged)
    acc["calibration split"] = list((calib_i[:, 0] == calib_want) & (calib_s[:, 0] >= threshold))

    p10, p10_by_class = category_precision(method, vec, split)
    return Result({k: _mean(v) for k, v in r1.items()}, {k: _mean(v) for k, v in r10.items()},
                  {k: _mean(v) for k, v in acc.items()},
                  {k: _mean(v) for k, v in false_copy.items()}, threshold, p10, p10_by_class,
                  {s: (_mean([a for a, _ in v]), _mean([b for _, b in v]))
                   for s, v in by_source.items()},
                  {s: _mean(v) for s, v in neg_by_source.items()})


def category_precision(method: Method, vec: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]],
                       split: Split) -> tuple[float, dict[str, float]]:
    """Precision@10 by class: each labelled image against the other labelled images."""
    sims = similarities(*vec["labelled-query"][method.name], *vec["labelled-index"][method.name])
    return class_precision(sims, np.array([i.category for i in split.labelled]))


def class_precision(sims: np.ndarray, classes: np.ndarray) -> tuple[float, dict[str, float]]:
    """Precision@10 of each image of a square similarity matrix against the others: the
    mean over classes of their images' mean, and each class's."""
    sims = sims.copy()
    np.fill_diagonal(sims, -np.inf)
    top = np.argsort(-sims, axis=1)[:, :10]
    hits = (classes[top] == classes[:, None]).mean(axis=1)
    per_class = {c: float(hits[classes == c].mean()) for c in sorted(set(classes))}
    return float(np.mean(list(per_class.values()))), per_class


# --- the report -------------------------------------------------------------------------

def _cell(*values: float) -> str:
    return "/".join("  - " if np.isnan(v) else f"{v:.2f}" for v in values)


def print_tables(methods: list[Method], results: dict[str, Result], split: Split) -> None:
    names = [m.name for m in methods]
    width = max(16, *(len(n) for n in names))
    head = f"{'':22}" + "".join(f"{n:>{width}}" for n in names)
    print(f"\nNear-duplicate task: {len(split.test)} test originals x {len(EDITS)} edits, "
          f"{len(index_owners(split))} indexed images ({len(split.distractors) * 5} "
          "distractors); cells: recall@1 / recall@10 / accepted (top-1 and labelled copy)")
    print(head)
    for edit in [*EDITS, "all edits"]:
        print(f"{edit:22}" + "".join(
            f"{_cell(results[n].r1[edit], results[n].r10[edit], results[n].accept[edit]):>{width}}"
            for n in names))
    rows = [
        ("accepted (calib.)", lambda r: _cell(r.accept["calibration split"])),
        ("false copy: originals", lambda r: _cell(r.false_copy["original"])),
        ("false copy: edited", lambda r: _cell(r.false_copy["edited"])),
        ("copy: related", lambda r: _cell(r.false_copy["related"])),
        ("copy threshold", lambda r: f"{r.threshold:.4f}"),
        ("category P@10", lambda r: _cell(r.p10)),
    ]
    for label, fmt in rows:
        print(f"{label:22}" + "".join(f"{fmt(results[n]):>{width}}" for n in names))
    related = sum(i.path in split.related for i in split.neg_test)
    print(f"\nNot-indexed queries: {len(split.neg_test) - related} originals, and each edited "
          f"{len(EDITS)} ways; 'copy: related' is the share of {related} more (and their "
          "edits) labelled copy, whose own edit is indexed (related.csv). Copy thresholds "
          f"chosen on {len(split.calib)} + "
          f"{sum(i.path not in split.related for i in split.neg_calib)} calibration "
          f"originals (<= {CALIB_FALSE_COPY:.0%} false).")

    sources = sorted({i.source for i in split.test} | {i.source for i in split.neg_test})
    count = {s: sum(i.source == s for i in split.test) for s in sources}
    neg = {s: sum(i.source == s for i in split.neg_test) for s in sources}
    print("\nBy source: recall@1 / accepted over all edits | false copy on not-indexed originals")
    print(f"{'source (test, neg)':34}" + "".join(f"{n:>{width + 6}}" for n in names))
    for s in sources:
        cells = []
        for n in names:
            r1, acc = results[n].sources.get(s, (float("nan"), float("nan")))
            cells.append(f"{_cell(r1, acc)} | {_cell(results[n].neg_sources.get(s, np.nan))}")
        print(f"{s + f' ({count[s]}, {neg[s]})':34}" + "".join(f"{c:>{width + 6}}" for c in cells))

    classes = sorted(results[names[0]].p10_by_class)
    print("\nCategory precision@10 by pysiogame class "
          f"({len(split.labelled)} labelled drawings)")
    for c in classes:
        print(f"{c:22}" + "".join(f"{_cell(results[n].p10_by_class[c]):>{width}}"
                                  for n in names))


def print_cost(data: Path, split: Split, n: int = 300, queries: int = 40) -> None:
    files = [data / i.path for i in split.distractors[:n]]
    asked = []
    for item in split.test[:queries]:  # not indexed: every check runs
        img = load(data, item)
        for edit in ("combo", "text over, light"):
            asked.append(imaging_bytes(EDITS[edit](img, _rng("cost", item.path))))
    rows = measure(files, asked)
    print("\nCost, end to end through Milvus Lite: plain (seed) vs bogv")
    print(f"{'':44}{'plain':>10}{'bogv':>10}{'ratio':>10}")
    for what, a, b, r in rows:
        print(f"{what:44}{a:>10}{b:>10}{r:>10}")


def imaging_bytes(img: imaging.Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/work/devdata"))
    parser.add_argument("--cache", type=Path, default=Path(".bench-cache/quality"))
    parser.add_argument("--cost", type=int, default=1, help="1: also measure import, "
                        "search and size against the plain descriptor (0: skip)")
    parser.add_argument("--keep-grey", action="store_true",
                        help="also keep the indexed images' grey pictures keypoints are found "
                        "on (the queries' are always kept: bogv compares their pixels where "
                        "keypoints put them), so that quality_replay.py can try other "
                        "keypoints without the images")
    parser.add_argument("--methods", default=",".join(DEFAULT),
                        help=f"comma-separated, from: {', '.join(METHODS)}")
    args = parser.parse_args()
    methods = [METHODS[n] for n in args.methods.split(",")]
    split = make_split(args.data)
    embedder = Embedder(args.cache / "models")
    key = fmap_key(embedder)
    cache = Cache(args.cache, key)
    runner = Runner(embedder, args.cache, key)
    t0 = time.perf_counter()

    data = args.data
    edits = len(EDITS)
    sets = {
        "index-index": (lambda: index_images(data, split), len(index_owners(split))),
        "test-query": (lambda: query_images(data, split.test, False), len(split.test) * edits),
        "calib-query": (lambda: query_images(data, split.calib, False),
                        len(split.calib) * edits),
        "negtest-query": (lambda: query_images(data, split.neg_test, True),
                          len(split.neg_test) * (edits + 1)),
        "negcalib-query": (lambda: query_images(data, split.neg_calib, True),
                           len(split.neg_calib) * (edits + 1)),
        "labelled-index": (lambda: (load(data, i) for i in split.labelled), len(split.labelled)),
        "labelled-query": (lambda: (load(data, i) for i in split.labelled), len(split.labelled)),
    }
    layouts = [Method(f"{m.name}#layout", m.layout, m.layout) for m in methods
               if m.layout is not None]
    vec = {}
    for name, (images, n) in sets.items():
        what, side = name.split("-")
        vec[name] = vectors_for(runner, cache, methods, what, _Lazy(images), n, side)
        if side == "query" and layouts:
            vec[name].update(vectors_for(runner, cache, layouts, what, _Lazy(images), n,
                                         "index"))
    records: dict[str, list[list[bytes]]] = {}  # by set and _RECORDS side
    if any(m.geometric for m in methods):
        pixel = any(m.pixel_check for m in methods)
        for name, (images, _) in sets.items():
            what, side = name.split("-")
            if f"{what}-{side}" in records or what == "labelled":
                continue
            sides = (("query", "mirror", "uncovered", "enlarged", "pool", "greyquery")
                     if side == "query"
                     else (side, "stars")) + (
                (("pixels",) if side == "query" else ("thumbnail",)) if pixel else ()) + (
                (() if side == "query" else ("grey",)) if args.keep_grey else ())
            found = records_for(args.cache, key, what, _Lazy(images), sides)
            records.update((f"{what}-{s}", v) for s, v in found.items())
    results = {m.name: evaluate(m, vec, split, m.threshold, records) for m in methods}
    print_tables(methods, results, split)
    if args.cost:
        print_cost(data, split)
    print(f"\n({time.perf_counter() - t0:.0f} s)", file=sys.stderr)


class _Lazy:
    """An iterable that builds its generator only when iterated (cached sets are never made)."""

    def __init__(self, make: object) -> None:
        self.make = make

    def __iter__(self) -> Iterator[imaging.Image.Image]:
        return iter(self.make())  # type: ignore[operator]


if __name__ == "__main__":
    main()
