"""The groups of one component of verified pairs: its reference image, what verifies
against it, and which image to keep (``Anchoring.anchored``), in this process's threads or
in worker processes (``bogv duplicates --processes``: ``in_processes``).

**Groups are anchored, not chained.** Verified pairs only *propose* a group (the connected
component). Chaining them would call A and C duplicates because each shares pixels with B:
two tiles of one aerial photo that each overlap a third, a left and a right crop of one
panorama, a photo, its captioned copy and a third frame of the burst that copy was mistaken
for. Deleting C because it "duplicates" A would lose a picture. So each component gets a
reference image (the one most members verify against, ties to the one to keep), and a
member is only what is verified *against the reference itself*: pairs the scan already
checked, else the same checks run now (then saved, never run twice); or against a member
holding the whole reference (``_through_holders``: as large, or larger and ``_holds``), so its
own copies are copies of the reference too, however little of it two edits left (a crop
of its greyscale copy). What neither verifies stays out, and forms groups of its own
around its own reference. Every member of a group is thus a copy of the image the group
suggests keeping, which is what makes deleting the others safe. On
``bench/duplicates/duplicates.py`` the links through copies as large took pair recall from
0.785 to 0.810 (chaining whole components: 0.817), precision 0.969 -> 0.970; through larger
copies holding the reference too, 0.885 -> 0.898 (chaining: 0.898), precision 0.973.

**Which image to keep** is the reference or a member that holds the whole of it at least as
sharp (``_holds``): the reference is what the others are copies of, and that may be a small
copy (a downscale more copies verify against) while the original, a member, holds all of it
at more pixels; a screenshot's window around it, a crop of it or a shrunk copy of it in a
larger picture does not. Holding is transitive: a member holding a holder holds the
reference (the original of a downscale that holds a small corner cut from it). Among
those, in the order a person values: the most pixels,
counting only a clear difference (``SMALLER``: a caption banner or a screenshot's frame add
some pixels to a copy, a downscale removes many; an upscaled copy would still fool it, but
upscaling is rare next to downscaling); then the least edited: the one that looks edited
from the fewest of the others as large, each compared with each (``bogv.model.edits``: text
or a sticker drawn over, blurred, greyscale, washed out; ``_cropped``: a part cut from the
other, by keypoints; ``_turned``: turned within its frame; ``bogv.model.compression``:
compressed harder than a copy of the same pixel size, by their files where the service may
read them), and among those the one
sharing the most with all the others (its pair scores summed: an original keeps its pixels
in every edit, a crop and a captioned copy share less with each other; but in a chain of
edits the copy edited again shares the most);
then the oldest. On ``bench/duplicates/duplicates.py`` the planted original is kept in
68 of the 80 groups holding one, and in 64 when every original is stored after its copies
(65 and 60 before holding was transitive, crops were judged by their whole frames, blur at
the thumbnail's own size and turned copies told; earlier 62 of 78 and 55, 57-58 before
re-compression counted as an edit, 54-57 before crops did, 30 and 27 by the shares alone,
75 and 22 by the oldest alone; the scan's two threads move the pair scores, so the shares).
Never the largest file: a re-saved JPEG at quality 95 outweighs its original.

**Anchoring reads record files and image files, never Milvus** (the caller reads each
component's records, pairs and vectors), so components can be anchored in worker processes:
the checks hold Python's GIL for much of their time, and two threads anchored the groups of
``bench/duplicates/duplicates.py``'s 10k collection in 46.4 s against one thread's 48.7 s,
for 67.4 s of CPU against 45.0 s.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import signal
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from operator import attrgetter
from typing import Any

import cv2
import numpy as np
from PIL import Image

from bogv import freed, sources, thumbs
from bogv.config import Settings
from bogv.containment import COVERED, SUPPORTED, cut, filled, shares
from bogv.copy_checks import is_duplicate, support, supported_hit
from bogv.errors import BogvError
from bogv.model import compression, edits, geometry, scoring
from bogv.model.content import framed
from bogv.service import KEYPOINTS, THUMBNAIL
from bogv.sidecar import Sidecar
from bogv.similar import Stored, verify
from bogv.store import Candidate, Record
from bogv.verdicts import Pair, Verdict, pair

__all__ = ["HEADER", "SMALLER", "Anchoring", "Component", "Group", "Member", "anchor_here",
           "in_processes", "rank"]

HEADER = 1 << 18
"""Bytes of an image file read for its pixel size. A JPEG's size follows its EXIF, ICC and
XMP segments, which almost always end well inside this; a file whose size lies further in is
read whole."""
SMALLER = 1.5
"""A copy with this many times fewer pixels than another is the smaller one. Under it, size
says little: a caption banner, a screenshot's window or a stretch *add* pixels to a copy
(15-30% on ``bench/quality/quality_edits.py``), while a downscale to 80% already removes 36%."""
EVERY_ANCHOR = 12
"""Components up to this size try every member as the reference (at most 66 pair checks,
most of them done by the scan already); larger ones take the best image to keep."""
_RESOLUTION = 1.1
"""Reference pixels per pixel of a larger member under which it holds the reference at the
reference's own resolution or finer (1 for a crop's original, 0.3 for a 30% downscale's;
more than 1 for a photo shown shrunk in a screenshot): a tenth for the keypoints' error."""
_CROPPED = 0.95
"""Pixels of a copy, against another's, under which it may be a part cut from it
(``_cropped``): whole-frame edits keep the size, a crop keeping 80% of each side has 64%."""
_TURNED = 8.0
"""Degrees the keypoints must turn one copy onto the other by for it to be a turned copy
(``_turned``). Stretching a picture (``squash 1.3x`` on ``bench/duplicates/duplicates.py``)
turns the best similarity by up to 6.5 degrees; its copies turned 10 degrees measured
9.8-10.3."""
_SOFTER = 0.9
"""Fine detail (``edits.Look.sharpness``), against the other copy's, under which a copy
turned against it is the one turned: resampling softens it. On those groups copies turned
10 degrees kept 0.59-0.94 of their original's detail (8 of 10 under 0.9), and no original
had under 1.07 of a turned copy's."""
_SEAM = 1.03
"""How much wider than the other copy's frame a turned copy's fill is looked for beyond:
its seam with the picture, blurred by resampling and JPEG, is no fill."""
_COMPARED = 6
"""Most images of a group's largest ones compared with each other for edits (each pair
both ways, 30 comparisons), the oldest first. The groups of the 10k collection of
``bench/duplicates/duplicates.py`` took 27-28 s to make before any comparison, 32.5 s
comparing up to 12, 29.6 s up to 6 (their thumbnails decoded at half size)."""


