"""Operations: liveness, readiness, Prometheus metrics, and one log line per request.

``/healthz`` and ``/readyz`` answer without a token (probes carry none); ``/metrics`` is
token-checked like the API (Prometheus sends ``Authorization: Bearer``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bogv.api.shared import check_token, envelope, get_service, run_blocking
from bogv.metrics import CONTENT_TYPE
from bogv.service import Service

__all__ = ["RequestTelemetry", "router"]

access = logging.getLogger("bogv.access")
router = APIRouter(tags=["operations"])


class RequestTelemetry:
    """ASGI middleware: counts and times every request by route template, and logs it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the client gets when the app raises before answering

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            seconds = time.perf_counter() - start
            # The template (/thumb/{id}), not the path: one time series per endpoint.
            route = getattr(scope.get("route"), "path", "unmatched")
            service: Service | None = getattr(scope["app"].state, "service", None)
            if service is not None:
                service.metrics.observe_request(scope["method"], route, status, seconds)
            access.info("%s %s %d %.1fms", scope["method"], scope["path"], status,
                        seconds * 1000, extra={"method": scope["method"], "path": scope["path"],
                                               "status": status,
                                               "duration_ms": round(seconds * 1000, 2)})


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> JSONResponse:
    return envelope({"status": "alive"})


@router.get("/readyz", summary="Readiness: model loaded and store reachable (503 otherwise)")
async def readyz(request: Request) -> JSONResponse:
    stats: dict[str, Any] = await run_blocking(request, get_service(request).stats)
    return envelope({"status": "ready", **stats})


@router.get("/metrics", summary="Prometheus metrics", dependencies=[Depends(check_token)],
            response_class=Response, responses={200: {"content": {CONTENT_TYPE: {}}}})
async def metrics(request: Request) -> Response:
    body = await run_blocking(request, get_service(request).metrics.render)
    return Response(body, media_type=CONTENT_TYPE)
