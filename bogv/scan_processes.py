"""The duplicate scan's checks in worker processes: a machine's other cores.

The checks hold Python's GIL for about a third of their time, so the threads of one
process scan at most ~1.5 times as fast as one thread, however many cores there are (two
threads on two cores: 1.35-1.47 times). Worker processes here check the images of each
page, one thread each (``ScanProcesses.check``), and learn with each block of images what
the others matched and found since (``copy_checks.Seen.learn``), so a pair is still checked
from one side only, except by two workers at once (as two threads may both check a pair).

Started by ``spawn``, as ``bogv.bulk``'s: forking would copy pymilvus's gRPC threads and
onnxruntime's into the child. So each worker fills its own index of descriptor pieces and
of star fields from the record files (the ids it is given), ~0.5 GB at 100k images:
opt-in (``bogv duplicates --processes N``), beyond ``bogv serve``'s memory budget (each
peaked at 1 GB at 100k images). Workers never reach Milvus: the scan reads the neighbours
and saves the pairs.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import traceback
from collections import deque
from collections.abc import Sequence
from contextlib import suppress
from multiprocessing.connection import Connection, wait
from multiprocessing.context import SpawnProcess
from pathlib import Path
from types import TracebackType
from typing import Any

import cv2

from bogv import freed
from bogv.copy_checks import Checks, Seen
from bogv.errors import BogvError
from bogv.pieces import Pieces
from bogv.service import index_records
from bogv.sidecar import Sidecar
from bogv.starfields import StarFields
from bogv.store import Candidate
from bogv.verdicts import Pair

__all__ = ["ScanProcesses"]

log = logging.getLogger(__name__)

FILL = 1000
"""Records read into the indexes at a time, as ``Service.index_pieces`` reads a page."""
BLOCK = 32
"""Images a worker checks at a time (``ScanProcesses.check``)."""

Learned = list[tuple[int, int | tuple[Pair, ...]]]


class ScanProcesses:
    """``processes`` workers checking the images of a scan, page by page."""

    def __init__(self, record_path: Path, ids: Sequence[int], dismissed: set[str],
                 processes: int) -> None:
        spawn = multiprocessing.get_context("spawn")
        self._workers: list[tuple[SpawnProcess, Connection]] = []
        try:
            for _ in range(processes):
                mine, theirs = spawn.Pipe()
                worker = spawn.Process(target=_work, args=(theirs, str(record_path), list(ids),
                                                           dismissed), daemon=True)
                worker.start()
                theirs.close()
                self._workers.append((worker, mine))
        except BaseException:
            self.close()
            raise
        self._untold: list[Learned] = [[] for _ in self._workers]
        """What the other workers learned since each one's last block."""
        self._page = 0

    def __enter__(self) -> ScanProcesses:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def check(self, ids: list[int], found: list[list[Candidate]]
              ) -> list[tuple[list[Pair], int]]:
        """``copy_checks.Checks.check`` of each image of a page, in the page's order.

        Each worker checks its contiguous part of the page a ``BLOCK`` of images at a time,
        and one done with its part takes blocks from the end of the part with the most left:
        a star field's look-up alone can take 100 ms, and with fixed parts each page
        waited for the slowest. Two blocks checked at once are thus mostly far apart in
        the page (neighbours are often close in id order: checked at once, a pair is
        checked from both sides). Each block goes with what the other workers learned
        since the last one."""
        self._page += 1
        n = len(self._workers)
        blocks = list(range(0, len(ids), BLOCK))
        done: list[list[tuple[list[Pair], int]]] = [[] for _ in blocks]
        working: dict[int, int] = {}  # worker -> block
        of = {conn: k for k, (_, conn) in enumerate(self._workers)}
        parts = [deque(range(len(blocks) * k // n, len(blocks) * (k + 1) // n))
                 for k in range(n)]

        def next_block(k: int) -> int | None:
            if parts[k]:
                return parts[k].popleft()
            most = max(parts, key=len)
            return most.pop() if most else None

        def give(k: int) -> None:
            b = next_block(k)
            if b is None:
                return
            told, self._untold[k] = self._untold[k], []
            part = slice(blocks[b], blocks[b] + BLOCK)
            self._send(self._workers[k][1], (self._page, ids, ids[part], found[part], told))
            working[k] = b

        for k in range(n):
            give(k)
        while working:
            for conn in wait([self._workers[k][1] for k in working]):
                k = of[conn]  # type: ignore[index]
                done[working.pop(k)], learned = self._receive(k)
                for j in range(n):
                    if j != k:
                        self._untold[j] += learned
                give(k)
        return [checked for block in done for checked in block]

    def close(self) -> None:
        for _, conn in self._workers:
            with suppress(OSError):  # gone already
                conn.send(None)
            conn.close()
        for worker, _ in self._workers:
            worker.join(10)
            if worker.is_alive():
                worker.kill()
                worker.join()
        self._workers = []

    def _send(self, conn: Connection, job: Any) -> None:
        try:
            conn.send(job)
        except OSError as e:
            raise BogvError(f"a scan worker process is gone ({e}); scan again to go on "
                            "from the last page saved") from e

    def _receive(self, k: int) -> tuple[list[tuple[list[Pair], int]], Learned]:
        worker, conn = self._workers[k]
        try:
            answer = conn.recv()
        except (EOFError, OSError) as e:
            worker.join(1)
            raise BogvError(f"a scan worker process ended (exit code {worker.exitcode}); "
                            "scan again to go on from the last page saved") from e
        if isinstance(answer, str):  # its traceback
            log.error("a scan worker process failed:\n%s", answer)
            raise BogvError("a scan worker process failed: "
                            f"{answer.strip().splitlines()[-1]} (the log has where)")
        results, learned = answer
        return results, learned


def _work(conn: Connection, record_path: str, ids: list[int], dismissed: set[str]) -> None:
    """A worker's life: fill the indexes, then check each part it is sent, until None."""
    # Ctrl-C is the scan's: it stops the workers (``close``), which would each print a
    # traceback of their own
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        cv2.setNumThreads(1)  # one thread per process: the processes are the parallelism
        files = Sidecar(Path(record_path))
        pieces, star_fields = Pieces(), StarFields()
        for first in range(0, len(ids), FILL):
            index_records(files, pieces, star_fields, ids[first:first + FILL])
        del ids
        freed.give_back()  # the fill's temporaries
        checks, seen = Checks(files, pieces, star_fields), Seen(dismissed=dismissed)
        number, page = 0, list[int]()
        while (job := conn.recv()) is not None:
            next_number, next_page, part, found, told = job
            if next_number != number:
                seen.done(page)
                freed.give_back()  # the last page's decoded thumbnails and matches
                number, page = next_number, next_page
                seen.page(page)
            seen.learn(told)
            results = [checks.check(i, f, seen) for i, f in zip(part, found, strict=True)]
            learned, seen.learned = seen.learned, []
            conn.send((results, learned))
    except EOFError:  # the scan is gone
        pass
    except Exception:  # sent to the scan, which raises it there
        conn.send(traceback.format_exc())
