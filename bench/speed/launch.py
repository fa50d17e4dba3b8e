"""Starting a real ``bogv serve`` for the benchmarks: one subprocess on a free loopback port.

Shared by bench/speed/speed.py (which watches the process's memory and CPU from the moment it
starts) and bench/speed/load.py. Only ever binds 127.0.0.1. Needs nothing beyond the test extra.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = ["API", "Launched", "bogv_command", "bogv_env", "launched"]

API = "/api/image/sim"


def bogv_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment for a bogv subprocess: this one's, minus stray bogv settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.upper().startswith(("MILVUS_", "IMAGE_", "TOKEN", "COLLECTION", "DATA_DIR",
                                        "API_", "INDEX_", "SEARCH_", "BATCH_SIZE", "WORKERS"))}
    env.update(DATA_DIR=str(data_dir), LOG_LEVEL="warning", **extra)
    return env


def bogv_command(*args: str) -> list[str]:
    """``bogv ARGS`` with this interpreter, so the bench measures the installed checkout."""
    return [sys.executable, "-m", "bogv", *args]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Launched:
    url: str
    process: subprocess.Popen[bytes]
    startup: float
    """Seconds from the process start until ``/stats`` answered."""


@contextmanager
def launched(data_dir: Path, *, timeout: float = 300.0,
             on_start: Callable[[subprocess.Popen[bytes]], None] | None = None,
             **env: str) -> Iterator[Launched]:
    """``bogv serve`` over ``data_dir``; yields once ``/stats`` answers, stops it after.

    ``on_start`` sees the process as soon as it exists (to watch start-up memory).
    """
    port = _free_port()
    log = (data_dir.parent / f"{data_dir.name}-serve.log").open("wb")
    start = time.perf_counter()
    proc = subprocess.Popen(bogv_command("serve", "--host", "127.0.0.1", "--port", str(port)),
                            env=bogv_env(data_dir, **env), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        if on_start is not None:
            on_start(proc)
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"bogv serve exited with {proc.returncode}; see {log.name}")
            try:
                if httpx.get(f"{url}{API}/stats", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.perf_counter() - start > timeout:
                raise TimeoutError(f"bogv serve did not answer within {timeout} s")
            time.sleep(0.02)
        yield Launched(url, proc, time.perf_counter() - start)
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
