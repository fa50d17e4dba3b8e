"""Searching with a stored image: "more like this", and the duplicate scan's per-image check.

A stored record already has everything a search computes from an upload except the
decoded image: its vector lives in Milvus and its keypoints in its record file
(``bogv.sidecar``), both made from the full image when it was added. So neither is remade
from the thumbnail. Only the checks a search runs on the decoded query itself, its
mirror image's keypoints, its pixel pattern (clear of what seems drawn over it) and its
second look, start from the 256 px thumbnail: the pixel check compares at most
``pixels.FINE`` (96) px anyway, and mirror keypoints only rescue flipped copies.

The checks are the search's own (``service.count_inliers``, ``service.compare_pixels``,
``scoring``), so a stored image and its upload find the same copies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache

import numpy as np
from PIL import ImageOps

from bogv import placed, thumbs
from bogv.errors import NotFound
from bogv.model import geometry, pixels, scoring, stars
from bogv.model.content import drawn_over
from bogv.results import Hit
from bogv.service import KEYPOINTS, MORE_CHECKED, STARS, THUMBNAIL, Deeper, Service, enlarged_look
from bogv.service import verify as service_verify
from bogv.sidecar import Sidecar
from bogv.store import Candidate

__all__ = ["Stored", "search_stored", "verify"]


OVERLAID = 0.01
"""Share of a stored image that must seem drawn over (``geometry.overlay_mask``) for its
second look, which a duplicate scan takes at the neighbours a search would check (the first
``CHECKED``, all when none is a copy) that no other check verified. Text
drawn over a dev image covered 1% or more of 96-100% of them, an emoji, a logo or a
timestamp of 78-83%, while 53% of the dev images as they are, and the speed bench's photo
crops, mostly cover less and are spared the look. Taken only by an image with no verified
copy among its neighbours (as first shipped), the look made the 100k of
``bench/duplicates/duplicates.py`` 5% longer to scan and group than none, 27% when taken by
every image, at 0.015 less pair recall (screenshots and chains of edits lost what the look
on their window's text had found). Taken beside a verified copy too (a captioned photo's
recompressed twin had kept it from its original): pair recall 0.831 -> 0.846; with the
pixel check clear of overlays, the 100k scan and groups 26% longer (37% with the look at all
ten neighbours, for the same recall)."""


class Stored:
    """What the checks need of one stored record, each part made only when asked for and
    then kept: the duplicate scan verifies one image against its neighbours in several
    calls, which share its mirror keypoints, its pixel pattern and each pair's matches."""

    def __init__(self, files: Sidecar, id_: int, sha256: str = "") -> None:
        self.files, self.id, self.sha256 = files, id_, sha256
        # Each part is made from the parts before it through these names, never through
        # ``self``: a part referring back to its record would make a cycle, and the scan's
        # records, with their memos, would wait for Python's cycle collector to be freed.
        thumbnail = cache(lambda: files.read(id_, THUMBNAIL) or b"")
        image = cache(lambda: placed.decode(thumbnail()))
        grey = cache(lambda: geometry.grey(image()))
        drawn = cache(lambda: drawn_over(grey()))
        side = cache(lambda: max(found) if (found := thumbs.size(thumbnail())) else None)
        self.keypoints: Callable[[], bytes] = cache(lambda: files.read(id_, KEYPOINTS) or b"")
        self.thumbnail: Callable[[], bytes] = thumbnail
        self._image = image
        self._grey: Callable[[], np.ndarray] = grey
        """Its thumbnail's grey picture (``geometry.grey``): what is drawn over it, its star
        look and every pixel check where matches put it are found on it."""
        self.mirrored: Callable[[], bytes] = cache(
            lambda: geometry.keypoints(ImageOps.mirror(image())))
        self.drawn: Callable[[], np.ndarray | None] = drawn
        """Where something seems drawn over it (``content.drawn_over``), in its
        thumbnail's pixels."""
        self.pattern: Callable[[], pixels.Pattern] = cache(
            lambda: pixels.pattern(image(), drawn()))
        """Its pixels clear of what seems drawn over it, as a search compares an upload's:
        a caption's letters would otherwise keep its pixels from matching its original's,
        and the scan checks the pair both ways round."""
        self.uncovered: Callable[[], bytes] = cache(
            lambda: geometry.uncovered_keypoints(image(), OVERLAID, letters=False))
        """A search's second look (``geometry.uncovered_keypoints``), from the thumbnail as
        the mirror keypoints are: its stored keypoints lie on whatever is drawn over it.
        None for an image with less than ``OVERLAID`` of it drawn over. Outside every dense
        stroke, not only letters as a search looks: outside letters alone, the outlines
        left to the look matched drawings of one style to each other, and the scan of
        ``bench/duplicates/duplicates.py`` found 18 false pairs instead of 13 (precision
        0.971 -> 0.961) for recall 0.898 -> 0.915."""
        self._side: Callable[[], int | None] = side
        """Its thumbnail's longer side (read from its header, not decoded again): the
        image's own up to ``thumbs.SIDE``. None when it has no thumbnail."""
        self.enlarged: Callable[[], bytes] = cache(
            lambda: enlarged_look(image(), letters=False)
            if (side() or thumbs.SIDE) < thumbs.SIDE else b"")
        """Its second look at it enlarged (``service.enlarged_look``, outside every dense
        stroke as its ``uncovered``), when it is small: its thumbnail, then, is the image
        itself. On ``bench/duplicates/duplicates.py`` pair recall 0.921 -> 0.935 (chains of
        edits 0.885 -> 0.920), no false pair more. The scan matches it only with neighbours
        larger than the image (``copy_checks.LARGER``)."""
        self.copy_inliers: Callable[[], float] = cache(
            lambda: scoring.copy_inliers(side() or scoring.FULL_SIDE))
        """Keypoint matches that make a copy of it (``scoring.copy_inliers``), by its
        thumbnail's size: as large as ``scoring.FULL_SIDE`` counts. Full size when it has
        no thumbnail."""
        self.stars: Callable[[], bytes] = cache(lambda: files.read(id_, STARS) or b"")
        """Its brightest points, when it is a point field (``bogv.model.stars``)."""
        self.matches: dict[tuple[bytes, bytes], geometry.Matched | None] = {}
        """Matches of each pair of keypoint sets matched so far."""
        self._likeness: dict[bytes, float] = {}

    def star_look(self) -> tuple[bytes, float]:
        """A search's star look (``geometry.star_look``) from its thumbnail, and how many
        times larger than the grey picture its stars were found on it is (what
        ``service.star_matches`` asks)."""
        grey = self._grey()
        points, factor = geometry.star_look(grey)
        side, _ = stars.unpack(self.stars())
        return points, factor * max(grey.shape) / side

    def match(self, own: bytes, other: bytes) -> geometry.Matched | None:
        """``geometry.match`` of one of its keypoint sets (``own``: its own or its mirror
        image's) and a candidate's, each pair matched once (bytes keep their hash, so a
        look-up costs no more than comparing them)."""
        if not own or not other:
            return None
        key = (own, other)
        if key not in self.matches:
            self.matches[key] = geometry.match(own, other)
        return self.matches[key]

    def inliers(self, own: bytes, other: bytes) -> int:
        """``geometry.inliers`` through the same memo as ``match``."""
        matched = self.match(own, other)
        return matched.count if matched else 0

    def likeness(self, pattern: pixels.Pattern, thumbnail: bytes) -> float:
        """``pixels.likeness`` of its own ``pattern`` and a candidate's thumbnail, each
        thumbnail compared once: the scan asks again for a candidate a search's own pixel
        check already compared (``copy_checks.supported_hit``)."""
        if thumbnail not in self._likeness:
            self._likeness[thumbnail] = pixels.likeness(pattern, thumbnail)
        return self._likeness[thumbnail]

    def aligned(self, thumbnail: bytes, matched: geometry.Matched,
                enough: float = pixels.ALIGNED) -> float:
        """``placed.likeness`` of its thumbnail and another's where ``matched`` (of its
        keypoints and the other's) puts them, at the sizes its keypoints may have been
        found at. Only this way round: also trying the other's pixels on its own added
        five false pairs on ``bench/duplicates/duplicates.py`` (17 against 12) for none
        found."""
        return placed.likeness(self._grey(), self.drawn(),
                               thumbs.keypoint_scales(self._image()), thumbnail, matched, enough)


