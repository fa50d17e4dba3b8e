"""Memory freed below memory in use goes back to the system (``bogv.freed``)."""

from __future__ import annotations

import numpy as np
import pytest

from bogv import freed


def _resident_mb() -> float:
    with open("/proc/self/status") as status:
        return int(status.read().split("VmRSS:")[1].split()[0]) / 1024


@pytest.mark.skipif(freed._TRIM is None, reason="a C library without malloc_trim")
def test_memory_freed_between_arrays_still_held_is_given_back() -> None:
    """64 kB arrays (below glibc's mmap threshold: from its heap), three in four freed,
    the last one held: ~180 MB free in holes that glibc keeps until given back."""
    held, dropped = [], []
    for i in range(4_000):
        (held if i % 4 == 3 else dropped).append(np.ones(8_192))
    del dropped
    before = _resident_mb()
    freed.give_back()
    assert before - _resident_mb() > 120
    assert all(a[0] == 1 for a in held)
