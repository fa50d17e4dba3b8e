"""The seed's nine endpoints (``/api/image/sim/...``), plus ``stats`` and, for browsing,
``records`` (newest first) and ``thumb/{id}``.

Each route only moves data: request fields to a service call in the worker pool, the result
into the envelope. Errors are raised, never rendered here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse

from bogv import sources
from bogv.api.schemas import (
    IMG_PATH_HELP,
    KEY_HELP,
    LIMIT_DEFAULT,
    LIMIT_HELP,
    MIN_SCORE_HELP,
    UNIQUE_KEY_HELP,
    AddPath,
    AddUrl,
    DeleteIds,
    DeleteKeys,
    Envelope,
    HitOut,
    RecordsPage,
    SearchBase64,
    SearchPath,
    SearchUrl,
    StatsOut,
    errors,
)
from bogv.api.shared import envelope, get_service, run_blocking
from bogv.fields import MAX_FILEPATH, MAX_KEY
from bogv.store import IdAllocator

__all__ = ["router"]

router = APIRouter(prefix="/api/image/sim", responses=errors(400, 401, 413, 422, 503))
IMAGE = errors(415)
"""Extra error responses of routes that decode an image."""
FETCHED = errors(403, 404, 415)
"""Extra error responses of routes that read a URL or a server path."""

Added = Envelope[bool]
Hits = Envelope[list[HitOut]]
Count = Envelope[int]
Stats = Envelope[StatsOut]
Records = Envelope[RecordsPage]
_service = get_service


def _upload_bytes(request: Request, upload: UploadFile) -> bytes:
    return sources.read_stream(upload.file, limit=_service(request).settings.max_upload_bytes)


def _checked(request: Request, key: str | None, img_path: str | None, default: str | None,
             default_field: str) -> tuple[str | None, str | None]:
    """Key and filepath, refused before any image is fetched or decoded."""
    service = _service(request)
    if key:
        service.check_key(key)
    if img_path:
        return key, service.check_filepath(img_path)
    return key, service.check_filepath(default, default_field) if default else None


async def _add(request: Request, data: bytes, key: str | None, path: str | None) -> JSONResponse:
    added = await run_blocking(request, _service(request).add, data, key, path)
    resp = envelope(True)  # the seed's body; the outcome rides in headers (additive)
    resp.headers["X-Bogv-Id"] = str(added.id)
    resp.headers["X-Bogv-Created"] = "true" if added.created else "false"
    return resp


async def _search(request: Request, data: bytes, limit: int, min_score: float,
                  unique_key: bool) -> JSONResponse:
    hits = await run_blocking(request, _service(request).search, data, limit, min_score,
                              unique_key)
    return envelope([{"key": h.key, "filepath": h.filepath, "id": h.id, "score": h.score,
                      "match": h.match} for h in hits])


# --- add ------------------------------------------------------------------------------------

_ADD_HEADERS: dict[int | str, dict[str, Any]] = {200: {"headers": {
    "X-Bogv-Id": {"description": "Id of the record", "schema": {"type": "integer"}},
    "X-Bogv-Created": {"description": "`false` when these bytes were already stored under "
                       "this key (nothing changed)", "schema": {"type": "boolean"}}}}}


@router.post("/add/file", response_model=Added, summary="Add an uploaded image",
             responses={**IMAGE, **_ADD_HEADERS})
async def add_file(request: Request, file: Annotated[UploadFile, File()],
                   key: Annotated[str | None, Form(max_length=MAX_KEY,
                                                   description=KEY_HELP)] = None,
                   imgPath: Annotated[str | None, Form(max_length=MAX_FILEPATH,
                                                       description=IMG_PATH_HELP)] = None,
                   ) -> JSONResponse:
    key, path = _checked(request, key, imgPath, file.filename, "file name")
    data = await run_blocking(request, _upload_bytes, request, file)
    return await _add(request, data, key, path)


@router.post("/add/url", response_model=Added, summary="Add an image fetched from a URL",
             responses={**FETCHED, **_ADD_HEADERS})
async def add_url(request: Request, body: AddUrl) -> JSONResponse:
    key, path = _checked(request, body.key, body.imgPath, body.url, "url")
    data = await run_blocking(request, _service(request).bytes_from_url, body.url,
                              network=True)
    return await _add(request, data, key, path)


@router.post("/add/path", response_model=Added, summary="Add an image from a server path",
             responses={**FETCHED, **_ADD_HEADERS})
async def add_path(request: Request, body: AddPath) -> JSONResponse:
    key, path = _checked(request, body.key, body.imgPath, body.path, "path")
    data = await run_blocking(request, _service(request).bytes_from_path, body.path)
    return await _add(request, data, key, path)


# --- search ---------------------------------------------------------------------------------

@router.post("/search/file", response_model=Hits, summary="Search with an uploaded image",
             responses=IMAGE)
async def search_file(request: Request, file: Annotated[UploadFile, File()],
                      limit: Annotated[int, Form(ge=1, description=LIMIT_HELP)] = LIMIT_DEFAULT,
                      min_score: Annotated[float, Form(ge=0.0, le=1.0, allow_inf_nan=False,
                                                       description=MIN_SCORE_HELP)] = 0.0,
                      unique_key: Annotated[bool, Form(description=UNIQUE_KEY_HELP)] = False,
                      ) -> JSONResponse:
    _service(request).check_limit(limit)
    data = await run_blocking(request, _upload_bytes, request, file)
    return await _search(request, data, limit, min_score, unique_key)


@router.post("/search/url", response_model=Hits, summary="Search with an image URL",
             responses=FETCHED)
async def search_url(request: Request, body: SearchUrl) -> JSONResponse:
    _service(request).check_limit(body.limit)
    data = await run_blocking(request, _service(request).bytes_from_url, body.url,
                              network=True)
    return await _search(request, data, body.limit, body.min_score, body.unique_key)


@router.post("/search/path", response_model=Hits, summary="Search with a server path",
             responses=FETCHED)
async def search_path(request: Request, body: SearchPath) -> JSONResponse:
    _service(request).check_limit(body.limit)
    data = await run_blocking(request, _service(request).bytes_from_path, body.path)
    return await _search(request, data, body.limit, body.min_score, body.unique_key)


@router.post("/search/base64", response_model=Hits, summary="Search with base64 image data",
             responses=IMAGE)
async def search_base64(request: Request, body: SearchBase64) -> JSONResponse:
    _service(request).check_limit(body.limit)
    data = await run_blocking(request, _service(request).bytes_from_base64, body.base64)
    return await _search(request, data, body.limit, body.min_score, body.unique_key)


# --- delete and stats -----------------------------------------------------------------------

@router.post("/del/id", response_model=Count, summary="Delete records by id")
async def delete_ids(request: Request, body: DeleteIds) -> JSONResponse:
    return envelope(await run_blocking(request, _service(request).delete_ids, body.id))


@router.post("/del/key", response_model=Count, summary="Delete every record of these keys")
async def delete_keys(request: Request, body: DeleteKeys) -> JSONResponse:
    return envelope(await run_blocking(request, _service(request).delete_keys, body.key))


@router.get("/stats", response_model=Stats, summary="Record count, model and store in use")
async def stats(request: Request) -> JSONResponse:
    return envelope(await run_blocking(request, _service(request).stats))


# --- browsing -------------------------------------------------------------------------------

def _added(id_: int) -> str:
    ms = IdAllocator.time_of(id_)
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


@router.get("/records", response_model=Records, summary="Records, newest first, a page at a time")
async def records(request: Request,
                  limit: Annotated[int, Query(description="Records per page.")] = 48,
                  before: Annotated[int | None, Query(
                      ge=0, description="Only records older than this id: the previous "
                      "page's `next`.")] = None,
                  key: Annotated[str | None, Query(description="Only this key.")] = None,
                  ) -> JSONResponse:
    page = await run_blocking(request, _service(request).newest, limit, before, key)
    return envelope({"records": [{"id": r.id, "key": r.key, "filepath": r.filepath,
                                  "added": _added(r.id)} for r in page.records],
                     "next": page.next})


@router.get("/thumb/{id}", summary="A record's thumbnail (JPEG, at most 256 px)",
            response_class=FileResponse,
            responses={200: {"content": {"image/jpeg": {}}}, **errors(404)})
async def thumb(request: Request, id: int) -> FileResponse:
    path = await run_blocking(request, _service(request).thumbnail, id)
    # Ids are never reused, so a thumbnail never changes.
    return FileResponse(path, media_type="image/jpeg",
                        headers={"Cache-Control": "private, max-age=31536000, immutable"})
