"""What the app, its routes and its operations endpoints share: the response envelope, the
worker pools, the service and the token check. A module of its own, so that the routers
need not import the app that includes them."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
from fastapi import Request
from fastapi.responses import JSONResponse

from bogv.errors import Unauthorized
from bogv.service import Service

__all__ = ["check_token", "envelope", "get_service", "run_blocking"]

T = TypeVar("T")


def envelope(data: Any = None, *, msg: str = "success", code: int = 200) -> JSONResponse:
    return JSONResponse({"msg": msg, "code": code, "data": data}, status_code=code)


async def run_blocking(request: Request, fn: Callable[..., T], *args: Any,
                       network: bool = False) -> T:
    """Run decoding/inference/store calls in the bounded pool, never on the event loop.

    ``network``: ``fn`` waits on a remote host (a URL fetch, up to URL_TOTAL_TIMEOUT), so it
    takes a slot of its own bound (URL_FETCHES), never one of the WORKERS.
    """
    state = request.app.state
    return await anyio.to_thread.run_sync(
        fn, *args, limiter=state.fetch_limiter if network else state.limiter)


def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def check_token(request: Request) -> None:
    expected = request.app.state.settings.token.get_secret_value()
    if not expected:
        return
    given = request.headers.get("token")
    if given is None:
        auth = request.headers.get("authorization", "")
        given = auth[7:] if auth.lower().startswith("bearer ") else ""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthorized("missing or wrong token (header `token`)")