@dataclass(frozen=True)
class Member:
    """An image of a group: its score and label (``exact``, ``copy``) against the group's
    suggested image, which is itself labelled ``reference`` with score 1 (when the others
    were verified against another member, through that one: the weaker of the two)."""

    id: int
    key: str
    filepath: str
    score: float
    match: str
    suggested: bool
    width: int
    height: int


_MEMBER_FIELDS = attrgetter(*(f.name for f in fields(Member)))
"""A member's fields as a tuple, as ``dataclasses.astuple`` gives them without its deep copy
of each value (the 30k collection's 26,491 members in 83 ms instead of 191 ms)."""


@dataclass(frozen=True)
class Group:
    """Copies of one image: the suggested one first, then the others best score first."""

    members: list[Member]
    why: str

    @property
    def suggested(self) -> int:
        return self.members[0].id

    def to_json(self) -> dict[str, Any]:
        """As ``KeptGroups`` keeps it (``from_json`` reads it back)."""
        return {"why": self.why, "members": list(map(_MEMBER_FIELDS, self.members))}

    @classmethod
    def from_json(cls, kept: dict[str, Any]) -> Group:
        return cls([Member(*m) for m in kept["members"]], kept["why"])



@dataclass(frozen=True)
class _Node:
    record: Record
    width: int
    height: int
    shared: float
    """Sum of the scores of its verified pairs in the component."""


