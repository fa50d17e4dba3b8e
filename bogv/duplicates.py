"""Copies inside the collection: the scan, the groups, and the decisions made on them.

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

**The groups** are anchored, not chained, and each names the image to keep
(``bogv.anchoring``). They are made once per state of the collection and kept: by what each
component was made from, so a decision made again changes one component's groups only.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bogv import freed
from bogv.anchoring import Anchoring, Component, Group, Member, anchor_here, in_processes
from bogv.copy_checks import Checks, Seen
from bogv.errors import Busy, InvalidParameter, NotFound
from bogv.folder_lock import FolderLock
from bogv.kept_groups import KeptGroups, made_by
from bogv.scan_processes import ScanProcesses
from bogv.service import MORE_CHECKED, REREAD, Service
from bogv.store import MAX_BATCH, Candidate, IdAllocator, Record
from bogv.verdicts import Pair, Verdicts, pair

__all__ = ["Duplicates", "Group", "Member", "Progress", "ScanReport"]

BATCH = 512
"""Images per batched search: one round trip to Milvus answers this many images. Milvus
Lite's search costs per image fall with it: with 100k stored on a quiet box, 2.7 ms for one
image, 0.6 ms at 64, 0.5 ms at 512 (under load 14 at 60k: 50 ms at 128, 12 ms at 512)."""
VECTORS_AT_ONCE = 4096
"""Most vectors of a chunk of components anchored (8 MB); two chunks are held at once."""
ANCHORED_APART = 2000
"""Images to anchor from which worker processes anchor them, when the scan's ``processes``
are set: starting two and closing them took ~2 s (each imports OpenCV and bogv's checks),
about what they save on 1,000 images (~5 ms each in threads); one decision's component
takes a few seconds at most."""
MAX_DISMISS = 100
"""Most images one "not duplicates" decision covers (its pairs grow with the square)."""
DELETE_BATCH = 1000
"""Ids per delete of ``keep``: one Milvus expression each, and a progress bar that moves."""
KEEP_WAIT = 30.0
"""Seconds ``keep`` waits for another decision to end before answering 409: the page's
batches take a second or two, a command deleting 100k copies minutes, and a request left
waiting longer would outlast a reverse proxy and hold a worker thread."""


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


class Duplicates:
    """The duplicate scan and its groups for one service (one collection)."""

    def __init__(self, service: Service, *, threads: int = 2, processes: int = 0) -> None:
        self.service, self.threads, self.processes = service, threads, processes
        """The scan checks images in ``threads``, or in ``processes`` when set
        (``bogv.scan_processes``: more cores, ~1 GB more memory each at 100k images); the
        groups are anchored in them too (``ANCHORED_APART``)."""
        self.verdicts = Verdicts(service.store)
        settings = service.settings
        self._scanning = FolderLock(settings.record_path, f".{settings.collection}.scan.lock")
        """One scan at a time, across the replicas sharing ``RECORD_DIR``."""
        self.anchoring = Anchoring(service.files, settings)
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
        made: dict[bytes, list[Group]] = {}
        components, inside = [], []
        if self._made is None:
            self._made = self.kept.read(lambda kept: [Group.from_json(g) for g in kept])
        every = list(_components(edges))
        for component, pairs, signature in zip(every, *_signatures(every, known), strict=True):
            if signature in self._made:
                made[signature] = self._made[signature]
                groups += made[signature]
            else:
                components.append(component)
                inside.append(pairs)
        total, done, counting = sum(map(len, components)), 0, threading.Lock()
        on_progress(0, total)

        def anchored(images: int) -> Callable[[Future[Any]], None]:
            def tick(_: Future[Any]) -> None:
                nonlocal done
                with counting:
                    done += images
                    on_progress(done, total)
            return tick

        futures: dict[int, Future[tuple[list[Group], list[Pair]]]] = {}
        # The largest first, so that no worker is left alone with a large one at the end.
        # Checks need the images' vectors: read for many components at once (one query
        # each would cost more than their checks), a chunk while the one before is
        # anchored, never more.
        order = sorted(range(len(components)), key=lambda n: -len(components[n]))
        with self._anchoring(total) as (pool, anchor):
            before: list[int] = []
            for chunk in _chunks(order, [len(c) for c in components], VECTORS_AT_ONCE):
                vectors = self._vectors([i for n in chunk for i in components[n]])
                for n in chunk:
                    job = Component({i: records[i] for i in components[n]},
                                    {i: edges[i] for i in components[n]},
                                    inside[n],
                                    {i: vectors[i] for i in components[n] if i in vectors})
                    futures[n] = pool.submit(anchor, job)
                    futures[n].add_done_callback(anchored(len(components[n])))
                for n in before:
                    futures[n].result()
                freed.give_back()  # the chunk's decoded thumbnails and matches
                before = chunk
            # every result read here, where a worker's death is the pool's error
            anchored_now = [futures[n].result() for n in range(len(components))]
        fresh = [p for _, pairs in anchored_now for p in pairs]
        self.verdicts.save(fresh)
        # Kept by what they were made from, the pairs anchoring checked now included: the
        # next time those are read back with the others.
        known.update((p.key, p) for p in fresh)
        for signature, (some, _) in zip(_signatures(components, known)[1], anchored_now,
                                        strict=True):
            made[signature] = some
            groups += some
        if made.keys() != self._made.keys():
            self.kept.write({k: [g.to_json() for g in v] for k, v in made.items()})
        self._made = made
        return groups

    @contextmanager
    def _anchoring(self, images: int) -> Iterator[tuple[
            Executor, Callable[[Component], tuple[list[Group], list[Pair]]]]]:
        """Where ``images`` in components are anchored, and by what: this process's
        ``threads``, or worker processes when ``processes`` are set and there are
        ``ANCHORED_APART`` images or more."""
        if self.processes and images >= ANCHORED_APART:
            with in_processes(self.processes, self.service.settings) as pool:
                yield pool, anchor_here
        else:
            with ThreadPoolExecutor(self.threads) as pool:
                yield pool, self.anchoring.anchored

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

def _version(scanned: int, dismissed: int) -> str:
    return f"{scanned}-{dismissed}"


def _signatures(components: list[set[int]], known: dict[str, Pair]
                ) -> tuple[list[list[Pair]], list[bytes]]:
    """The pairs known among each component's images, and a digest of what its groups are
    made from: its images and those pairs (verdict, score as Milvus keeps it, a float32,
    and label). Records never change, so neither do the groups of a component whose digest
    is the same."""
    where = {i: n for n, component in enumerate(components) for i in component}
    inside: list[list[Pair]] = [[] for _ in components]
    for p in known.values():
        n = where.get(p.a)
        if n is not None and where.get(p.b) == n:
            inside[n].append(p)
    return inside, [hashlib.blake2b(repr((sorted(component), sorted(
        (p.a, p.b, p.verdict, float(np.float32(p.score)), p.match) for p in pairs))).encode(),
        digest_size=16).digest() for component, pairs in zip(components, inside, strict=True)]


def _chunks(order: list[int], sizes: list[int], most: int) -> Iterator[list[int]]:
    """``order``'s items in runs of ``most`` in size or less (by ``sizes``), each one
    larger alone."""
    chunk: list[int] = []
    size = 0
    for n in order:
        if chunk and size + sizes[n] > most:
            yield chunk
            chunk, size = [], 0
        chunk.append(n)
        size += sizes[n]
    if chunk:
        yield chunk


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

