"""Prometheus metrics of one service: HTTP traffic, images indexed, embedding time.

Each ``Service`` owns a ``Metrics`` with its own registry (no module-level globals), so two
services in one process, as in the tests, never share or double-register counters.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from bogv.errors import BogvError

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_EMBED_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class _Records(Collector):
    """The record count, read from the store at scrape time (one cheap count query)."""

    def __init__(self, count: Callable[[], int]) -> None:
        self._count = count

    def collect(self) -> list[GaugeMetricFamily]:
        try:
            value = self._count()
        except BogvError:  # store down: the gauge is absent, /readyz says why
            return []
        return [GaugeMetricFamily("bogv_records", "Records in the collection.", value=value)]


class Metrics:
    def __init__(self, count_records: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("bogv_http_requests", "HTTP requests answered.",
                                ["method", "route", "status"], registry=r)
        self.latency = Histogram("bogv_http_request_duration_seconds",
                                 "Time from request to the end of the response.",
                                 ["method", "route"], buckets=_LATENCY_BUCKETS, registry=r)
        self.indexed = Counter("bogv_images_indexed",
                               "Images added to the index by this process.", registry=r)
        self.embedding = Histogram("bogv_embedding_seconds",
                                   "Model inference time per batch (search: one image).",
                                   buckets=_EMBED_BUCKETS, registry=r)
        self.embedded = Counter("bogv_images_embedded",
                                "Images run through the model (adds, imports, searches).",
                                registry=r)
        r.register(_Records(count_records))

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