def rank(nodes: Sequence[_Node]) -> list[_Node]:
    """The order references are tried in: the large ones (``SMALLER`` times the largest's
    pixels or more), among them the one sharing most with the rest, then the oldest; then
    the smaller ones."""
    largest = max(n.width * n.height for n in nodes)
    return sorted(nodes, key=lambda n: (n.width * n.height * SMALLER < largest, -n.shared,
                                        n.record.id))


def _shrunk(node: _Node) -> float:
    """Image pixels per pixel of its keypoint picture (``geometry.grey``: shrunk to fit
    ``geometry.SIDE``, never enlarged)."""
    return max(1.0, max(node.width, node.height) / geometry.SIDE)


def _keypoint_frame(node: _Node) -> np.ndarray:
    """The whole image as a polygon in its keypoint picture's pixels."""
    f = _shrunk(node)
    width, height = node.width / f, node.height / f
    return np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)


def _edited(a: edits.Look | None, b: edits.Look | None) -> tuple[str, ...]:
    return edits.edits(a, b) if a is not None and b is not None else ()


def _why(keep: _Node, members: Sequence[Member], tier: Sequence[_Node],
         looked: dict[int, tuple[str, ...]]) -> str:
    """Why ``keep`` of the group's ``members`` (the reference first), chosen among the
    ``tier`` of the largest images holding the picture; ``looked``: what each other of
    them shows against it (``edits.edits``)."""
    if len(tier) == 1:
        area = keep.width * keep.height
        if all(m.width * m.height * SMALLER < area for m in members if m.id != keep.record.id):
            return f"largest: {keep.width}x{keep.height} px"
        if keep.record.id != members[0].id:
            return f"largest holding the whole picture: {keep.width}x{keep.height} px"
        return "the others are copies of it (a larger one is not of them all)"
    found = sorted({e for shown in looked.values() for e in shown})
    if found:
        return (f"least edited: {sum(map(bool, looked.values()))} of the other {len(looked)} "
                f"as large look {' or '.join(found)}")
    if all(keep.shared > n.shared for n in tier if n is not keep):
        return "least edited: it shares the most with the other copies"
    return "oldest of equally large copies"



@dataclass(frozen=True)
class Component:
    """What anchoring one component of verified pairs reads, all of it among its images:
    their records, their verified pairs as ``edges`` (each image's copies, by score), every
    pair known (copies, pairs found distinct, pairs a person dismissed) and their vectors
    (the checks' similarity; an image without one verifies nothing)."""

    records: dict[int, Record]
    edges: dict[int, dict[int, float]]
    known: list[Pair]
    vectors: dict[int, np.ndarray]


