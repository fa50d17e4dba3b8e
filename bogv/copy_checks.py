"""Whether stored images are copies of each other: one image against its neighbours (the
duplicate scan, ``Checks``) and one pair (anchoring a group, ``bogv.duplicates``), by the
checks a search runs for an upload of it.

Everything here reads record files (``bogv.sidecar``) and the two in-memory indexes, never
Milvus, so the scan's checks can also run in worker processes (``bogv.scan_processes``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache

from bogv.containment import SUPPORTED, contained, duplicate, supported
from bogv.model import geometry, pixels, scoring
from bogv.pieces import Pieces
from bogv.results import Hit
from bogv.service import CHECKED, KEYPOINTS, MORE_CHECKED, THUMBNAIL, VOTED, star_matches
from bogv.sidecar import Sidecar
from bogv.similar import Stored, verify
from bogv.starfields import StarFields
from bogv.store import Candidate
from bogv.verdicts import Pair, pair

__all__ = ["LARGER", "Checks", "Seen", "by_keypoints", "is_duplicate", "support",
           "supported_hit", "uncovered"]

LARGER = 1.2
"""Times a neighbour's keypoints span the image's own (``geometry.span``: about the size
each was found at) from which a small image's enlarged look (``Stored.enlarged``) is
matched with it: only a copy shrunk against its original needs that look. Taken at every
neighbour of every small image (most pictures of the speed bench's 100k collection), it
made that scan 37% longer (1,025 -> 1,407 s). On ``bench/duplicates/duplicates.py`` 1.2
keeps all it found there (pair recall 0.935), 1.5 less (0.929)."""


@dataclass
class Seen:
    """What one scan knows of the pairs it has checked so far, so that a pair is checked
    from one side only.

    ``matched[id]``: images checked before ``id`` that matched its keypoints with their
    own; ``copies[id]``: those that found it a copy. Entries are kept only for images not
    checked yet (those of the page still ``waiting``, or beyond the page's ``last`` id:
    pages come in id order) and dropped once checked, which keeps both small.
    Two images checked at the same time may still both check their pair.
    """

    dismissed: set[str]
    matched: dict[int, set[int]] = field(default_factory=dict)
    copies: dict[int, set[int]] = field(default_factory=dict)
    waiting: set[int] = field(default_factory=set)
    last: int = 0
    parent: dict[int, int] = field(default_factory=dict)
    """Union-find of the copies found so far: which images one group will propose."""
    learned: list[tuple[int, int | tuple[Pair, ...]]] = field(default_factory=list)
    """What ``read`` and ``found`` were told since ``done`` (``bogv.scan_processes`` sends
    it to the other processes checking the scan's images)."""

    def root(self, id_: int) -> int:
        while (up := self.parent.get(id_, id_)) != id_:
            self.parent[id_] = self.parent.get(up, up)  # halve the path
            id_ = up
        return id_

    def joined(self, a: int, b: int) -> bool:
        """Whether copies found so far already link ``a`` and ``b``."""
        return self.root(a) == self.root(b)

    def page(self, ids: Sequence[int]) -> None:
        self.waiting, self.last = set(ids), max(ids)

    def start(self, id_: int, others: Iterable[int]) -> tuple[set[int], set[int]]:
        """The images whose keypoints ``id_`` skips, and those it skips every check of:
        already copies, or dismissed by a person."""
        self.waiting.discard(id_)
        known = self.copies.get(id_, set()) | {
            o for o in others if pair(id_, o, "copy").key in self.dismissed}
        return self.matched.setdefault(id_, set()), known

    def _later(self, id_: int) -> bool:
        return id_ in self.waiting or id_ > self.last

    def read(self, id_: int, other: int) -> None:
        """``id_`` matches ``other``'s keypoints."""
        self.learned.append((id_, other))
        self._read(id_, other)

    def _read(self, id_: int, other: int) -> None:
        if self._later(other):
            self.matched.setdefault(other, set()).add(id_)

    def found(self, id_: int, copies: Iterable[Pair]) -> None:
        copies = tuple(copies)
        self.learned.append((id_, copies))
        self._found(id_, copies)

    def _found(self, id_: int, copies: tuple[Pair, ...]) -> None:
        for p in copies:
            self.parent[self.root(p.a)] = self.root(p.b)
            other = p.b if p.a == id_ else p.a
            if self._later(other):
                self.copies.setdefault(other, set()).add(id_)

    def learn(self, learned: Iterable[tuple[int, int | tuple[Pair, ...]]]) -> None:
        """What another process's ``Seen`` learned (its ``learned``)."""
        for id_, what in learned:
            if isinstance(what, int):
                self._read(id_, what)
            else:
                self._found(id_, what)

    def done(self, ids: Iterable[int]) -> None:
        for id_ in ids:
            self.matched.pop(id_, None)
            self.copies.pop(id_, None)
        self.learned = []




@dataclass
class Checks:
    """What the scan's checks read: record files, the index of descriptor pieces and that
    of star fields, as a search has them."""

    files: Sidecar
    pieces: Pieces
    star_fields: StarFields

    def check(self, id_: int, found: list[Candidate], seen: Seen) -> tuple[list[Pair], int]:
        """The copies among one image's neighbours, by the checks of a search for it, and
        how many keypoint matchings that took.

        Neighbours are mostly mutual, so most pairs would be checked twice, once from
        each side. The image skips the keypoints of those an earlier image already matched
        with its own, as if they had none, and every check of those it was already found a
        copy of, or that a person dismissed (``Seen``).
        """
        files = self.files
        own = next((c.sha256 for c in found if c.id == id_), "")
        others = [c for c in found if c.id != id_][:MORE_CHECKED]
        earlier, known = seen.start(id_, (c.id for c in others))
        points = cache(lambda other: files.read(other, KEYPOINTS) or b"")

        def keypoints(other: int) -> bytes:
            if other in earlier or other in known:
                return b""
            seen.read(id_, other)
            return points(other)

        query = Stored(files, id_, own)

        def match_of(other: int) -> geometry.Matched | None:
            return query.match(query.keypoints(), keypoints(other))

        hits = verify(files, query, others, keypoints)
        # A search matches the keypoints of its first ``CHECKED`` candidates, of the rest
        # only while none is a copy, and of none that looks too far off
        # (``MATCH_SIMILARITY``). Here every neighbour is matched: an original's other copies
        # fill its first places, and a screenshot or a corner crop looks further off than a
        # look-alike, by a vector that is mostly the window's (the search also looks for the
        # picture inside its query, a stored vector is the whole frame's).
        hits = [by_keypoints(query, c, match_of(c.id))
                if h.match == "similar" and (i >= CHECKED
                                             or c.similarity < scoring.MATCH_SIMILARITY)
                else h for i, (c, h) in enumerate(zip(others, hits, strict=True))]
        # A search's second look (``scoring.check_uncovered``), and that look at a small
        # image enlarged (``Stored.enlarged``), at the neighbours a search
        # would check (the first ``CHECKED``, all when none is a copy) that no check
        # verified yet, with their real keypoints: unlike a matching, it is not the same
        # from the other side (what is drawn over this image is not drawn over the
        # neighbour), so the other side having matched the pair does not spare it.
        looked = MORE_CHECKED if all(h.match == "similar" for h in hits) else CHECKED
        second = {c.id for i, c in enumerate(others) if i < looked and c.id not in known
                  and c.similarity >= scoring.UNCOVERED_SIMILARITY}
        hits = [uncovered(query, c, h, points(c.id)) if c.id in second and h.match == "similar"
                else h for c, h in zip(others, hits, strict=True)]
        if any(h.match == "copy" for h in hits):
            # A search stops at its copy: the mirror and pixel checks wait for a best hit
            # that keypoints did not verify. Among copies of one picture a flipped or tiny
            # copy would never get them, so each one left that looks as close as a flipped
            # copy does (``MIRROR_SIMILARITY``) is checked on its own, as the best hit it
            # would be without the others. Not every neighbour: each pixel check is a
            # chance of a false copy (from 0.35 up, star fields gained 64 false pairs on
            # ``bench/duplicates/duplicates.py``). Nor one that copies found so far
            # already link to it: their pair matters only if one of them becomes the
            # reference of their group, and anchoring checks those pairs itself.
            seen.found(id_, [pair(id_, h.id, "copy") for h in hits if h.match != "similar"])
            hits = [verify(files, query, [c], points)[0]
                    if h.match == "similar" and c.similarity >= scoring.MIRROR_SIMILARITY
                    and c.id not in known and not seen.joined(id_, c.id)
                    else h for c, h in zip(others, hits, strict=True)]
        # Each pair left unverified is looked at once more, from one side (the other side
        # skips it, ``earlier``), for keypoints that put one picture inside the other (its
        # own, or its second look's where it took one: ``_support``) and pixels that then
        # verify it (``containment.supported``).
        hits = [supported_hit(query, c, h, files,
                           support(query, keypoints(c.id),
                                    points(c.id) if c.id in second else None))
                if h.match == "similar" and c.id not in known else h
                for c, h in zip(others, hits, strict=True)]
        # Past its ten neighbours, as a search looks past its first ten candidates when
        # none is a copy (``Service.deeper``): under a watermark, an app's overlay or dark
        # text a star field's vector can rank its original past the 50th. The ``VOTED``
        # stored images sharing the most descriptor pieces with it, of the whole
        # collection, are matched, by the second look too. On
        # ``bench/duplicates/duplicates.py`` pair recall 0.904 -> 0.921 (watermark and app
        # overlay 0.857 and 0.833 -> 1, dark text 0.625 -> 0.75), no false pair more; the
        # vote it replaces, among neighbours 11-50 (the one sharing ``service.DOMINANT``
        # times as many as any other), found none of those, and reading 50 neighbours
        # instead of 10 cost more than the index's look-ups.
        if all(h.match == "similar" for h in hits):
            for c in map(Candidate.unranked, self.pieces.best(
                    [query.keypoints()], VOTED, {id_, *(c.id for c in others), *known})):
                hits.append(uncovered(query, c, by_keypoints(query, c, match_of(c.id)),
                                       points(c.id)))
        copies = [pair(id_, h.id, "copy", h.score, h.match) for h in hits
                  if h.match != "similar" and h.id not in known
                  and is_duplicate(query, h, points(h.id), files)]
        if not copies:
            starred = self.by_stars(query, {id_, *known}, points)
            copies = [] if starred is None else [
                pair(id_, starred.id, "copy", starred.score, starred.match)]
        seen.found(id_, copies)
        return copies, len(query.matches)

    def by_stars(self, query: Stored, leave_out: set[int],
                  points: Callable[[int], bytes]) -> Hit | None:
        """The copy a point field's stars find when no other check found one, as a search's
        last look does (``Service.starred``): the stored field the index of star fields
        names (none of ``leave_out``), if its stars and the keypoints where they put it
        (``service.star_matches``, from the query's thumbnail) make it a copy at the
        query's size (``Stored.copy_inliers``). The transform of a shrunk copy's stars
        onto its original's is a verdict of its own, so ``containment.duplicate`` does not
        judge it again: its matches are the look's, not the stored keypoints'."""
        seen = query.stars()
        aligned = self.star_fields.best(seen, leave_out) if seen else None
        if aligned is None:
            return None
        needed = query.copy_inliers()
        count = star_matches(query.star_look(), aligned, points(aligned.id), needed)
        if count < needed:
            return None
        return Hit(aligned.id, "", "", scoring.score(0.0, count, copy_inliers=needed), "copy")


def back(files: Sidecar, query: Stored, other: int) -> Callable[[], float]:
    """The pixel check the other way round: ``other``'s pixels against the query's."""
    return lambda: pixels.likeness(Stored(files, other).pattern(), query.thumbnail())


def ahead(query: Stored, thumbnail: Callable[[], bytes]) -> Callable[[], float]:
    """The pixel check as a search runs it: the query's pixels against ``thumbnail``, the
    other image's (``Stored.likeness`` keeps what it measured, by those bytes)."""
    return lambda: query.likeness(query.pattern(), thumbnail())


def is_duplicate(query: Stored, hit: Hit, stored: bytes, files: Sidecar) -> bool:
    """``containment.duplicate`` of a labelled hit, by the query's kept keypoints, mirror
    keypoints, second look and matches; ``stored`` are the hit's keypoints."""
    return duplicate(hit, [query.keypoints, query.mirrored, query.uncovered], stored,
                     back(files, query, hit.id), query.match,
                     ahead=ahead(query, lambda: files.read(hit.id, THUMBNAIL) or b""))


def uncovered(query: Stored, candidate: Candidate, hit: Hit, stored: bytes) -> Hit:
    """``hit`` made a copy by the query's second look (``Stored.uncovered``) or, against a
    candidate whose keypoints span ``LARGER`` times the query's, that look at it enlarged
    (``Stored.enlarged``), else itself."""
    looks = [query.uncovered]
    if geometry.span(stored) >= LARGER * geometry.span(query.keypoints()):
        looks.append(query.enlarged)
    for look in looks:
        matched = query.match(look(), stored)
        if matched is not None and matched.count >= scoring.COPY_INLIERS:
            return by_keypoints(query, candidate, matched)
    return hit


def supported_hit(query: Stored, candidate: Candidate, hit: Hit, files: Sidecar,
               matched: geometry.Matched | None) -> Hit:
    """``hit`` made a copy by ``containment.supported``, scored by the pixels that verified
    it; else ``hit`` itself."""
    thumbnail = cache(lambda: files.read(candidate.id, THUMBNAIL) or b"")
    likeness = supported(matched, [ahead(query, thumbnail), back(files, query, candidate.id)],
                         lambda m: query.aligned(thumbnail(), m))
    if not likeness:
        return hit
    return Hit(hit.id, hit.key, hit.filepath, scoring.score(candidate.similarity, pixels=likeness),
               "copy")


def support(query: Stored, stored: bytes, second: bytes | None) -> geometry.Matched | None:
    """The keypoint matches that may support a copy (``containment.supported``): the
    query's own keypoints' with ``stored``, or its second look's (``Stored.uncovered``)
    with ``second`` where it looked at that neighbour, whichever can (``SUPPORTED``
    matches, one picture inside the other), else the most. Text over a copy holds its
    strongest corners: three lines of it over a photo rotated 6° left 9 matches at first
    look and 27 at the second."""
    views = [query.match(query.keypoints(), stored)]
    if second is not None:
        views.append(query.match(query.uncovered(), second))

    def order(matched: geometry.Matched | None) -> tuple[bool, int]:
        if matched is None:
            return False, 0
        return matched.count >= SUPPORTED and contained(matched), matched.count

    return max(views, key=order)


def by_keypoints(query: Stored, candidate: Candidate, matched: geometry.Matched | None) -> Hit:
    """A candidate labelled by its keypoint matches alone, as a search labels one it
    matched."""
    n = matched.count if matched else 0
    return Hit(candidate.id, candidate.key, candidate.filepath,
               scoring.score(candidate.similarity, n),
               scoring.match(candidate.similarity, inliers=n,
                             same_bytes=bool(query.sha256) and candidate.sha256 == query.sha256))


