"""A real ``bogv serve`` subprocess on loopback, its memory, and bounded HTTP load against it.

The HTTP figures of bench/speed/speed.py come from the product as users run it: a separate
process started by the ``bogv`` command, reached over a loopback socket. Load loops are
bounded in request count and time and only ever target 127.0.0.1.
"""

from __future__ import annotations

import statistics
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from launch import API, launched

__all__ = ["Load", "Server", "Watch", "load", "serve", "tree_cpu"]

def tree_cpu(proc: psutil.Process) -> dict[int, float]:
    """CPU seconds (user + system) of a process and each of its live descendants, by pid."""
    seen = {}
    for p in (proc, *proc.children(recursive=True)):
        with suppress(psutil.Error):
            times = p.cpu_times()
            seen[p.pid] = times.user + times.system
    return seen


class Watch:
    """Samples a process tree (bogv and its Milvus Lite child): peak summed RSS, CPU seconds.

    CPU time is the figure that survives a shared, noisy machine: wall time depends on what
    else runs, CPU seconds per image much less.
    """

    def __init__(self, pid: int, every: float = 0.05) -> None:
        self.proc, self.every, self.peak = psutil.Process(pid), every, 0
        self.own_peak = 0  # the bogv process alone, without Milvus Lite
        self.now = 0
        self.start = tree_cpu(self.proc)
        self.cpu: dict[int, float] = dict(self.start)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.proc, *self.proc.children(recursive=True)]
            except psutil.Error:
                return
            total = 0
            for p in procs:
                with suppress(psutil.Error):
                    rss = p.memory_info().rss
                    total += rss
                    if p.pid == self.proc.pid:
                        self.own_peak = max(self.own_peak, rss)
                    times = p.cpu_times()
                    self.cpu[p.pid] = times.user + times.system
            self.peak, self.now = max(self.peak, total), total
            self._stop.wait(self.every)

    @property
    def cpu_seconds(self) -> float:
        return sum(self.cpu.values()) - sum(self.start.values())

    def stop(self) -> Watch:
        self._stop.set()
        self._thread.join()
        return self


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    startup: float
    watch: Watch


@contextmanager
def serve(data_dir: Path, *, timeout: float = 300.0, **env: str) -> Iterator[Server]:
    """``bogv serve`` (``launch.launched``) watched from its first moment; yields once
    ``/stats`` answers."""
    watches: list[Watch] = []
    try:
        with launched(data_dir, timeout=timeout,
                      on_start=lambda proc: watches.append(Watch(proc.pid)), **env) as up:
            yield Server(up.url, up.process, up.startup, watches[0])
    finally:
        for watch in watches:
            watch.stop()


@dataclass
class Load:
    """What ``load`` measured: per-request latencies (s), errors, wall time."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if len(self.latencies) < 2:
            return self.latencies[0] if self.latencies else float("nan")
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[round(p) - 1]


def load(url: str, path: str, bodies: Sequence[bytes], clients: int, *,
         time_limit: float = 600.0) -> Load:
    """POST each body once as a multipart ``file`` with ``clients`` concurrent clients."""
    result = Load()
    lock = threading.Lock()
    next_index = iter(range(len(bodies)))
    deadline = time.perf_counter() + time_limit

    def worker() -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            while time.perf_counter() < deadline:
                with lock:
                    i = next(next_index, None)
                if i is None:
                    return
                t = time.perf_counter()
                try:
                    resp = http.post(f"{API}{path}", files={"file": (f"{i}.jpg", bodies[i])})
                    ok = resp.status_code == 200 and resp.json()["code"] == 200
                except httpx.HTTPError:
                    ok = False
                with lock:
                    if ok:
                        result.latencies.append(time.perf_counter() - t)
                    else:
                        result.errors += 1

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.seconds = time.perf_counter() - start
    return result
