"""The use cases, shared by the API and the CLI: add, search, delete, stats.

The only module that combines sources, imaging, the embedder and the store. It is plain
synchronous code; the API runs it in a bounded thread pool, the CLI calls it directly.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from bogv import fields, freed, imaging, placed, sources
from bogv._types import Vectors
from bogv.config import Settings
from bogv.containment import SUPPORTED, contained, pixels_judge
from bogv.errors import InvalidParameter, NotFound
from bogv.metrics import Metrics
from bogv.model import geometry, pixels, scoring, stars
from bogv.model.content import content_box, drawn_over, query_views, uncovered_cells
from bogv.model.descriptor import DIM
from bogv.model.embedder import Embedder
from bogv.model.preprocess import SIZE, embed_tensor
from bogv.netguard import GuardedTransport, Resolver, system_resolve
from bogv.pieces import Pieces
from bogv.results import Added, Hit
from bogv.settle import Settler
from bogv.sidecar import Sidecar
from bogv.starfields import StarFields
from bogv.store import Candidate, IdAllocator, Page, Store
from bogv.thumbs import make_thumbnail

__all__ = ["Deeper", "Incoming", "Prepared", "Query", "Service", "build_service",
           "compare_pixels", "count_inliers", "enlarged_look", "index_records", "prepare",
           "prepare_query", "record_points", "star_matches", "verify", "voted"]

CHECKED = 5
"""Candidates the keypoint check looks at per search..."""
MORE_CHECKED = 10
"""... and how many when none of those is verified (``scoring.check_more``)..."""
DEEPER = 50
"""... and how many candidates ``bench/quality/quality.py`` keeps per search, to tell how
deep the vector ranks a copy when none of those is verified either. A search looks
past its first ten among the ``VOTED`` stored images sharing the most pieces with it of all
(``Service.deeper``, ``bogv.pieces``), whatever their similarity: under text, a watermark,
emoji or an app's bars, a star field's vector ranks its original 11th-50th in 6-21% of
searches (``bench/quality/quality.py``, Stellarium's test pictures), and past the 50th in
79 of the test split's 4,400. Among candidates 11-50 the original got the most votes in 71
of 72 such searches that kept a copy's matches with it; over the whole collection, in 51 of
those 79 too (copies accepted 0.948 -> 0.955, recall@1 0.970 -> 0.979)."""
VOTED = 2
"""Candidates voted on whose keypoints are matched, and how many ``Service.deeper`` asks
the index of pieces for. The vote takes the first
ten that were too far off to be matched (``scoring.MATCH_SIMILARITY``) too: under a
watermark or stickers a copy may look that far off while a look-alike above it opens the
checks. It reads every view of the query: a screenshot's picture inside its window holds
the keypoints of the copy. On ``bench/quality/quality.py`` both took copies accepted from
0.939 to 0.945 (screenshots 0.925 -> 0.940)."""
FILL_WAIT = 1.0
"""Seconds a search that needs the index of pieces waits for its first fill when another
thread runs it (``bogv serve`` fills it beside its start-up: 16-23 s at 100k images), then
asks what the fill has read so far: a copy past the tenth candidate may be missed for that
long, rather than every search held up (the first took 16.7 s at 100k, now 1.3 s). A small
collection of a few thousand images fills within it (10k images: 1.3 s)."""
REREAD = 30
"""Seconds of ids below the highest it has read that a replica reads again from a server,
for its index of pieces (``Service.index_pieces``) and the duplicate scan
(``bogv.duplicates``): a write is seen ``session.FRESH`` (5 s) late at most, which leaves
25 s for replicas' clocks to disagree."""
DOMINANT = 2.0
"""A search whose every candidate is too far off to be matched (``scoring.check_far``)
matches the one of its first ``MORE_CHECKED`` and of the ``VOTED`` stored images sharing
the most pieces with it (``Service.deeper``) that shares this many times as many descriptor
pieces with it as any other, if one does. With the index's two: tiled watermark called copy
0.870 -> 0.925, all edits 0.9541 -> 0.9582, no false copy more; Milvus is asked for a
candidate's similarity only once the vote has chosen it. The first ten alone, on
``bench/quality/quality.py``
15 of the test split's 57 such searches have one among their first ten, each the original
(10 then verified: accepted 0.945 -> 0.948, watermark tiled 0.815 -> 0.845); 21 of 1,779
searches for pictures that are not stored have one too, and match it in vain. Among the
first 50, 25 searches found the original and none of the 1,779 anything (accepted 0.950),
but asking Milvus for them and reading them took searches from 1.74-1.90 to 2.27-2.28 times
the plain descriptor's time (``bench/quality/quality_cost.py``, interleaved); among the
first ten: 1.93-1.95 times."""
THUMBNAIL = "jpg"
KEYPOINTS = f"{geometry.VERSION}.kp"
STARS = f"stars{stars.VERSION}"
"""Kinds of record files (``bogv.sidecar``). Keypoints are named by their version, so during
a model migration neither model matches a query against the other's points. A point field's
stars (``bogv.model.stars``) are kept only for point fields."""


@dataclass(frozen=True)
class Prepared:
    """An image ready for the model: its tensor, keypoints, the identity of its bytes, a
    thumbnail."""

    tensor: np.ndarray
    md5: str
    sha256: str
    thumbnail: bytes | None = None
    keypoints: bytes = b""
    stars: bytes = b""


@dataclass(frozen=True)
class Query:
    """A search image ready for the model: one row of ``tensors`` per view
    (``bogv.model.content.query_views``), the decoded image (its mirror's keypoints and its
    pixel pattern are found only when a search needs them), the digest of its bytes,
    where something seems drawn over it (``bogv.model.content.drawn_over``: None when
    nothing does), and each view's grey picture (where ``keypoints`` finds its keypoints)."""

    tensors: np.ndarray
    image: Image.Image
    sha256: str
    drawn: np.ndarray | None = None
    greys: tuple[np.ndarray, ...] = ()

    def keypoints(self) -> list[bytes]:
        """Each view's keypoints: ORB, which a search runs beside the network and Milvus
        (``Service.search``)."""
        return [geometry.keypoints_of(g) for g in self.greys]

    def aligned(self, view: int, matched: geometry.Matched, thumbnail: bytes) -> float:
        """``placed.likeness`` of one view's pixels (``view``: its index) and a stored
        thumbnail where ``matched`` (of that view's keypoints and the stored ones) puts
        them, clear of what seems drawn over either."""
        grey = self.greys[view]
        drawn = self.drawn if view == 0 else drawn_over(grey)
        return placed.likeness(grey, drawn, (1.0,), thumbnail, matched, scoring.COPY_ALIGNED)

    @property
    def cells(self) -> np.ndarray | None:
        """The cells of its feature map clear of what is drawn over it and of stickers
        (``bogv.model.content.uncovered_cells``), None when nothing is."""
        return uncovered_cells(self.greys[0], self.drawn)


@dataclass(frozen=True)
class Incoming:
    """One image to store whose vector was made elsewhere (a batch's row): the identity of
    its bytes, where it is filed (``None``: the defaults, its MD5 as key and no filepath)
    and its record files."""

    md5: str
    sha256: str
    key: str | None
    filepath: str | None
    thumbnail: bytes | None
    keypoints: bytes
    stars: bytes = b""

    @classmethod
    def prepared(cls, item: Prepared, key: str | None, filepath: str | None) -> Incoming:
        return cls(item.md5, item.sha256, key, filepath, item.thumbnail, item.keypoints,
                   item.stars)


def prepare(data: bytes, settings: Settings, *, thumbnail: bool = True,
            digests: tuple[str, str] | None = None) -> Prepared:
    """Bytes to model input, keypoints, identity and thumbnail; also run by bulk-import
    workers, which have no store and so no ``Service``. ``digests`` is ``(md5, sha256)``
    when the caller hashed the bytes already (import does, to skip stored files before
    decoding them)."""
    img = _decode(data, settings)
    md5, sha256 = digests or (hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest())
    return Prepared(embed_tensor(img), md5, sha256, make_thumbnail(img) if thumbnail else None,
                    *record_points(img))


def record_points(img: Image.Image) -> tuple[bytes, bytes]:
    """The points a record keeps of an image, both found on its grey picture
    (``geometry.grey``): its keypoints, and its stars (``record_stars``).
    ``bench/duplicates/duplicates.py`` stores its scale collection with these."""
    grey = geometry.grey(img)
    return geometry.keypoints_of(grey), record_stars(grey)


def record_stars(grey: np.ndarray) -> bytes:
    """The stars a record keeps of its grey picture: its own when it is a point field, else
    those of the picture inside it (``content.content_box``) when that is one, in the
    whole picture's px, ``b""`` when neither is. A star field shown in a bright window is
    found by its stars only so: its record's keypoints are the window's, its vector mostly
    the window's, and the duplicate scan, unlike a search (``stars.first_field``), has only
    the stored record to look at. On ``bench/duplicates/duplicates.py`` screenshots 0.714 ->
    0.857 pair recall, no false pair more. A picture is looked inside only when partly dark
    (``stars.partly_dark``): 70 of 800 dev images, 0.1-0.16 ms more an image on average."""
    seen = stars.points(grey)
    if seen or not stars.partly_dark(grey):
        return seen
    box = content_box(Image.fromarray(grey))
    if box is None:
        return b""
    left, top, right, bottom = box
    return stars.shifted(stars.points(grey[top:bottom, left:right]), left, top, max(grey.shape))


def prepare_query(data: bytes, settings: Settings) -> Query:
    """Bytes to what a search needs: the tensors and grey pictures of every view."""
    img = _decode(data, settings)
    views = query_views(img)
    greys = tuple(geometry.grey(v) for v in views)
    return Query(np.stack([embed_tensor(v) for v in views]), img,
                 hashlib.sha256(data).hexdigest(), drawn_over(greys[0]), greys)


def count_inliers(views: Sequence[bytes], stored: Sequence[Callable[[], bytes]],
                  similarities: Sequence[float], mirrored: Callable[[], bytes],
                  uncovered: Callable[[], bytes] | None = None,
                  inliers: Callable[[bytes, bytes], int] = geometry.inliers,
                  copy_inliers: float = scoring.COPY_INLIERS,
                  further: Callable[[Sequence[bytes], bool], Sequence[bytes]] | None = None,
                  enlarged: Callable[[], bytes] | None = None,
                  pooled: Callable[[], bytes] | None = None) -> list[int]:
    """Keypoint matches of each checked candidate (``stored`` reads their keypoints, of
    ``MORE_CHECKED`` at most): the first ``CHECKED``, the rest only when
    ``scoring.check_more`` asks; the best of the query's views, and of its mirror image when
    ``scoring.check_mirror`` asks for it (only then does ``mirrored`` find those
    keypoints), and of its keypoints outside what is drawn over it
    (``geometry.uncovered_keypoints``, made by ``uncovered``) when
    ``scoring.check_uncovered`` asks, and of that second look at it enlarged
    (``enlarged_look``, made by ``enlarged``: none unless it is small) when
    ``scoring.check_uncovered`` still asks after those, and then of its pool of keypoints
    (``geometry.pool``, made by ``pooled``) matched where a transform puts the candidate's
    (``geometry.guided``) when it asks still. A candidate too far off
    (``scoring.MATCH_SIMILARITY``) is matched only when voted for: when
    ``scoring.check_more`` asks again after every look, those ``further(looks, wait)``
    gives (the keypoints of the candidates past them, found by the query's looks and read
    only now) and the first ten too far off are voted on, and the ``VOTED`` (``voted``)
    matched, 0 for the others; when every candidate is too far off
    (``scoring.check_far``), the first ten and those ``further`` gives for the query's
    views, not waiting for the index of pieces to be filled (``wait`` False: most searches
    for a picture that is not stored end here), and only one that ``DOMINANT``-ly wins
    their vote is matched, with the second look too. Without ``further`` (the duplicate
    scan, which matches every neighbour anyway) there is no vote.
    ``bench/quality/quality.py`` runs this too. ``inliers`` matches two sets of keypoints
    (the duplicate scan passes a memo of ``geometry.inliers``: a pair checked twice is
    matched once); ``copy_inliers`` (``scoring.copy_inliers``) makes a copy of this
    query."""
    def match(start: int, stop: int) -> tuple[list[bytes], list[int]]:
        points = [read() if similarity >= scoring.MATCH_SIMILARITY else b""
                  for read, similarity in zip(stored[start:stop], similarities[start:stop],
                                              strict=False)]
        return points, [max(inliers(v, s) for v in views) for s in points]

    points, counts = match(0, CHECKED)
    if scoring.check_more(similarities, counts, copy_inliers=copy_inliers):
        more_points, more_counts = match(CHECKED, MORE_CHECKED)
        points, counts = points + more_points, counts + more_counts
    second = b""
    if uncovered is not None and scoring.check_uncovered(similarities, counts,
                                                         copy_inliers=copy_inliers):
        second = uncovered()
        counts = [max(n, inliers(second, s)) for n, s in zip(counts, points, strict=True)]
    if scoring.check_mirror(similarities, counts, copy_inliers=copy_inliers):
        mirror = mirrored()
        counts = [max(n, inliers(mirror, s)) for n, s in zip(counts, points, strict=True)]
    bigger = b""
    if enlarged is not None and scoring.check_uncovered(similarities, counts,
                                                        copy_inliers=copy_inliers):
        bigger = enlarged()
        counts = [max(n, inliers(bigger, s)) for n, s in zip(counts, points, strict=True)]
    if pooled is not None and scoring.check_uncovered(similarities, counts,
                                                      copy_inliers=copy_inliers):
        near = pooled()
        counts = [max(n, geometry.guided(near, s)) for n, s in zip(counts, points, strict=True)]
    if further is None:
        return counts
    if scoring.check_more(similarities, counts, copy_inliers=copy_inliers):
        # Every look at the first candidates failed: those too far off to be matched and
        # those past them are voted on.
        skipped = [i for i, similarity in enumerate(similarities[:len(points)])
                   if similarity < scoring.MATCH_SIMILARITY]
        looks = [*views, second, bigger]
        pool = [stored[i]() for i in skipped] + [*further(looks, True)]
        chosen = voted(looks, pool)
    elif scoring.check_far(similarities, counts, copy_inliers=copy_inliers):
        # None was matched: the vote's counts are all there is.
        counts, skipped = [], []
        pool = [read() for read in stored] + [*further(views, False)]
        chosen = voted(views, pool, dominant=True)
        looks = [*views, uncovered()] if chosen and uncovered is not None else [*views]
    else:
        return counts
    matched = [max(inliers(q, pool[i]) for q in looks) if i in chosen else 0
               for i in range(len(pool))]
    for i, n in zip(skipped, matched, strict=False):
        counts[i] = n
    return counts + matched[len(skipped):]


def enlarged_look(image: Image.Image, *, letters: bool = True) -> bytes:
    """A query's second look (``geometry.uncovered_keypoints``, ``letters`` as there) at it
    enlarged (``geometry.enlarged``); none (``b""``) when it is not small. Its first look enlarged
    too verified 0.07% more of ``bench/quality/quality.py``'s copies (0.9652 -> 0.9659),
    for one more set of keypoints to find and match."""
    big = geometry.enlarged(image)
    return b"" if big is None else geometry.uncovered_keypoints(big, letters=letters)


def voted(query: Sequence[bytes], stored: Sequence[bytes], *,
          dominant: bool = False) -> list[int]:
    """Which of ``stored`` to match: the ``VOTED`` that share most descriptor pieces with
    any ``query`` set (``geometry.shared``); with ``dominant``, only one sharing
    ``DOMINANT`` times as many as any other, if one does."""
    votes = geometry.shared(query, stored)
    ranked = sorted(range(len(stored)), key=lambda i: -votes[i])
    if not dominant:
        return ranked[:VOTED]
    if len(ranked) > 1 and votes[ranked[0]] < DOMINANT * max(votes[ranked[1]], 1):
        return []
    return ranked[:1]


def index_records(files: Sidecar, pieces: Pieces, star_fields: StarFields,
                  ids: Sequence[int]) -> None:
    """Add stored images to the index of pieces and of star fields, from their record files
    (their keypoints, their stars): a service's fill, and each scan worker process's own."""
    pieces.add((i, files.read(i, KEYPOINTS) or b"") for i in ids)
    star_fields.add((i, files.read(i, STARS) or b"") for i in ids)


def star_matches(look: tuple[bytes, float], aligned: stars.Aligned, stored: bytes,
                 copy_inliers: float) -> int:
    """Keypoint matches of a point field's star look (``geometry.star_look``: its points and
    how many times it was enlarged) with the stored keypoints of the field the index of
    star fields named (``aligned``, ``bogv.starfields``), where the stars' transform puts
    them (``geometry.guided``), counted with its stars' votes (``scoring.star_inliers``;
    ``copy_inliers`` as in ``count_inliers``). ``bench/quality/quality.py`` runs this too."""
    points, factor = look
    matrix = aligned.matrix.copy()
    matrix[:, :2] /= factor
    return scoring.star_inliers(aligned.votes, geometry.guided(points, stored, matrix),
                                copy_inliers)


def compare_pixels(similarities: Sequence[float], inliers: Sequence[int],
                   query: Callable[[], pixels.Pattern],
                   thumbnails: Sequence[Callable[[], bytes]],
                   likeness_of: Callable[[pixels.Pattern, bytes], float] = pixels.likeness,
                   judge: Callable[[int], bool] = lambda i: True,
                   copy_inliers: float = scoring.COPY_INLIERS) -> list[float]:
    """Pixel likeness of each candidate: that of the one scoring best so far
    (``bogv.model.pixels``; ``query`` gives the query's pattern, ``thumbnails`` read the
    candidates') when ``scoring.check_pixels`` asks for it, 0 for the rest. The best by
    score, not by similarity: keypoint matches may have lifted a copy above a look-alike.
    ``bench/quality/quality.py`` runs this too. ``likeness_of`` is ``pixels.likeness`` or
    a memo of it (``similar.Stored.likeness``: the duplicate scan asks again).
    ``judge(i)``: whether the pixel check alone may verify candidate ``i``
    (``containment.pixels_judge``); when not, its pixels are not compared. ``copy_inliers``
    as in ``count_inliers``."""
    likeness = [0.0] * len(thumbnails)
    if not scoring.check_pixels(similarities, inliers, copy_inliers=copy_inliers):
        return likeness
    best = int(np.argmax(scoring.scores(similarities, inliers, copy_inliers=copy_inliers)))
    if not judge(best):
        return likeness
    stored = thumbnails[best]()
    likeness[best] = likeness_of(query(), stored) if stored else 0.0
    return likeness


def best_match(views: Sequence[bytes], second: bytes | None, stored: bytes,
               match: Callable[[bytes, bytes], geometry.Matched | None] = geometry.match
               ) -> tuple[int, geometry.Matched] | None:
    """The most matches of a query's keypoints with a candidate's (``stored``) and the
    index of the view they are in: its views', and its second look's (``second``, found in
    its first view's pixels); None when none match. ``bench/quality/quality.py`` runs this
    too."""
    frames = [*enumerate(views), *([(0, second)] if second is not None else [])]
    found = [(i, m) for i, v in frames if (m := match(v, stored)) is not None]
    return max(found, key=lambda f: f[1].count, default=None)


def compare_aligned(similarities: Sequence[float], inliers: Sequence[int],
                    likeness: Sequence[float],
                    matched: Sequence[Callable[[], tuple[int, geometry.Matched] | None]],
                    thumbnails: Sequence[Callable[[], bytes]],
                    aligned: Callable[[int, geometry.Matched, bytes], float],
                    copy_inliers: float = scoring.COPY_INLIERS) -> tuple[int, float] | None:
    """The candidate whose pixels are compared where its keypoint matches put it
    (``bogv.placed``) and their likeness, or None when none is: when
    ``scoring.check_aligned`` asks, the best-scoring one with ``containment.SUPPORTED``
    matches that make one picture contain the other. ``matched[i]()`` gives candidate
    ``i``'s best matches and the query view they are of, ``aligned(view, matches,
    thumbnail)`` compares; ``copy_inliers`` as in ``count_inliers``.
    ``bench/quality/quality.py`` runs this too."""
    if not scoring.check_aligned(similarities, inliers, likeness, copy_inliers=copy_inliers):
        return None
    enough = [i for i, n in enumerate(inliers[:len(matched)]) if n >= SUPPORTED]
    if not enough:
        return None
    best = max(enough, key=lambda i: scoring.score(similarities[i], inliers[i],
                                                   copy_inliers=copy_inliers))
    found = matched[best]()
    if found is None or found[1].count < SUPPORTED or not contained(found[1]):
        return None
    thumbnail = thumbnails[best]()
    return (best, aligned(*found, thumbnail)) if thumbnail else None


def _decode(data: bytes, settings: Settings) -> Image.Image:
    """Decoded just large enough for the model (224 px) and the keypoints (320 px)."""
    return imaging.decode(data, max_pixels=settings.max_pixels, max_frames=settings.max_frames,
                          min_side=SIZE, min_long=geometry.SIDE)


@dataclass(frozen=True)
class Deeper:
    """Where a search looks past its candidates (``verify``, ``Service.deeper``):
    ``ids(looks, wait)`` names stored images by the query's looks, whose keypoints are then
    read and voted on; ``candidates(ids)`` gives those of them the vote chose and whose
    keypoints matched as candidates (similarity, key, path: a Milvus search by id). Those
    left unmatched score under every one of the first ten and are never shown, so a search
    too far off to match anything (``scoring.check_far``, most searches for a picture that
    is not stored) asks Milvus nothing more."""

    ids: Callable[[Sequence[bytes], bool], Sequence[int]]
    candidates: Callable[[Sequence[int]], Sequence[Candidate]]


class Service:
    def __init__(self, settings: Settings, embedder: Embedder, store: Store, *,
                 resolve: Resolver = system_resolve) -> None:
        self.settings, self.embedder, self.store = settings, embedder, store
        self.resolve = resolve  # how URL hosts are looked up (a lying DNS server in tests)
        self.files = Sidecar(settings.record_path)
        self.pieces = Pieces()
        self.star_fields = StarFields()
        self._filling = threading.Lock()
        self._filled = 0.0
        """When the index of pieces last read the store (0: not yet, ``index_pieces``)."""
        self._indexing = False
        """Whether the index of pieces is wanted (its first fill has begun): adds index
        their images from then on, without waiting for the fill."""
        self._read = -1
        """The highest id the index of pieces has read from the store (its own adds do not
        count: ``index_pieces``)."""
        self.metrics = Metrics(store.count)
        self._write_lock = threading.Lock()  # one check-then-insert at a time (idempotent adds)
        self._beside = ThreadPoolExecutor(os.cpu_count() or 1, "bogv-keypoints")
        """Where searches find their keypoints while their vectors are made and searched."""
        # On a server, adds racing through other replicas are reconciled after the fact.
        self.settler = (Settler(store, self.files.delete) if store.backend == "milvus-server"
                        else None)

    def settle(self) -> None:
        """Until the duplicate checks of this replica's adds so far are done (tests)."""
        if self.settler is not None:
            self.settler.wait()

    def close(self) -> None:
        if self.settler is not None:
            self.settler.close()
        self._beside.shutdown()
        self.store.close()

    # --- checking input ----------------------------------------------------------------

    def check_key(self, key: str) -> str:
        """Within the limit (``bogv.fields``) and within what this collection holds."""
        return fields.check_key(key, self.store.text_bytes.get("key"))

    def check_filepath(self, filepath: str, field: str = "imgPath") -> str:
        return fields.check_filepath(filepath, field, self.store.text_bytes.get("filepath"))

    # --- getting bytes ------------------------------------------------------------------

    def bytes_from_url(self, url: str) -> bytes:
        s = self.settings
        transport = GuardedTransport(allow_private=s.url_allow_private, resolve=self.resolve)
        return sources.fetch_url(url, limit=s.max_upload_bytes, timeout=s.url_timeout,
                                 total_timeout=s.url_total_timeout,
                                 max_redirects=s.url_max_redirects, transport=transport)

    def bytes_from_path(self, path: str) -> bytes:
        return sources.read_path(path, roots=self.settings.allowed_roots,
                                 limit=self.settings.max_upload_bytes)

    def bytes_from_base64(self, text: str) -> bytes:
        return sources.decode_base64(text, limit=self.settings.max_upload_bytes)

    # --- the use cases ------------------------------------------------------------------

    def prepare(self, data: bytes, *, thumbnail: bool = True,
                digests: tuple[str, str] | None = None) -> Prepared:
        """Decode and preprocess (and thumbnail, for adds); safe in many threads at once."""
        return prepare(data, self.settings, thumbnail=thumbnail, digests=digests)

    def _embed(self, batch: np.ndarray, cells: np.ndarray | None = None) -> Vectors:
        """Vectors of a batch (``Embedder.embed_tensors``), timed and counted for
        /metrics."""
        start = time.perf_counter()
        vectors = self.embedder.embed_tensors(batch, cells)
        self.metrics.embedding.observe(time.perf_counter() - start)
        self.metrics.embedded.inc(len(batch))
        return vectors

    def embed_prepared(self, items: Sequence[Prepared]) -> Vectors:
        """The descriptors of prepared images, in one inference (the import pipeline
        embeds a batch while the previous one is being inserted)."""
        return self._embed(np.stack([p.tensor for p in items]))

    def add(self, data: bytes, key: str | None = None, filepath: str | None = None) -> Added:
        """Store one image. The same bytes under the same key again change nothing."""
        prepared = self.prepare(data)
        return self.add_prepared([prepared], [key], [filepath])[0]

    def add_prepared(self, items: Sequence[Prepared], keys: Sequence[str | None],
                     filepaths: Sequence[str | None]) -> list[Added]:
        """Embed a batch in one inference and insert what is not stored yet."""
        vectors = self.embed_prepared(items)
        return self.add_vectors(vectors, [Incoming.prepared(p, k, f) for p, k, f
                                          in zip(items, keys, filepaths, strict=True)])

    def add_vectors(self, vectors: Vectors, images: Sequence[Incoming]) -> list[Added]:
        """Insert images embedded elsewhere (``(n, dim)`` vectors, one row per image, from
        a bulk import's worker processes or Ray workers) with the same idempotence as
        ``add``: one record per (key, bytes)."""
        keys = [self.check_key(i.key) if i.key else i.md5 for i in images]
        paths = [self.check_filepath(i.filepath or "") for i in images]
        sha256s = [i.sha256 for i in images]
        idents = list(zip(keys, sha256s, strict=True))
        with self._write_lock:
            stored = {(r.key, r.sha256): Added(r.id, created=False)
                      for r in self.store.with_contents(sha256s)}
            fresh: dict[tuple[str, str], int] = {}  # new identity -> its first index
            for i, ident in enumerate(idents):
                if ident not in stored:
                    fresh.setdefault(ident, i)
            if fresh:
                rows = [(keys[i], paths[i], sha256s[i]) for i in fresh.values()]
                ids = self.store.insert(rows, vectors[list(fresh.values())])
                self.metrics.indexed.inc(len(ids))
                if self.settler is not None:
                    self.settler.check([row[2] for row in rows], self.store.session.last)
                stored.update((ident, Added(id_, created=True))
                              for ident, id_ in zip(fresh, ids, strict=True))
        added = [stored[ident] if fresh.get(ident) == i else Added(stored[ident].id, False)
                 for i, ident in enumerate(idents)]
        for a, image in zip(added, images, strict=True):
            # A record whose files were lost (or predate them) gets them when added again.
            for kind, data in ((THUMBNAIL, image.thumbnail), (KEYPOINTS, image.keypoints),
                               (STARS, image.stars or None)):
                if data is not None and (a.created or self.files.find(a.id, kind) is None):
                    self.files.save(a.id, kind, data)
        if self._indexing:  # else a first fill reads them with the rest, if one ever runs
            created = [(a, image) for a, image in zip(added, images, strict=True) if a.created]
            self.pieces.add((a.id, image.keypoints or b"") for a, image in created)
            self.star_fields.add((a.id, image.stars) for a, image in created)
        return added

    def check_limit(self, limit: int) -> int:
        """Callers check ``limit`` before fetching an image, so a bad one costs nothing."""
        if not 1 <= limit <= self.settings.max_limit:
            raise InvalidParameter(f"limit must be between 1 and {self.settings.max_limit} "
                                   f"(MAX_LIMIT), not {limit}", field="limit")
        return limit

    def search(self, data: bytes, limit: int = 10, min_score: float = 0.0,
               unique_key: bool = False) -> list[Hit]:
        """Most similar stored images first, each with a calibrated score and match label.

        ``limit`` counts images; ``unique_key`` keeps only the best image of each key.
        """
        self.check_limit(limit)
        query = prepare_query(data, self.settings)
        # ORB, the network and Milvus each leave cores idle on a small box: finding the
        # keypoints meanwhile takes ~1 ms off a 20 ms search (``bench/quality/quality_cost.py``).
        keypoints = self._beside.submit(query.keypoints)
        vectors, per = self._embed(query.tensors, query.cells), "key" if unique_key else "image"
        found = self.store.search(vectors, max(limit, MORE_CHECKED), per=per)
        needed = scoring.copy_inliers(max(query.image.size))
        field = cache(lambda: stars.first_field(query.greys))
        hits = verify(found, keypoints.result(),
                      lambda: geometry.keypoints(ImageOps.mirror(query.image)),
                      lambda: pixels.pattern(query.image, query.drawn),
                      lambda id_, kind: self.files.read(id_, kind) or b"", query.sha256,
                      lambda: geometry.uncovered_keypoints(query.image), aligned=query.aligned,
                      copy_inliers=needed,
                      further=self.deeper(vectors, {c.id for c in found}, per=per),
                      enlarged=lambda: enlarged_look(query.image),
                      pooled=lambda: geometry.pool(query.image),
                      starred=self.starred(lambda: field()[0],
                                           lambda: geometry.star_look(field()[1]),
                                           vectors, per=per, copy_inliers=needed))
        hits.sort(key=lambda h: -h.score)  # verified copies may overtake look-alikes
        return [h for h in hits[:limit] if h.score >= min_score]

    def deeper(self, vectors: Vectors, leave_out: Collection[int], *,
               per: str = "image") -> Deeper:
        """Where a search of ``vectors`` looks past its first ten when none is a copy: the
        ``VOTED`` stored images (none of ``leave_out``: the candidates already found)
        sharing the most descriptor pieces with its looks (``bogv.pieces``), waiting up to
        ``FILL_WAIT`` for the index's first fill if asked to; Milvus is asked for their
        similarity only once their keypoints have matched."""
        def ids(looks: Sequence[bytes], wait: bool) -> list[int]:
            self.index_pieces(wait=FILL_WAIT if wait else 0)
            return self.pieces.best(looks, VOTED, leave_out)

        def candidates(ids: Sequence[int]) -> list[Candidate]:
            return self.store.search(vectors, len(ids), per=per, among=ids) if ids else []

        return Deeper(ids, candidates)

    def starred(self, stars_of: Callable[[], bytes], look: Callable[[], tuple[bytes, float]],
                vectors: Vectors, *, per: str, copy_inliers: float,
                leave_out: Collection[int] = ()) -> Callable[[], tuple[Candidate, int] | None]:
        """Where a search whose candidates are no copy looks last, if its picture is a point
        field (``stars_of`` gives its stars, ``bogv.model.stars``): the stored field the
        index of star fields names (``bogv.starfields``, filled with the index of pieces;
        none of ``leave_out``) and its keypoint matches where the stars put them
        (``star_matches`` of ``look``, ``copy_inliers`` as there); Milvus is asked for its
        similarity only once they matched. An upload's search gives the stars and star look
        of its grey picture; a stored image's (``similar.search_stored``), its record's
        stars and its thumbnail's look, and leaves itself out."""
        def check() -> tuple[Candidate, int] | None:
            seen = stars_of()
            if not seen:
                return None
            self.index_pieces(wait=FILL_WAIT)
            aligned = self.star_fields.best(seen, leave_out)
            if aligned is None:
                return None
            count = star_matches(look(), aligned,
                                 self.files.read(aligned.id, KEYPOINTS) or b"", copy_inliers)
            found = self.store.search(vectors, 1, per=per, among=[aligned.id]) if count else []
            return (found[0], count) if found else None

        return check

    def index_pieces(self, wait: float = -1) -> None:
        """Fill the index of pieces (``bogv.pieces``) and of star fields
        (``bogv.starfields``) when first needed: it reads every record's keypoint file, and
        its stars' if it has them (2 s at 10k images, 20 s at 100k), which a process that never
        searches (an import, the duplicate scan) should not pay; ``bogv serve`` fills it
        beside its start-up. On a server, other replicas' adds are read at most once a
        second: the ids above the highest read so far, less ``REREAD`` seconds' worth, since
        ids follow each replica's clock and a write reaches the others' reads up to
        ``session.FRESH`` s late (an id below one already read may appear after it); images
        already indexed are skipped.

        Adds do not wait for the fill: once it has begun they index their own images, and
        the fill, reading every record stored before and while it runs, leaves those it
        finds indexed as they are. An add that found it not begun stored its record first,
        so the fill reads it. ``wait``: the seconds to wait for a fill that another thread
        is running (-1: until it ends; a search, ``FILL_WAIT``), then return without it."""
        if not self._filling.acquire(timeout=wait):
            return
        try:
            if self._filled and (self.store.backend != "milvus-server"
                                 or time.monotonic() < self._filled + 1):
                return
            first = not self._filled
            self._indexing = True
            for page in self.store.scan(f"id > {IdAllocator.earlier(self._read, REREAD)}"):
                fresh = [r.id for r in page if r.id not in self.pieces]
                index_records(self.files, self.pieces, self.star_fields, fresh)
                self._read = max(self._read, page[-1].id)
            self._filled = time.monotonic()
            if first:  # not each re-read on a server, which a search may wait for
                freed.give_back()  # the fill's temporaries: ~110 MB at 100k images
        finally:
            self._filling.release()

    @property
    def indexing_pieces(self) -> bool:
        """Whether this process keeps an index of pieces (its first fill has begun)."""
        return self._indexing

    def drop_pieces(self) -> None:
        """Forget the index of pieces, filled again when next needed: a process that filled
        it for one duplicate scan (``bogv duplicates``) frees it before making the groups."""
        with self._filling:
            self.pieces, self._filled, self._indexing, self._read = Pieces(), 0.0, False, -1
            self.star_fields = StarFields()

    def delete_ids(self, ids: Sequence[int]) -> int:
        deleted = self.store.delete_ids(ids)
        self.files.delete(deleted)
        self.pieces.drop(deleted)
        self.star_fields.drop(deleted)
        return len(deleted)

    def delete_keys(self, keys: Sequence[str]) -> int:
        deleted = self.store.delete_keys(keys)
        self.files.delete(deleted)
        self.pieces.drop(deleted)
        self.star_fields.drop(deleted)
        return len(deleted)

    def newest(self, limit: int, before: int | None = None, key: str | None = None) -> Page:
        """A page of records, newest first, for browsing (``before``: the previous page's
        ``next``)."""
        self.check_limit(limit)
        return self.store.newest(limit, before=before,
                                 key=fields.check_key(key) if key is not None else None)

    def thumbnail(self, id_: int) -> Path:
        """The thumbnail file of a record, made when it was added."""
        path = self.files.find(id_, THUMBNAIL)
        if path is None:
            raise NotFound(f"no thumbnail for id {id_}", field="id")
        return path

    def stats(self) -> dict[str, object]:
        return {"count": self.store.count(), "model": self.embedder.model_id, "dim": DIM,
                "store": self.store.backend, "collection": self.store.alias,
                "precision": self.embedder.precision, "cpu": str(self.embedder.cpu)}


def verify(found: Sequence[Candidate], views: Sequence[bytes], mirrored: Callable[[], bytes],
           pattern: Callable[[], pixels.Pattern], read: Callable[[int, str], bytes],
           sha256: str, uncovered: Callable[[], bytes] | None = None,
           match: Callable[[bytes, bytes], geometry.Matched | None] = geometry.match,
           likeness_of: Callable[[pixels.Pattern, bytes], float] = pixels.likeness,
           aligned: Callable[[int, geometry.Matched, bytes], float] | None = None,
           copy_inliers: float = scoring.COPY_INLIERS,
           further: Deeper | None = None,
           enlarged: Callable[[], bytes] | None = None,
           pooled: Callable[[], bytes] | None = None,
           starred: Callable[[], tuple[Candidate, int] | None] | None = None) -> list[Hit]:
    """Candidates (best similarity first) scored and labelled by a search's checks, in their
    order: one place for an upload's search and a stored image's (``bogv.similar``).

    ``views`` are the query's keypoints, ``mirrored``, ``pattern`` and ``uncovered`` make its
    mirror image's keypoints, its pixel pattern and its keypoints outside overlays (in its
    first view's pixels) only when a check needs them (no ``uncovered``: no such check),
    and ``read(id, kind)`` reads a candidate's record file: the checks open only the files
    they look at. ``match`` matches two sets of keypoints (``geometry.match`` or a memo of
    it: the duplicate scan asks again), ``likeness_of`` as in ``compare_pixels``;
    ``aligned`` as in ``compare_aligned`` (None: no such check); ``copy_inliers``
    (``scoring.copy_inliers`` of the query's size) as in ``count_inliers``. ``further``
    names stored images past ``found`` for the query's looks (``Service.deeper``), asked
    for only when ``count_inliers`` votes among them; those it matched follow ``found``'s
    hits. ``enlarged`` as in ``count_inliers`` (a stored image searched by id: its own,
    ``similar.Stored.enlarged``), and ``pooled`` (a search's alone); ``starred``
    (``Service.starred``: an upload's search and a stored image's; asked only when
    ``scoring.check_stars`` asks; the stored field it names, with its matches, is one more
    hit when it is no candidate yet).
    """
    def deferred(id_: int, kind: str) -> Callable[[], bytes]:
        return lambda: read(id_, kind)

    # Each candidate's keypoints are read once and each pair matched once, however many of
    # the checks below (count, pixels alone, pixels where they match) ask for them.
    candidates = list(found)  # ``further`` may add to them
    points = [cache(deferred(c.id, KEYPOINTS)) for c in candidates]
    matches = cache(match)
    second = None if uncovered is None else cache(uncovered)

    def inliers(own: bytes, other: bytes) -> int:
        matched = matches(own, other)
        return matched.count if matched else 0

    def best_matched(i: int) -> Callable[[], tuple[int, geometry.Matched] | None]:
        return lambda: best_match(views, second() if second is not None else None,
                                  points[i](), matches)

    checked = points[:MORE_CHECKED]

    def past_checked(looks: Sequence[bytes], wait: bool) -> list[bytes]:
        # Asked for only now (``further``), which most searches never need. Past the ones
        # checked, not past the tenth: a collection of five may hold more by the time it
        # is asked. Known by id alone until the vote has matched them (``Candidate.unranked``).
        if further is not None:
            known = {c.id for c in candidates}
            candidates.extend(Candidate.unranked(i) for i in further.ids(looks, wait)
                              if i not in known)
            points.extend(cache(deferred(c.id, KEYPOINTS)) for c in candidates[len(points):])
        return [read() for read in points[len(checked):]]

    counts = count_inliers(views, checked, [c.similarity for c in candidates],
                           mirrored, second, inliers, copy_inliers, past_checked, enlarged,
                           pooled)
    counts += [0] * (len(candidates) - len(counts))
    if further is not None and len(candidates) > len(found):
        matched = {c.id: c for c in further.candidates(
            [c.id for c, n in zip(candidates[len(found):], counts[len(found):], strict=True)
             if n > 0])}
        kept = [i for i, c in enumerate(candidates) if i < len(found) or c.id in matched]
        candidates = [matched.get(candidates[i].id, candidates[i]) for i in kept]
        counts, points = [counts[i] for i in kept], [points[i] for i in kept]
    if starred is not None and scoring.check_stars([c.similarity for c in candidates], counts,
                                                   copy_inliers=copy_inliers):
        field = starred()
        if field is not None:
            at = next((i for i, c in enumerate(candidates) if c.id == field[0].id), None)
            if at is None:
                candidates.append(field[0])
                counts.append(field[1])
                points.append(cache(deferred(field[0].id, KEYPOINTS)))
            else:
                counts[at] = max(counts[at], field[1])
    similarities = [c.similarity for c in candidates]
    thumbnails = [deferred(c.id, THUMBNAIL) for c in candidates]

    def judge(i: int) -> bool:
        return pixels_judge(views[0], points[i](), counts[i])

    likeness = compare_pixels(similarities, counts, pattern, thumbnails, likeness_of, judge,
                              copy_inliers)
    if aligned is not None:
        placed_at = compare_aligned(similarities, counts, likeness,
                                    [best_matched(i) for i in range(len(points))], thumbnails,
                                    aligned, copy_inliers)
        if placed_at is not None and placed_at[1] >= scoring.COPY_ALIGNED:
            i, agree = placed_at
            likeness[i] = max(likeness[i], agree)
    scores = scoring.scores(similarities, counts, likeness, copy_inliers=copy_inliers)
    labels = scoring.matches(similarities, [bool(sha256) and c.sha256 == sha256
                                              for c in candidates],
                             counts, likeness, copy_inliers=copy_inliers)
    return [Hit(c.id, c.key, c.filepath, float(score), label)
            for c, score, label in zip(candidates, scores, labels, strict=True)]


def build_service(settings: Settings) -> Service:
    """The one way the API, the CLI and the benchmarks get a working service."""
    embedder = Embedder(settings.model_cache, threads=settings.intra_op_threads,
                        precision=settings.precision)
    store = Store.from_settings(settings, model_id=embedder.model_id, dim=DIM)
    return Service(settings, embedder, store)