class Anchoring:
    """Anchors components: the record files and image files it reads, and what it learned
    of them (records never change)."""

    def __init__(self, files: Sidecar, settings: Settings) -> None:
        self.files, self.settings = files, settings
        self._sizes: dict[int, tuple[int, int]] = {}
        """Pixel sizes read for ranking (a deleted record is not asked)."""
        self._held: dict[tuple[int, int], bool] = {}
        """``_holds`` of (member, reference) ids for members clearly larger, asked by every
        anchor tried and again to suggest one to keep."""
        self._harder: dict[tuple[int, int], bool] = {}
        """``_recompressed`` of (member, member) ids as large as each other (a whole file
        is decoded to judge a pair)."""

    def anchored(self, component: Component) -> tuple[list[Group], list[Pair]]:
        """The groups of one component: its reference image and what is verified against
        it, then the same for what is left; and the pairs checked for them (to be saved:
        never checked twice).

        The reference is the image the most others verify against, trying each member of
        a component of up to ``EVERY_ANCHOR`` images (ties go to the better one to keep,
        ``rank``, unless it only frames its copies: ``_better_reference``), else the
        best to keep alone. The best to keep is not always the one the
        others are copies of: a screenshot of a photo has more pixels than the photo, and
        a crop of that photo is no copy of the screenshot's frame.
        """
        records, edges, vectors = component.records, component.edges, component.vectors
        known, fresh = {p.key: p for p in component.known}, list[Pair]()
        groups = []
        left = set(records)
        while len(left) > 1:
            nodes = rank([self._node(records[i], edges[i], left) for i in left])
            tries = nodes if len(nodes) <= EVERY_ANCHOR else nodes[:1]
            best: list[Member] = []
            reference = nodes[0]
            for anchor in tries:
                members = self._members(anchor, nodes, known, fresh, vectors)
                if self._better_reference(members, anchor, best, reference):
                    best, reference = members, anchor
            left -= {m.id for m in best}
            left = {i for i in left if any(j in left for j in edges[i])}
            if len(best) > 1:  # else nothing verifies against it: the rest regroup alone
                groups.append(self._suggest(reference, best, nodes))
        return groups, fresh

    def _suggest(self, reference: _Node, members: list[Member], nodes: Sequence[_Node]
                 ) -> Group:
        """The group of ``members`` (verified against ``reference``, first) with the image
        to keep first: the reference, or a member holding the whole of it (``_holds``), in
        the order a person values: the most pixels (``SMALLER``), then the least edited
        (``edits.edits``, ``_cropped``, ``_turned`` and ``_recompressed``: fewest of the
        others it looks edited from; then sharing the most with them), then the oldest.
        Each other member is scored against it through the reference (the weaker of the
        two links), as ``_through_holders`` scores one."""
        by_id = {n.record.id: n for n in nodes}
        holders, largest = [reference], reference.width * reference.height
        larger_first = sorted((by_id[m.id] for m in members[1:]),
                              key=lambda n: -n.width * n.height)
        for node in larger_first:
            if node.width * node.height * SMALLER < largest:
                break  # too small to be kept, as is everything after it
            if self._holds(node, reference):
                holders.append(node)
                largest = max(largest, node.width * node.height)
        # Holding is transitive: the original of a downscale holds a corner cut from that
        # downscale, though the few keypoints of the small corner match too few of its own.
        # Each member left that could be kept is tried against the largest holders it is
        # clearly larger than, smaller holders first found above.
        for node in larger_first:
            size = node.width * node.height
            if size * SMALLER < largest:
                break
            if node not in holders and any(
                    self._holds(node, holder) for holder in sorted(
                        (h for h in holders[1:] if h.width * h.height * SMALLER < size),
                        key=lambda h: -h.width * h.height)[:_COMPARED]):
                holders.append(node)
                largest = max(largest, size)
        tier = sorted((n for n in holders if n.width * n.height * SMALLER >= largest),
                      key=lambda n: n.record.id)[:_COMPARED]
        seen = {n.record.id: self._look(n.record.id) for n in tier} if len(tier) > 1 else {}
        harder = self._recompressed(tier)
        shows = {(n.record.id, o.record.id): _edited(seen[n.record.id], seen[o.record.id])
                 + (("cropped",) if self._cropped(n, o) else ())
                 + (("turned",) if self._turned(n, o, seen) else ())
                 + (("re-compressed",) if (n.record.id, o.record.id) in harder else ())
                 for n in tier for o in tier if o is not n}
        keep = min(tier, key=lambda n: (sum(bool(shows[n.record.id, o.record.id])
                                            for o in tier if o is not n),
                                        -n.shared, n.record.id))
        why = _why(keep, members, tier, {n.record.id: shows[n.record.id, keep.record.id]
                                         for n in tier if n is not keep})
        if keep is reference:
            rest = members[1:]
        else:
            link = next(m for m in members if m.id == keep.record.id)
            rest = [replace(m, score=min(m.score, link.score)) for m in members[1:]
                    if m.id != keep.record.id]
            rest.append(replace(members[0], score=link.score, match=link.match,
                                suggested=False))
        first = Member(keep.record.id, keep.record.key, keep.record.filepath, 1.0,
                       "reference", True, keep.width, keep.height)
        return Group([first, *sorted(rest, key=lambda m: -m.score)], why)

    def _look(self, id_: int) -> edits.Look | None:
        """A member's thumbnail as ``edits`` compares it (None when it cannot be read),
        decoded at the size compared and whole, for blur."""
        data = self.files.read(id_, THUMBNAIL) or b""
        image, whole = thumbs.decode(data, edits.SIDE), thumbs.decode(data)
        return None if image is None or whole is None else edits.look(image, whole)

    def _thumbnail(self, id_: int, side: int | None = None) -> Image.Image | None:
        return thumbs.decode(self.files.read(id_, THUMBNAIL) or b"", side)

    def _holds(self, node: _Node, reference: _Node) -> bool:
        """Whether ``node``, verified against ``reference``, holds the whole of it at least
        as sharp, so keeping it loses none of the picture. It does when it has about as
        many pixels; with clearly more, when its keypoints place all of the reference
        (``COVERED``) inside it at the reference's own resolution or finer
        (``_RESOLUTION``), and not framed in flat UI (``content.framed``): a screenshot
        has more pixels than the photo it shows, often enlarged; the original of a crop or
        of a downscaled copy holds it whole, at more pixels. When the keypoints cannot tell
        (``SUPPORTED``), or the reference's pixel size could not be read (0 x 0: no part of
        it can be said to be held), the reference stays."""
        if node.width * node.height <= reference.width * reference.height * SMALLER:
            return True
        key = node.record.id, reference.record.id
        if key not in self._held:
            self._held[key] = self._holds_larger(node, reference)
        return self._held[key]

    def _holds_larger(self, node: _Node, reference: _Node) -> bool:
        """``_holds`` for a ``node`` clearly larger than ``reference``."""
        matched = self._matched(node, reference)
        if matched is None or matched.count < SUPPORTED:
            return False
        mine, theirs = _keypoint_frame(node), _keypoint_frame(reference)
        scale = float(np.hypot(*matched.matrix[:, 0])) * _shrunk(reference) / _shrunk(node)
        if shares(mine, theirs, matched.matrix)[1] < COVERED or scale > _RESOLUTION:
            return False
        return not self._framed(node, cv2.transform(
            theirs[None], cv2.invertAffineTransform(matched.matrix))[0])

    def _cropped(self, node: _Node, other: _Node) -> bool:
        """Whether ``node``, no more than ``SMALLER`` times smaller than ``other``, is a part
        cut from it: ``other``'s keypoints place all of it inside ``other``, which shows
        more of the picture around it (``containment.cut``), and not flat UI around a
        photo (``content.framed``), as a caption banner or a screenshot's window is.
        Copies alike in pixels are not compared (a whole-frame edit keeps the size)."""
        if node.width * node.height >= _CROPPED * other.width * other.height:
            return False
        matched, mine = self._matched(node, other), _keypoint_frame(node)
        if matched is None or not cut(matched, mine, _keypoint_frame(other)):
            return False
        return not self._framed(other, cv2.transform(mine[None], matched.matrix)[0],
                                any_margin=True)

    def _turned(self, node: _Node, other: _Node, looks: dict[int, edits.Look | None]) -> bool:
        """Whether ``node`` is ``other`` turned within its frame: the keypoints turn it by
        ``_TURNED`` degrees or more onto ``other``, each frame covering ``COVERED`` of the
        other's (not a crop of it), and it shows what only a turn leaves, as
        a turn alone does not say which came first: flat fill beyond ``other``'s frame (the
        corners, ``content.framed`` around ``other``'s frame widened by ``_SEAM``) where
        ``other`` is not flat beyond its own (a drawing on a plain ground is flat in every
        corner, turned or not), or, alike in pixels (``_CROPPED``), less fine detail
        (``_SOFTER``: resampling softens). The keypoints are matched only for a copy
        softer than the other, or with plain corners (``edits.Look.plain_corners``) where
        the other has not: matching every pair of a tier took the groups of 10k images 15%
        longer."""
        mine, theirs = looks.get(node.record.id), looks.get(other.record.id)
        if mine is None or theirs is None:
            return False
        pixels, others = node.width * node.height, other.width * other.height
        softer = (min(pixels, others) >= _CROPPED * max(pixels, others)
                  and mine.sharpness < _SOFTER * theirs.sharpness)
        if not softer and (not mine.plain_corners or theirs.plain_corners):
            return False  # nothing can tell: no keypoints matched
        matched = self._matched(node, other)
        if matched is None or matched.count < SUPPORTED:
            return False
        cos, sin = matched.matrix[0, 0], matched.matrix[1, 0]
        mine_frame, their_frame = _keypoint_frame(node), _keypoint_frame(other)
        if (abs(float(np.degrees(np.arctan2(sin, cos)))) < _TURNED
                or min(shares(mine_frame, their_frame, matched.matrix)) < COVERED):
            return False
        return softer or (
            self._filled_beyond(node, their_frame, cv2.invertAffineTransform(matched.matrix))
            and not self._filled_beyond(other, mine_frame, matched.matrix))

    def _filled_beyond(self, node: _Node, frame: np.ndarray, matrix: np.ndarray) -> bool:
        """Whether ``node`` is flat beyond another copy's ``frame`` (``matrix`` carrying it
        into ``node``'s keypoint pixels), widened by ``_SEAM``."""
        frame = cv2.transform(frame[None], matrix)[0]
        centre = frame.mean(axis=0)
        return self._framed(node, centre + (frame - centre) * _SEAM, any_margin=True)

    def _matched(self, node: _Node, other: _Node) -> geometry.Matched | None:
        """``geometry.match`` of two members' stored keypoints."""
        files = self.files
        return geometry.match(files.read(node.record.id, KEYPOINTS) or b"",
                              files.read(other.record.id, KEYPOINTS) or b"")

    def _framed(self, outer: _Node, part: np.ndarray, *, any_margin: bool = False) -> bool:
        """Whether the ``part`` of ``outer`` (a polygon in its keypoint picture's pixels) is
        framed in flat UI (``content.framed``, on its thumbnail; ``any_margin``: however
        little of it lies outside the part); unreadable: it is."""
        image = self._thumbnail(outer.record.id)
        if image is None:
            return True
        long = max(outer.width, outer.height, 1)
        part = part * (min(thumbs.SIDE, long) / min(geometry.SIDE, long))  # thumbnail pixels
        grey = geometry.grey(image)
        return framed(grey, part, 0.0) if any_margin else framed(grey, part)

    def _better_reference(self, members: Sequence[Member], node: _Node,
                          best: Sequence[Member], reference: _Node) -> bool:
        """Whether ``node``, which ``members`` verify against, is a better reference than
        the one found so far (``rank`` tries them best to keep first): more images verify
        against it; or as many, and the larger one found so far only frames its copies:
        none of them fills ``COVERED`` of it (a photo and its screenshot can each have
        every copy of the photo verify against them; the copies of a photo that a crop of
        it is also a copy of fill the photo)."""
        if len(members) != len(best):
            return len(members) > len(best)
        if node.width * node.height * SMALLER >= reference.width * reference.height:
            return False
        files = self.files
        framed = files.read(reference.record.id, KEYPOINTS) or b""
        for member in best[1:]:
            matched = geometry.match(files.read(member.id, KEYPOINTS) or b"", framed)
            if matched is not None and matched.count >= SUPPORTED and filled(matched) >= COVERED:
                return False
        return True

    def _members(self, anchor: _Node, nodes: Sequence[_Node], known: dict[str, Pair],
                 fresh: list[Pair], vectors: dict[int, np.ndarray]) -> list[Member]:
        """``anchor`` and the nodes verified against it: by the scan, by an earlier call,
        or by the checks run now (saved in ``known`` and ``fresh``)."""
        members = [Member(anchor.record.id, anchor.record.key, anchor.record.filepath, 1.0,
                          "reference", True, anchor.width, anchor.height)]
        unchecked = []
        for node in nodes:
            if node is anchor:
                continue
            p = known.get(pair(anchor.record.id, node.record.id, "copy").key)
            if p is None:
                unchecked.append(node)
            elif p.verdict == "copy":
                members.append(self._member(node, p))
        for node, p in zip(unchecked, self._verify(anchor.record, unchecked, vectors),
                           strict=True):
            known[p.key] = p
            fresh.append(p)
            if p.verdict == "copy":
                members.append(self._member(node, p))
        return members + _through_holders(anchor, members, nodes, known, self._holds)

    def _verify(self, anchor: Record, others: Sequence[_Node],
                vectors: dict[int, np.ndarray]) -> list[Pair]:
        """Anchor against each of ``others`` by a search's checks, one candidate at a time
        (so each gets the keypoint and the pixel check a best candidate gets)."""
        if not others or anchor.id not in vectors:
            return [pair(anchor.id, n.record.id, "distinct") for n in others]
        query = Stored(self.files, anchor.id, anchor.sha256)
        pairs = []
        for node in others:
            r = node.record
            similarity = float(vectors[anchor.id] @ vectors[r.id]) if r.id in vectors else 0.0
            candidate = Candidate(r.id, r.key, r.filepath, r.sha256, similarity)
            hit = verify(self.files, query, [candidate])[0]
            stored = self.files.read(r.id, KEYPOINTS) or b""
            if hit.match == "similar":  # as the scan looks at a neighbour it left unverified
                looked = similarity >= scoring.UNCOVERED_SIMILARITY  # as a search would
                hit = supported_hit(query, candidate, hit, self.files,
                                    support(query, stored, stored if looked else None))
            copy = is_duplicate(query, hit, stored, self.files)
            verdict: Verdict = "copy" if copy else "distinct"
            pairs.append(pair(anchor.id, r.id, verdict, hit.score, hit.match))
        return pairs

    def _node(self, record: Record, edges: dict[int, float], left: set[int]) -> _Node:
        if record.id not in self._sizes:
            self._sizes[record.id] = self._dimensions(record)
        width, height = self._sizes[record.id]
        return _Node(record, width, height, sum(s for j, s in edges.items() if j in left))

    @staticmethod
    def _member(node: _Node, p: Pair) -> Member:
        r = node.record
        return Member(r.id, r.key, r.filepath, p.score, p.match, False, node.width, node.height)

    def _dimensions(self, record: Record) -> tuple[int, int]:
        """Pixel size of the image: from its file's header when the service may read it
        (``IMAGE_ALLOWED_ROOTS``), else from its thumbnail (exact up to 256 px, a floor
        above). Only the header is read: a group of 100k photos of a few MB each would
        otherwise read them all whole for their sizes."""
        for head in (HEADER, None):  # the whole file when the size lies past HEADER
            data = self._file(record, head)
            if data is None:
                break
            if size := thumbs.size(data):
                return size
            if len(data) < HEADER:
                break
        return thumbs.size(self.files.read(record.id, THUMBNAIL) or b"") or (0, 0)

    def _recompressed(self, tier: Sequence[_Node]) -> set[tuple[int, int]]:
        """(id, other id) of the ``tier``'s images compressed harder than another of the
        same pixel size (``compression.recompressed``), as far as their files tell. Each
        pair is judged once (records never change): a file is decoded whole for it."""
        pairs = [(n, o) for n in tier for o in tier if o is not n
                 and (n.width, n.height) == (o.width, o.height)
                 and n.record.sha256 != o.record.sha256]
        grids: dict[int, compression.Grid | None] = {}

        def grid(node: _Node) -> compression.Grid | None:
            if node.record.id not in grids:
                grids[node.record.id] = self._grid(node.record)
            return grids[node.record.id]

        for n, o in pairs:
            if (n.record.id, o.record.id) not in self._harder:
                mine, theirs = grid(n), grid(o)
                self._harder[n.record.id, o.record.id] = (
                    mine is not None and theirs is not None
                    and compression.recompressed(mine, theirs))
        return {(n.record.id, o.record.id) for n, o in pairs
                if self._harder[n.record.id, o.record.id]}

    def _grid(self, record: Record) -> compression.Grid | None:
        """The image file's JPEG grid (``compression.grid``), None when the service may not
        read the file (a thumbnail has its own grid, not the image's) or the file there is
        no longer the image stored (its SHA-256 differs: a path names a file, not its
        bytes, and an upload's ``imgPath`` is what its client said)."""
        data = self._file(record)
        if data is None or hashlib.sha256(data).hexdigest() != record.sha256:
            return None
        return compression.grid(data, self.settings.max_pixels)

    def _file(self, record: Record, head: int | None = None) -> bytes | None:
        """The image's file (its first ``head`` bytes), where the record says it was read
        from, when the service may read it there (``IMAGE_ALLOWED_ROOTS``)."""
        settings = self.settings
        if not record.filepath.startswith("/") or not settings.allowed_roots:
            return None
        try:
            return sources.read_path(record.filepath, roots=settings.allowed_roots,
                                     limit=settings.max_upload_bytes, head=head)
        except BogvError:
            return None



