"""What the service answers, apart from the store's records: small enough for the HTTP
client (``bogv.client``) to build the same types without loading the model or Milvus."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Added", "Hit"]


@dataclass(frozen=True)
class Hit:
    """What a search answers: an image, its calibrated score and match label."""

    id: int
    key: str
    filepath: str
    score: float
    match: str = "similar"


@dataclass(frozen=True)
class Added:
    """The record an add ended on, and whether the add made it (False: already stored)."""

    id: int
    created: bool
