"""The duplicate groups each component gave, kept in a file from one process to the next.

Making the groups anchors every component of verified pairs (checks run, the image to keep
chosen): 80-85 s at 100k images with every pair already checked, paid again by each start
of ``bogv serve`` and by each run of ``bogv duplicates``, though nothing had changed.
``Duplicates`` keeps each component's groups by a digest of what they are made from (its
images and the pairs among them; records never change), so a process that reads them back
anchors only the components that changed since.

The file is a cache: written whole (and atomically) when the groups change, read once. One
written by other code, for another store, collection or file-reading setting (``made_by``),
or one that cannot be read, is ignored and then replaced: the groups are made again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Mapping
from contextlib import suppress
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import cv2

__all__ = ["KeptGroups", "made_by"]

log = logging.getLogger(__name__)

T = TypeVar("T")


@cache
def _source() -> str:
    """A digest of this bogv's own Python source (and the OpenCV its checks run on):
    groups made by other rules are not these, whatever the version number says."""
    root = Path(__file__).parent
    digest = hashlib.blake2b(cv2.__version__.encode(), digest_size=16)
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def made_by(*setting: object) -> str:
    """What kept groups must have been made by to be used: this code, and ``setting``
    (the store, the collection, what the service may read; hashed, so that no address or
    path is written out)."""
    return hashlib.blake2b(repr((_source(), setting)).encode(), digest_size=16).hexdigest()


class KeptGroups:
    """One collection's groups by component digest, in ``path``."""

    def __init__(self, path: Path, maker: str) -> None:
        self.path, self.maker = path, maker

    def read(self, decode: Callable[[Any], T]) -> dict[bytes, T]:
        """The groups kept, each made from what ``write`` was given by ``decode``; none
        when the file is missing, unreadable or made by something else."""
        try:
            kept = json.loads(self.path.read_bytes())
            if kept.get("made_by") != self.maker:
                return {}
            return {bytes.fromhex(k): decode(v) for k, v in kept["groups"].items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, AttributeError, KeyError, TypeError) as e:
            log.warning("ignoring the kept duplicate groups in %s: %s", self.path, e)
            return {}

    def write(self, groups: Mapping[bytes, Any]) -> None:
        """Replace the file with ``groups`` (JSON-able values). A failed write is logged,
        never fatal: the groups are made again by the next process."""
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        data = json.dumps({"made_by": self.maker,
                           "groups": {k.hex(): v for k, v in groups.items()}},
                          separators=(",", ":"))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(data)
            os.replace(tmp, self.path)
        except OSError as e:
            log.warning("could not keep the duplicate groups in %s: %s", self.path, e)
            with suppress(OSError):
                tmp.unlink(missing_ok=True)

    def clear(self) -> None:
        """Forget them (a benchmark scanning a kept collection afresh)."""
        self.path.unlink(missing_ok=True)