def _through_holders(anchor: _Node, members: Sequence[Member], nodes: Sequence[_Node],
                     known: dict[str, Pair], holds: Callable[[_Node, _Node], bool]
                     ) -> list[Member]:
    """The nodes not verified against ``anchor`` that a member holding the whole of it
    verified: a copy of a whole-frame copy of the reference (re-compressed, recoloured,
    captioned) is a copy of the reference, though edited twice it may keep too little of
    it to be verified against it directly (a crop of its greyscale copy); so is a copy of
    the original a small reference was cut from (a crop's original and that original's
    rotated copy). Only through members as large (neither ``SMALLER``) or clearly larger and
    holding it (``holds``: ``Anchoring._holds``): a crop's or a screenshot's own copies
    need not show the rest of the picture (tiles of one photo each verify against it, not
    against each other). Scored by the weaker of the two links. Never one a person said
    is no duplicate of the reference."""
    if anchor.width * anchor.height == 0:
        return []
    by_id = {n.record.id: n for n in nodes}
    # As large or larger; a clearly larger one is asked whether it holds the anchor only
    # once it links a node (``holds`` is true of one as large).
    through = [m for m in members[1:]
               if m.width * m.height * SMALLER >= anchor.width * anchor.height]
    joined = {m.id for m in members}
    found = []
    for node in nodes:
        direct = known.get(pair(anchor.record.id, node.record.id, "copy").key)
        if node.record.id in joined or (direct is not None and direct.verdict == "dismissed"):
            continue
        links = [(min(m.score, p.score), p) for m in through
                 if (p := known.get(pair(m.id, node.record.id, "copy").key)) is not None
                 and p.verdict == "copy" and holds(by_id[m.id], anchor)]
        if links:
            score, p = max(links, key=lambda link: link[0])
            found.append(Anchoring._member(node, replace(p, score=score)))
    return found




