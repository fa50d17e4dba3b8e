"""Memory a process freed, given back to the system.

glibc's allocator keeps freed memory that lies below memory still in use, and counts it
in the process's resident size until something is allocated there again: the index of
pieces' fill, the star fields' grid replacing the arrays it was made from, and every page
of the duplicate scan (two threads' decoded thumbnails and keypoint matches) leave
hundreds of MB of it at 100k images (``README.md``: "Star look-ups 1.6 times as fast, and
memory given back"). ``malloc_trim`` returns its whole free pages; other C libraries have
none, and there this does nothing.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

__all__ = ["give_back"]


def _malloc_trim() -> Callable[[int], int] | None:
    # The C library Python itself runs on, looked up in the process: ``find_library``
    # would run ``ldconfig`` at every start-up to name it.
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


_TRIM = _malloc_trim()


def give_back() -> None:
    """Return the free pages of every allocator arena to the system (a few ms)."""
    if _TRIM is not None:
        _TRIM(0)
