"""Copies inside the collection: the scan, the groups, and which image to keep.

**The scan** never builds an N x N matrix. Stored vectors are read from Milvus a page at a
time and sent back as one batched search each, so Milvus's index finds every image's
``MORE_CHECKED`` nearest neighbours. These then go through the very
checks a search runs for an upload of it (``bogv.similar.verify``: keypoints, mirror,
pixels), with the keypoints of every one matched, not only of the few a search stops
at; when none is a copy, the ``VOTED`` stored images sharing the most descriptor pieces
with it (``bogv.pieces``), wherever the vector ranks them, are matched too, as a search
looks past its candidates; a pair is a duplicate when one picture holds (most of) the
other, not merely shares pixels with it (``bogv.containment``); the duplicates are saved
(``bogv.verdicts``). The highest id scanned is saved too, so the next scan checks only
images added since: a new image finds its old copies among its own neighbours, as a
search for it would. On a Milvus server it checks again the images of ``service.REREAD``
seconds of ids below that: ids follow each replica's clock and a write reaches the others
up to 5 s late, so another replica's add may arrive below the highest id a scan has seen.

**No pair is checked twice.** Neighbours are mostly mutual, so the image checked second
skips the keypoints the first already matched and every check of a pair the first found a
copy; an image's own mirror keypoints, pixel pattern and each of its matchings are made
once however many passes need them (``similar.Stored``); the one-by-one mirror and pixel
checks skip neighbours that copies found so far already link to it (anchoring checks the
pairs with the reference). Two threads check images half a page apart, so rarely both
sides of a pair at once; worker processes (``bogv.scan_processes``), for more cores, check
blocks of each page far apart and learn with each block what the others checked. On
``bench/duplicates/duplicates.py``'s quality collection this left every group as it was
and took the scan and grouping from 47 s to 15 s.

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
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from itertools import repeat
from operator import attrgetter
from typing import Any

import cv2
import numpy as np
from PIL import Image

from bogv import freed, sources, thumbs
from bogv.containment import (
    COVERED,
    SUPPORTED,
    cut,
    filled,
    shares,
)
from bogv.copy_checks import Checks, Seen, is_duplicate, support, supported_hit
from bogv.errors import BogvError, Busy, InvalidParameter, NotFound
from bogv.folder_lock import FolderLock
from bogv.kept_groups import KeptGroups, made_by
from bogv.model import compression, edits, geometry, scoring
from bogv.model.content import framed
from bogv.scan_processes import ScanProcesses
from bogv.service import (
    KEYPOINTS,
    MORE_CHECKED,
    REREAD,
    THUMBNAIL,
    Service,
)
from bogv.similar import Stored, verify
from bogv.store import MAX_BATCH, Candidate, IdAllocator, Record
from bogv.verdicts import Pair, Verdict, Verdicts, pair

__all__ = ["Duplicates", "Group", "Member", "Progress", "ScanReport", "rank"]

BATCH = 512
"""Images per batched search: one round trip to Milvus answers this many images. Milvus
Lite's search costs per image fall with it: with 100k stored on a quiet box, 2.7 ms for one
image, 0.6 ms at 64, 0.5 ms at 512 (under load 14 at 60k: 50 ms at 128, 12 ms at 512)."""
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
VECTORS_AT_ONCE = 4096
"""Most vectors anchoring holds at once (8 MB)."""
MAX_DISMISS = 100
"""Most images one "not duplicates" decision covers (its pairs grow with the square)."""
DELETE_BATCH = 1000
"""Ids per delete of ``keep``: one Milvus expression each, and a progress bar that moves."""
KEEP_WAIT = 30.0
"""Seconds ``keep`` waits for another decision to end before answering 409: the page's
batches take a second or two, a command deleting 100k copies minutes, and a request left
waiting longer would outlast a reverse proxy and hold a worker thread."""


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
class Progress:
    """A running stage: ``done`` of ``total`` images, ``seconds`` since it started."""

    done: int
    total: int
    seconds: float


@dataclass
class ScanReport:
    scanned: int = 0
    """Images added since the last scan (above the highest id it checked)."""
    late: int = 0
    """Images at or below the last scan's highest id, of ``service.REREAD`` seconds of ids
    (on a server): checked again, or added late through another replica."""
    copies: int = 0
    checked: int = 0
    """Keypoint matchings run (a pair, or an image's mirror and a candidate)."""
    seconds: float = 0.0
    stages: dict[str, float] = field(default_factory=lambda: defaultdict(float))


@dataclass(frozen=True)
class KeepReport:
    deleted: int
    """Records deleted."""
    left: list[int]
    """Ids asked to be deleted that were not: the image to keep with them is gone, or (the
    version changed) they are no longer in its group, or they are kept themselves."""


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


class Duplicates:
    """The duplicate scan and its groups for one service (one collection)."""

    def __init__(self, service: Service, *, threads: int = 2, processes: int = 0) -> None:
        self.service, self.threads, self.processes = service, threads, processes
        """The scan checks images in ``threads``, or in ``processes`` when set
        (``bogv.scan_processes``: more cores, ~1 GB more memory each at 100k images)."""
        self.verdicts = Verdicts(service.store)
        settings = service.settings
        self._scanning = FolderLock(settings.record_path, f".{settings.collection}.scan.lock")
        """One scan at a time, across the replicas sharing ``RECORD_DIR``."""
        self._sizes: dict[int, tuple[int, int]] = {}
        """Pixel sizes read for ranking (records never change; a deleted one is not asked)."""
        self._held: dict[tuple[int, int], bool] = {}
        """``_holds`` of (member, reference) ids for members clearly larger, asked by every
        anchor tried and again to suggest one to keep (records never change)."""
        self._harder: dict[tuple[int, int], bool] = {}
        """``_recompressed`` of (member, member) ids as large as each other (records never
        change; a whole file is decoded to judge a pair)."""
        self._grouping = threading.Lock()
        self._deciding = FolderLock(settings.record_path, f".{settings.collection}.keep.lock")
        """``keep``'s, across the replicas sharing ``RECORD_DIR`` (``bogv.folder_lock``)."""
        self._running: dict[str, tuple[int, int, float]] = {}
        """Each running stage's images done, of how many, since when (``progress``)."""
        self._cached: tuple[tuple[int, int, int], list[Group]] | None = None
        """The groups of every member, and the ``_state`` they were made in."""
        self._made: dict[bytes, list[Group]] | None = None
        """The groups each component gave when they were last made, by what they were made
        from (``_signatures``): a delete or a dismissal changes one component, and only
        that one is anchored again. Read from ``kept`` when first needed: another process
        made them last."""
        self.kept = KeptGroups(
            settings.data_dir / f"{settings.collection}.groups.json",
            made_by(settings.store_uri, settings.collection, settings.allowed_roots,
                    settings.max_pixels, settings.max_upload_bytes))
        """``_made``, from one process to the next."""

    # --- the scan -------------------------------------------------------------------------

    def forget(self) -> None:
        """Drop everything known and kept: pairs, dismissals, the scan's progress and the
        groups (a benchmark's fresh scan of a kept collection)."""
        with self._grouping:
            self.verdicts.forget()
            self.kept.clear()
            self._made, self._cached = None, None

    def progress(self) -> dict[str, Progress]:
        """How far each running stage is (``scanning``, ``grouping``): the page shows it,
        since the first scan of 100k images takes about twenty minutes."""
        now = time.monotonic()
        return {stage: Progress(done, total, now - started)
                for stage, (done, total, started) in list(self._running.items())}

    def scanning_elsewhere(self) -> Progress | None:
        """How far a scan of this collection running elsewhere is: on another replica
        sharing ``RECORD_DIR``, or another app in this process (``total`` 0 until it has
        counted its images). The page waits for its end rather than showing the images it
        checks as pending, and says how far it is."""
        if "scanning" in self._running:
            return None
        noted = self._scanning.holder()
        if noted is None:
            return None
        try:
            done, total, started = noted.split()
            return Progress(int(done), int(total), max(0.0, time.time() - float(started)))
        except ValueError:  # nothing noted yet
            return Progress(0, 0, 0.0)

    @contextmanager
    def _following(self, stage: str, on_progress: Callable[[int, int], None] | None
                   ) -> Iterator[Callable[[int, int], None]]:
        """A progress callback for ``stage`` that ``progress`` reads, then ``on_progress``."""
        started = time.monotonic()

        def tick(done: int, total: int) -> None:
            self._running[stage] = done, total, started
            if on_progress is not None:
                on_progress(done, total)

        try:
            yield tick
        finally:
            self._running.pop(stage, None)

    def _noted(self, tick: Callable[[int, int], None]) -> Callable[[int, int], None]:
        """``tick``, and the scan's progress noted beside its lock for other replicas."""
        started = time.time()  # wall clock: replicas on other machines read it

        def noted(done: int, total: int) -> None:
            self._scanning.note(f"{done} {total} {started:.3f}")
            tick(done, total)

        return noted

    def pending(self) -> int:
        """Images added since the last scan."""
        return self.service.store.count(f"id > {self.verdicts.scanned()}")

    def scan(self, on_progress: Callable[[int, int], None] | None = None) -> ScanReport:
        """Check every image added since the last scan against the whole collection.
        ``on_progress(done, total)`` follows it. One scan at a time, across the replicas
        sharing ``RECORD_DIR``: two would check the same images, each on its own cores."""
        with self._scanning.held(wait=False) as alone:
            if not alone:
                running = self.progress().get("scanning") or self.scanning_elsewhere()
                far = (f", {running.done} of {running.total} images checked"
                       if running and running.total else "")
                raise Busy("a duplicate scan is already running (here or on another replica "
                           f"sharing RECORD_DIR{far}); try again when it ends")
            # A process that kept no index of pieces (``bogv duplicates``) fills one for the
            # scan and frees it for the groups: 213 MB at 100k images.
            kept = self.service.indexing_pieces
            try:
                with self._following("scanning", on_progress) as tick:
                    return self._scan(self._noted(tick))
            finally:
                if not kept:
                    self.service.drop_pieces()

    def _scan(self, on_progress: Callable[[int, int], None]) -> ScanReport:
        store, report = self.service.store, ScanReport()
        started = time.perf_counter()
        last = self.verdicts.scanned()
        # One process alone allocates the ids of an embedded store, in order.
        since = (IdAllocator.earlier(last, REREAD) if store.backend == "milvus-server"
                 else last)
        total = store.count(f"id > {since}")
        on_progress(0, total)
        seen = Seen(dismissed={p.key for p in self.verdicts.pairs("dismissed")})
        tick = time.perf_counter()
        if total and not self.processes:
            self.service.index_pieces()  # what ``_check`` looks past the neighbours with
        report.stages["index descriptor pieces"] += time.perf_counter() - tick
        # Milvus Lite 2.5.1 fails to read vectors from a collection that holds none.
        pages = store.vectors(f"id > {since}", BATCH) if total else iter(())

        def search() -> tuple[list[int], list[list[Candidate]]] | None:
            tick = time.perf_counter()
            page = next(pages, None)
            if page is None:
                return None
            ids, vectors = page
            found = store.neighbours(vectors, MORE_CHECKED + 1)
            report.stages["read vectors, search neighbours (beside the checks)"] += (
                time.perf_counter() - tick)
            return ids, found

        # Milvus searches the next page (in its own process, or on a server) and saves the
        # last page's pairs while this one's images are checked, so neither the search nor
        # Milvus Lite answering one request at a time holds the checks up (100k images:
        # 113 s of search and 45 s of saves beside 620 s of checks).
        with self._checking(seen, total) as check, ThreadPoolExecutor(1) as ahead:
            coming = ahead.submit(search)
            saved: Future[None] | None = None
            while True:
                tick = time.perf_counter()
                got = coming.result()
                report.stages["waiting for neighbours"] += time.perf_counter() - tick
                if got is None:
                    break
                coming = ahead.submit(search)
                ids, found = got
                tick = time.perf_counter()
                checks = check(ids, found)
                copies = [p for pairs, _ in checks for p in pairs]
                report.checked += sum(n for _, n in checks)
                freed.give_back()  # the page's decoded thumbnails and matches
                report.stages["verify (keypoints, pixels)"] += time.perf_counter() - tick
                if saved is not None:
                    saved.result()  # the previous page's, done by now; raises its error
                # saved after the next page's search, in order: pages come in id order
                saved = ahead.submit(self._save, copies, max(ids), report)
                late = sum(i <= last for i in ids)
                report.scanned += len(ids) - late
                report.late += late
                report.copies += len(copies)
                on_progress(report.scanned + report.late, total)
            if saved is not None:
                saved.result()
        report.seconds = time.perf_counter() - started
        return report

    @contextmanager
    def _checking(self, seen: Seen, total: int) -> Iterator[Callable[
            [list[int], list[list[Candidate]]], list[tuple[list[Pair], int]]]]:
        """What checks a page of images against their neighbours (each image's copies and
        keypoint matchings): this process's threads, or its ``processes``."""
        if self.processes and total:
            ids = [r.id for page in self.service.store.scan() for r in page]
            with ScanProcesses(self.service.settings.record_path, ids, seen.dismissed,
                               self.processes) as workers:
                yield workers.check
            return
        with ThreadPoolExecutor(self.threads) as pool:

            def check(ids: list[int], found: list[list[Candidate]]
                      ) -> list[tuple[list[Pair], int]]:
                # Neighbours are often close in id order (a burst, a folder of edits): the
                # threads take images half a page apart, so rarely a pair at once.
                seen.page(ids)
                half = (len(ids) + 1) // 2
                order = [i for j in range(half) for i in (j, j + half) if i < len(ids)]
                checked = list(pool.map(self._check, [ids[i] for i in order],
                                        [found[i] for i in order], [seen] * len(ids)))
                seen.done(ids)
                return checked

            yield check

    def _save(self, copies: list[Pair], last: int, report: ScanReport) -> None:
        tick = time.perf_counter()
        self.verdicts.save(copies)
        self.verdicts.set_scanned(last)
        report.stages["save pairs (beside the checks)"] += time.perf_counter() - tick

    def _check(self, id_: int, found: list[Candidate], seen: Seen) -> tuple[list[Pair], int]:
        """The copies among one image's neighbours and how many keypoint matchings that
        took (``copy_checks.Checks.check``), with this process's indexes."""
        service = self.service
        return Checks(service.files, service.pieces, service.star_fields).check(id_, found, seen)

    # --- decisions ------------------------------------------------------------------------

    def dismiss(self, ids: Sequence[int]) -> int:
        """Remember that these images are not duplicates of each other (every pair among
        them); returns how many pairs that is."""
        unique = sorted(set(ids))
        if not 2 <= len(unique) <= MAX_DISMISS:
            raise InvalidParameter(f"give 2 to {MAX_DISMISS} different ids, not {len(unique)}",
                                   field="ids")
        stored = {r.id for r in self.service.store.query(f"id in {unique}")}
        missing = [i for i in unique if i not in stored]
        if missing:
            raise NotFound(f"no record with id {missing[0]}", field="ids")
        pairs = [pair(x, y, "dismissed") for i, x in enumerate(unique) for y in unique[i + 1:]]
        self.verdicts.save(pairs)
        return len(pairs)

    def keep(self, choices: Sequence[tuple[int, Sequence[int]]], listed: str,
             on_progress: Callable[[int, int], None] | None = None) -> KeepReport:
        """Keep one image of a group and delete others of it, through the delete every other
        path uses: ``choices`` pairs each image to keep with those to delete, as a person
        decided on the groups listed at ``version`` ``listed``. Minutes may pass between the
        two, and meanwhile another reviewer may have deleted the image to keep (two "Keep
        only this" crossing each other, each keeping what the other deletes, deleted every
        copy), called two images "not duplicates", or a scan found new pairs.

        While the version holds, the groups listed are what the pairs still make: deletes
        since change no image's copies, though the groups made again after them can differ
        (a component's images shared among its groups anew). So the images are deleted as
        asked, for each image to keep that is still stored. Once the version changed, only
        the images in the kept one's group as it now stands are. An image one choice keeps
        is never deleted by another. Those not deleted come back as ``left``.
        ``on_progress(done, total)`` follows the deletes.

        Decisions are made one at a time, in this process and across the replicas sharing
        ``RECORD_DIR``, and each reads which images to keep are stored ``Strong``, after the
        last one's deletes: two crossing each other at once, each on its own replica, would
        otherwise both find the image they keep stored. One waits ``KEEP_WAIT`` at most for
        the one before, then raises ``Busy``."""
        kept = {k for k, _ in choices}
        asked = list(dict.fromkeys(i for _, others in choices for i in others))
        # the decision before: waited for without holding up this replica's listings
        with self._deciding.held(timeout=KEEP_WAIT) as mine:
            if not mine:
                raise Busy("another decision on these groups is still being carried out "
                           "(here or on another replica sharing RECORD_DIR); try again "
                           "when it ends")
            with self._grouping:
                stored = self.service.store.existing(sorted(kept))
                if listed == self.version():
                    doomed = [i for k, others in choices if k in stored for i in others]
                else:
                    group_of = {m.id: n for n, g in enumerate(self._current()[1])
                                for m in g.members}
                    doomed = [i for k, others in choices if k in stored and k in group_of
                              for i in others if group_of.get(i) == group_of[k]]
                doomed = [i for i in dict.fromkeys(doomed) if i not in kept]
                deleted = 0
                for first in range(0, len(doomed), DELETE_BATCH):
                    deleted += self.service.delete_ids(doomed[first:first + DELETE_BATCH])
                    if on_progress is not None:
                        on_progress(min(first + DELETE_BATCH, len(doomed)), len(doomed))
        gone = set(doomed)
        return KeepReport(deleted, [i for i in asked if i not in gone])

    # --- groups ---------------------------------------------------------------------------

    def groups(self, min_score: float = 0.5,
               on_progress: Callable[[int, int], None] | None = None) -> list[Group]:
        """Every group, largest first (``listing`` without its version)."""
        return self.listing(min_score, on_progress)[1]

    def listing(self, min_score: float = 0.5,
                on_progress: Callable[[int, int], None] | None = None
                ) -> tuple[str, list[Group]]:
        """Every group, largest first, and the ``version`` they were made at (``keep``
        takes it with the decisions made on them). ``min_score`` (0.5: verified copies)
        drops members scoring less against their group's suggested image.
        ``on_progress(done, total)``: images of the components anchored so far, of those to
        anchor (minutes after the first scan of a large collection: 292 s at 100k).

        Anchoring runs checks, so the groups are made once per state of the collection
        (``_state``: its scanned images, the scan's progress, the dismissals) and kept: paging
        through them, or asking with another ``min_score``, reads three counts."""
        if not 0.0 <= min_score <= 1.0:
            raise InvalidParameter(f"min_score must be between 0 and 1, not {min_score}",
                                   field="min_score")
        with self._grouping:
            (_, *made_from), made = self._current(on_progress)
        groups = [Group([m for m in g.members if m.suggested or m.score >= min_score], g.why)
                  for g in made]
        groups = [g for g in groups if len(g.members) > 1]
        groups.sort(key=lambda g: (-len(g.members), -g.suggested))
        return _version(*made_from), groups

    def _current(self, on_progress: Callable[[int, int], None] | None = None
                 ) -> tuple[tuple[int, int, int], list[Group]]:
        """The groups as the collection stands and the ``_state`` they were made in, made
        again when it changed (the caller holds ``_grouping``)."""
        state = self._state()
        if self._cached is None or self._cached[0] != state:
            with self._following("grouping", on_progress) as tick:
                self._cached = state, self._anchored_groups(tick)
        return self._cached

    def version(self) -> str:
        """What the groups are made from besides which images are stored: the scan's
        progress and the dismissals (``keep``)."""
        return _version(*self._made_from())

    def _made_from(self) -> tuple[int, int]:
        return self.verdicts.scanned(), self.verdicts.count("dismissed")

    def _state(self) -> tuple[int, int, int]:
        """What the groups depend on, cheap to read and changed by anything that changes
        them, on this replica or another: the scanned images still stored (deleting a
        member), the highest id scanned (a scan's new pairs), dismissals. Images added
        since the scan are not counted: they have no pairs before the next one, so they
        change no group, and counted with the others, as many adds hid as many deletes
        (replacing an image, its record deleted and another added, kept a group holding
        the deleted one as the image to keep, and "Keep all suggested" deleting its
        copies). An image another replica adds late, below the highest id scanned, makes
        the groups again, from the same pairs."""
        scanned, dismissed = self._made_from()
        return self.service.store.count(f"id <= {scanned}"), scanned, dismissed

    def _anchored_groups(self, on_progress: Callable[[int, int], None]) -> list[Group]:
        """The groups of every component of verified pairs among stored images: those made
        before from the very same images and pairs (``_made``), the others anchored now.

        Each person's decision in the page (keep / delete, "not duplicates") changes the
        state and so makes the groups again; anchoring all of them anew took 8-9 s at 10k
        images (``bench/duplicates/duplicates.py``'s scale collection), for one changed
        component."""
        known: dict[str, Pair] = {}
        for p in self.verdicts.pairs():
            known[p.key] = p
        copies = [p for p in known.values() if p.verdict == "copy"]
        records = self._records({i for p in copies for i in (p.a, p.b)})
        edges: dict[int, dict[int, float]] = defaultdict(dict)
        for p in copies:
            if p.a in records and p.b in records:
                edges[p.a][p.b] = edges[p.b][p.a] = p.score
        groups: list[Group] = []
        fresh: list[Pair] = []
        made: dict[bytes, list[Group]] = {}
        components = []
        if self._made is None:
            self._made = self.kept.read(lambda kept: [Group.from_json(g) for g in kept])
        for component, signature in _signatures(list(_components(edges)), known):
            if signature in self._made:
                made[signature] = self._made[signature]
                groups += made[signature]
            else:
                components.append(component)
        anchored: list[list[Group]] = []
        total, done, counting = sum(map(len, components)), 0, threading.Lock()
        on_progress(0, total)

        def anchor(component: set[int], *rest: Any) -> list[Group]:
            nonlocal done
            some = self._anchored(component, *rest)
            with counting:
                done += len(component)
                on_progress(done, total)
            return some

        with ThreadPoolExecutor(self.threads) as pool:
            # Checks need the images' vectors: read for many components at once (one
            # query each would cost more than their checks), a bounded number at a time.
            first = 0
            while first < len(components):
                last, size = first, 0
                while last < len(components) and (size == 0 or size + len(components[last])
                                                  <= VECTORS_AT_ONCE):
                    size += len(components[last])
                    last += 1
                chunk = components[first:last]
                vectors = self._vectors([i for c in chunk for i in c])
                anchored += pool.map(anchor, chunk, repeat(edges), repeat(records),
                                     repeat(known), repeat(fresh), repeat(vectors))
                first = last
                freed.give_back()  # the chunk's decoded thumbnails and matches
        self.verdicts.save(fresh)
        # Kept by what they were made from, the pairs anchoring checked now included: the
        # next time those are read back with the others.
        for (_, signature), some in zip(_signatures(components, known), anchored, strict=True):
            made[signature] = some
            groups += some
        if made.keys() != self._made.keys():
            self.kept.write({k: [g.to_json() for g in v] for k, v in made.items()})
        self._made = made
        return groups

    def _vectors(self, ids: list[int]) -> dict[int, np.ndarray]:
        found: dict[int, np.ndarray] = {}
        for first in range(0, len(ids), MAX_BATCH):
            some = ids[first:first + MAX_BATCH]
            for page_ids, page in self.service.store.vectors(f"id in {some}"):
                found.update(zip(page_ids, page, strict=True))
        return found

    def _records(self, ids: set[int]) -> dict[int, Record]:
        """The records still stored among ``ids`` (deleted images drop out of groups)."""
        ordered, found = sorted(ids), dict[int, Record]()
        for first in range(0, len(ordered), MAX_BATCH):
            chunk = ordered[first:first + MAX_BATCH]
            found.update((r.id, r) for r in self.service.store.with_ids(chunk))
        return found

    def _anchored(self, component: set[int], edges: dict[int, dict[int, float]],
                  records: dict[int, Record], known: dict[str, Pair],
                  fresh: list[Pair], vectors: dict[int, np.ndarray]) -> list[Group]:
        """The groups of one component: its reference image and what is verified against
        it, then the same for what is left.

        The reference is the image the most others verify against, trying each member of
        a component of up to ``EVERY_ANCHOR`` images (ties go to the better one to keep,
        ``rank``, unless it only frames its copies: ``_better_reference``), else the
        best to keep alone. The best to keep is not always the one the
        others are copies of: a screenshot of a photo has more pixels than the photo, and
        a crop of that photo is no copy of the screenshot's frame.
        """
        groups = []
        left = set(component)
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
        return groups

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
        data = self.service.files.read(id_, THUMBNAIL) or b""
        image, whole = thumbs.decode(data, edits.SIDE), thumbs.decode(data)
        return None if image is None or whole is None else edits.look(image, whole)

    def _thumbnail(self, id_: int, side: int | None = None) -> Image.Image | None:
        return thumbs.decode(self.service.files.read(id_, THUMBNAIL) or b"", side)

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
        files = self.service.files
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
        files = self.service.files
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
        query = Stored(self.service.files, anchor.id, anchor.sha256)
        pairs = []
        for node in others:
            r = node.record
            similarity = float(vectors[anchor.id] @ vectors[r.id]) if r.id in vectors else 0.0
            candidate = Candidate(r.id, r.key, r.filepath, r.sha256, similarity)
            hit = verify(self.service.files, query, [candidate])[0]
            stored = self.service.files.read(r.id, KEYPOINTS) or b""
            if hit.match == "similar":  # as the scan looks at a neighbour it left unverified
                looked = similarity >= scoring.UNCOVERED_SIMILARITY  # as a search would
                hit = supported_hit(query, candidate, hit, self.service.files,
                                    support(query, stored, stored if looked else None))
            copy = is_duplicate(query, hit, stored, self.service.files)
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
        return thumbs.size(self.service.files.read(record.id, THUMBNAIL) or b"") or (0, 0)

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
        return compression.grid(data, self.service.settings.max_pixels)

    def _file(self, record: Record, head: int | None = None) -> bytes | None:
        """The image's file (its first ``head`` bytes), where the record says it was read
        from, when the service may read it there (``IMAGE_ALLOWED_ROOTS``)."""
        settings = self.service.settings
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
    holding it (``holds``: ``Duplicates._holds``): a crop's or a screenshot's own copies
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
            found.append(Duplicates._member(node, replace(p, score=score)))
    return found


def _version(scanned: int, dismissed: int) -> str:
    return f"{scanned}-{dismissed}"


def _signatures(components: list[set[int]], known: dict[str, Pair]
                ) -> list[tuple[set[int], bytes]]:
    """Each component with a digest of what its groups are made from: its images and every
    pair known among them (verdict, score as Milvus keeps it, a float32, and label). Records
    never change, so neither do the groups of a component whose digest is the same."""
    where = {i: n for n, component in enumerate(components) for i in component}
    inside: list[list[tuple[int, int, str, float, str]]] = [[] for _ in components]
    for p in known.values():
        n = where.get(p.a)
        if n is not None and where.get(p.b) == n:
            inside[n].append((p.a, p.b, p.verdict, float(np.float32(p.score)), p.match))
    return [(component, hashlib.blake2b(repr((sorted(component), sorted(pairs))).encode(),
                                        digest_size=16).digest())
            for component, pairs in zip(components, inside, strict=True)]


def _components(edges: dict[int, dict[int, float]]) -> Iterable[set[int]]:
    seen: set[int] = set()
    for start in edges:
        if start in seen:
            continue
        component, todo = set(), [start]
        while todo:
            i = todo.pop()
            if i not in component:
                component.add(i)
                todo.extend(j for j in edges[i] if j not in component)
        seen |= component
        yield component