@contextmanager
def in_processes(processes: int, settings: Settings) -> Iterator[ProcessPoolExecutor]:
    """``processes`` workers anchoring the components submitted to them with
    ``anchor_here``, each with an ``Anchoring`` of its own. Started by ``spawn``, as
    ``bogv.scan_processes``'s: forking would copy pymilvus's gRPC threads and onnxruntime's
    into the child. A worker that dies (killed, out of memory) ends the listing with a
    ``BogvError``, not a bare ``BrokenProcessPool``."""
    spawn = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(processes, mp_context=spawn, initializer=_start,
                                 initargs=(settings,)) as pool:
            yield pool
    except BrokenProcessPool as e:
        raise BogvError(f"a worker process anchoring the groups ended ({e}); ask for the "
                        "groups again") from e


_here: list[Anchoring] = []
"""A worker process's ``Anchoring`` (``_start``)."""


def _start(settings: Settings) -> None:
    # Ctrl-C is the listing's: it stops the workers, which would each print a traceback
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cv2.setNumThreads(1)  # one thread per process: the processes are the parallelism
    _here.append(Anchoring(Sidecar(settings.record_path), settings))


def anchor_here(component: Component) -> tuple[list[Group], list[Pair]]:
    """``Anchoring.anchored`` in a worker process (``in_processes``)."""
    anchored = _here[0].anchored(component)
    freed.give_back()  # its decoded thumbnails and matches
    return anchored