def verify(files: Sidecar, query: Stored, found: Sequence[Candidate],
           keypoints: Callable[[int], bytes] | None = None, *, as_search: bool = False,
           further: Deeper | None = None,
           starred: Callable[[], tuple[Candidate, int] | None] | None = None) -> list[Hit]:
    """A stored image's candidates (best similarity first) scored and labelled by a search's
    checks (``service.verify``). ``keypoints`` reads a candidate's keypoints by id (the
    duplicate scan skips pairs it matched the other way round). ``as_search``: exactly as a
    search would for an upload of it: pixels compared where keypoint matches put them too
    (``service.compare_aligned``), and a copy of a small image verified by the matches its
    size allows (``Stored.copy_inliers``). The duplicate scan asks its own checks instead:
    pixels where the matches put them for every pair left unverified
    (``containment.supported``), at its own threshold; and a full-size image's matches of
    every pair. It checks each pair once, from either side, and the smaller image's
    allowance made more of a group's degraded copies share pairs with its other members: on
    ``bench/duplicates/duplicates.py`` the suggested image to keep was the planted original
    in 57 of 78 groups instead of 62 (re-compression counted as an edit; 54 instead of 57-58
    before), and one more pair was false (14), for 0.014 more recall (0.912). ``further``
    as in ``service.verify``: "more like this" looks as deep as a search, the scan does not;
    and at a small image enlarged as a search does (the scan takes that look itself, at the
    neighbours its second look did not verify: ``copy_checks.uncovered``). Neither takes a
    search's guided look (``geometry.guided``): from a stored thumbnail, the brick wall under
    text of ``tests/test_quality.py`` kept 28 matches that way, 86 from the upload.
    ``starred``: the last look of a search at the stored point field its stars name
    (``Service.starred``); the scan takes its own (``copy_checks.Checks.by_stars``)."""
    def read(id_: int, kind: str) -> bytes:
        if kind == KEYPOINTS and keypoints is not None:
            return keypoints(id_)
        return files.read(id_, kind) or b""

    def placed_likeness(_: int, matched: geometry.Matched, thumbnail: bytes) -> float:
        return query.aligned(thumbnail, matched, scoring.COPY_ALIGNED)

    return service_verify(found, [query.keypoints()], query.mirrored, query.pattern, read,
                          query.sha256, query.uncovered, match=query.match,
                          likeness_of=query.likeness,
                          aligned=placed_likeness if as_search else None,
                          copy_inliers=query.copy_inliers() if as_search else scoring.COPY_INLIERS,
                          further=further, enlarged=query.enlarged if as_search else None,
                          starred=starred)


