"""Which vector index a collection gets, and how a search walks it, per Milvus backend.

Milvus Lite 2.5.1 accepts only FLAT, IVF_FLAT and AUTOINDEX; a server or cluster builds
graph and quantised indexes too. The defaults follow the measured cost curve
(docs/scaling.md): IVF_FLAT on Lite (Lite then searches through an index of its own, ~0.98
recall@10 in 2-14 ms up to 1M vectors; FLAT would be exact but brute force; nlist and nprobe
measurably change nothing there), HNSW on a server (lowest latency at millions of vectors).
Every number is a setting, so an operator can trade recall for speed without a code change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bogv.config import Settings
from bogv.errors import InvalidParameter

__all__ = ["LITE_TYPES", "METRIC", "SERVER_TYPES", "IndexSpec", "index_spec"]

METRIC = "IP"
"""Descriptors are unit length, so inner product is their cosine similarity."""
LITE_TYPES = ("FLAT", "IVF_FLAT", "AUTOINDEX")
SERVER_TYPES = ("FLAT", "IVF_FLAT", "IVF_SQ8", "HNSW", "AUTOINDEX")
_IVF = ("IVF_FLAT", "IVF_SQ8")


@dataclass(frozen=True)
class IndexSpec:
    """An index type with its build parameters and its search parameters."""

    type: str
    build: dict[str, int] = field(default_factory=dict)
    search: dict[str, int] = field(default_factory=dict)

    def search_params(self, limit: int) -> dict[str, Any]:
        """Parameters for a search of ``limit`` hits (HNSW's ``ef`` may not be below it)."""
        params: dict[str, Any] = {"metric_type": METRIC}
        if self.search:
            params["params"] = {k: max(v, limit) if k == "ef" else v
                                for k, v in self.search.items()}
        return params


def index_spec(settings: Settings, *, embedded: bool | None = None) -> IndexSpec:
    """The index for this backend from ``INDEX_TYPE`` and its knobs (empty: the default)."""
    embedded = settings.is_embedded if embedded is None else embedded
    kind = settings.index_type.strip().upper() or ("IVF_FLAT" if embedded else "HNSW")
    allowed = LITE_TYPES if embedded else SERVER_TYPES
    if kind not in allowed:
        where = "Milvus Lite" if embedded else "a Milvus server"
        raise InvalidParameter(f"INDEX_TYPE {kind} is not available on {where}; choose one of "
                               f"{', '.join(allowed)}", field="INDEX_TYPE")
    if kind in _IVF:
        return IndexSpec(kind, {"nlist": settings.index_nlist},
                         {"nprobe": min(settings.search_nprobe, settings.index_nlist)})
    if kind == "HNSW":
        return IndexSpec(kind, {"M": settings.hnsw_m,
                                "efConstruction": settings.hnsw_ef_construction},
                         {"ef": settings.search_ef})
    return IndexSpec(kind)
