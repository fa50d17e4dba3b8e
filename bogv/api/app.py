"""The FastAPI application: factory, lifespan and the one error mapping.

This is the only module that turns errors into responses (``bogv.api.shared`` builds the
envelope). Every ``BogvError`` becomes ``{"msg", "code", "data": null}`` with HTTP status =
``code``; request validation errors become 422 naming the field; anything else is logged
with its traceback and becomes 500.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from bogv import __version__
from bogv.api import duplicates, ops, page
from bogv.api.limits import BodyLimit
from bogv.api.routes import router
from bogv.api.shared import check_token, envelope
from bogv.config import Settings
from bogv.duplicates import Duplicates
from bogv.errors import BackendUnavailable, BogvError
from bogv.ingest import start_import
from bogv.service import Service, build_service

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())
               if p not in ("body", "query", "form") and not isinstance(p, int)]
        parts.append(f"{'.'.join(loc) or 'body'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def _fill(service: Service) -> None:
    """The index of pieces filled beside start-up. A store that fails it (a server that
    did not answer in time) leaves it to the first search that needs it, with a warning,
    not a thread's traceback."""
    try:
        service.index_pieces()
    except BackendUnavailable as e:
        log.warning("the index of pieces was not filled at start-up: %s; the first search "
                    "that needs it fills it", e)


def create_app(settings: Settings | None = None, service: Service | None = None) -> FastAPI:
    """A fresh app. Without ``service`` the lifespan builds one from ``settings`` and closes it."""
    settings = settings or (service.settings if service else Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = (service if service is not None
               else await anyio.to_thread.run_sync(build_service, settings))
        app.state.service = svc
        app.state.duplicates = Duplicates(svc)
        app.state.limiter = anyio.CapacityLimiter(settings.workers)
        app.state.fetch_limiter = anyio.CapacityLimiter(settings.url_fetches)
        app.state.stop = threading.Event()
        app.state.import_thread = start_import(svc, app.state.stop)
        # The index of pieces reads every keypoint file: filled beside start-up, not in it.
        filling = threading.Thread(target=_fill, args=(svc,), name="index pieces", daemon=True)
        filling.start()
        try:
            yield
        finally:
            app.state.stop.set()
            if app.state.import_thread is not None:
                await anyio.to_thread.run_sync(app.state.import_thread.join)
            await anyio.to_thread.run_sync(filling.join)  # before the store it reads closes
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

    app.include_router(router, dependencies=[Depends(check_token)])
    app.include_router(duplicates.router, dependencies=[Depends(check_token)])
    app.include_router(ops.router)
    page.mount(app)
    app.add_middleware(ops.RequestTelemetry)
    return app
