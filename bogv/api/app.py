"""The FastAPI application: factory, lifespan, token check and the one error mapping.

This is the only module that knows the response envelope. Every ``BogvError`` becomes
``{"msg", "code", "data": null}`` with HTTP status = ``code``; request validation errors
become 422 naming the field; anything else is logged with its traceback and becomes 500.
"""

from __future__ import annotations

import hmac
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from bogv import __version__
from bogv.api.limits import BodyLimit
from bogv.config import Settings
from bogv.duplicates import Duplicates
from bogv.errors import BogvError, Unauthorized
from bogv.service import Service, build_service

__all__ = ["check_token", "create_app", "envelope", "get_service", "run_blocking"]

log = logging.getLogger(__name__)
T = TypeVar("T")


def envelope(data: Any = None, *, msg: str = "success", code: int = 200) -> JSONResponse:
    return JSONResponse({"msg": msg, "code": code, "data": data}, status_code=code)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())
               if p not in ("body", "query", "form") and not isinstance(p, int)]
        parts.append(f"{'.'.join(loc) or 'body'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


async def run_blocking(request: Request, fn: Callable[..., T], *args: Any) -> T:
    """Run decoding/inference/store calls in the bounded pool, never on the event loop."""
    return await anyio.to_thread.run_sync(fn, *args, limiter=request.app.state.limiter)


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


def _start_import(app: FastAPI, service: Service) -> threading.Thread | None:
    settings = service.settings
    if settings.image_inc_path is None:
        return None
    from bogv.ingest import import_folder
    from bogv.lease import FolderLease

    def work() -> None:
        folder = settings.image_inc_path
        assert folder is not None
        if not folder.is_dir():
            log.warning("IMAGE_INC_PATH %s is not a folder; nothing imported", folder)
            return
        lease = FolderLease(folder, ttl=settings.import_lease_ttl)
        try:
            if not lease.acquire(app.state.stop):
                log.info("start-up import of %s: another replica is importing it (%s); "
                         "skipped here", folder, lease.other)
                return
            summary = import_folder(service, folder, move_to=settings.image_pool_path,
                                    stop=app.state.stop)
            log.info("start-up import of %s: %d added, %d skipped, %d failed", folder,
                     summary.added, summary.skipped, summary.failed)
        except Exception:
            log.exception("start-up import failed")
        finally:
            lease.release()

    thread = threading.Thread(target=work, name="bogv-startup-import", daemon=True)
    thread.start()
    return thread


def create_app(settings: Settings | None = None, service: Service | None = None) -> FastAPI:
    """A fresh app. Without ``service`` the lifespan builds one from ``settings`` and closes it."""
    settings = settings or (service.settings if service else Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = service or await anyio.to_thread.run_sync(build_service, settings)
        app.state.service = svc
        app.state.duplicates = Duplicates(svc)
        app.state.limiter = anyio.CapacityLimiter(settings.workers)
        app.state.stop = threading.Event()
        app.state.import_thread = _start_import(app, svc)
        try:
            yield
        finally:
            app.state.stop.set()
            if app.state.import_thread is not None:
                await anyio.to_thread.run_sync(app.state.import_thread.join)
            if service is None:
                svc.close()

    app = FastAPI(title="bogv", version=__version__, lifespan=lifespan,
                  description="Reverse image search. Every response is "
                  '`{"msg", "code", "data"}` with HTTP status equal to `code`.')
    app.state.settings = settings
    app.add_middleware(BodyLimit, max_upload_bytes=settings.max_upload_bytes)

    @app.exception_handler(BogvError)
    async def _bogv_error(_: Request, exc: BogvError) -> JSONResponse:
        return envelope(msg=exc.message, code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return envelope(msg=_validation_message(exc), code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return envelope(msg=str(exc.detail), code=exc.status_code)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return envelope(msg="internal error", code=500)

    from bogv.api import duplicates, ops, page
    from bogv.api.routes import router

    app.include_router(router, dependencies=[Depends(check_token)])
    app.include_router(duplicates.router, dependencies=[Depends(check_token)])
    app.include_router(ops.router)
    page.mount(app)
    app.add_middleware(ops.RequestTelemetry)
    return app