def search_stored(service: Service, id_: int, limit: int = 10, min_score: float = 0.0,
                  unique_key: bool = False) -> list[Hit]:
    """The stored images most like record ``id_`` (itself left out), best first: the same
    hits, ``limit``, ``min_score`` and ``unique_key`` as a search with its file. With
    ``unique_key`` the record stands for its own key, so that key is not a hit: the
    answer is the *other* keys most like it."""
    service.check_limit(limit)
    records = service.store.query(f"id == {id_}")
    vectors = [v for _, v in service.store.vectors(f"id == {id_}")]
    if not records or not vectors:
        raise NotFound(f"no record with id {id_}", field="id")
    per = "key" if unique_key else "image"

    def others(n: int) -> list[Candidate]:
        return [c for c in service.store.search(vectors[0], n + 1, per=per) if c.id != id_]

    found = others(max(limit, MORE_CHECKED))
    query = Stored(service.files, id_, records[0].sha256)
    hits = verify(service.files, query, found, as_search=True,
                  further=service.deeper(vectors[0], {id_, *(c.id for c in found)}, per=per),
                  starred=service.starred(query.stars, query.star_look, vectors[0], per=per,
                                          copy_inliers=query.copy_inliers(), leave_out={id_}))
    hits.sort(key=lambda h: -h.score)
    return [h for h in hits[:limit] if h.score >= min_score]
