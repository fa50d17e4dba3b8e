"""The seed's nine endpoints (``/api/image/sim/...``) plus ``/api/image/sim/stats``.

Each route only moves data: request fields to a service call in the worker pool, the result
into the envelope. Errors are raised, never rendered here.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse

from bogv import sources
from bogv.api.app import envelope, run_blocking
from bogv.api.schemas import (
    LIMIT_DEFAULT,
    AddPath,
    AddUrl,
    DeleteIds,
    DeleteKeys,
    Envelope,
    HitOut,
    SearchBase64,
    SearchPath,
    SearchUrl,
)
from bogv.service import Service

__all__ = ["router"]

router = APIRouter(prefix="/api/image/sim")

Added = Envelope[bool]
Hits = Envelope[list[HitOut]]
Count = Envelope[int]


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def _upload_bytes(request: Request, upload: UploadFile) -> bytes:
    return sources.read_stream(upload.file, limit=_service(request).settings.max_upload_bytes)


async def _add(request: Request, data: bytes, key: str | None, path: str | None) -> JSONResponse:
    await run_blocking(request, _service(request).add, data, key, path)
    return envelope(True)


async def _search(request: Request, data: bytes, limit: int, min_score: float) -> JSONResponse:
    hits = await run_blocking(request, _service(request).search, data, limit, min_score)
    return envelope([{"key": h.key, "filepath": h.filepath, "id": h.id, "score": h.score}
                     for h in hits])


# --- add ------------------------------------------------------------------------------------

@router.post("/add/file", response_model=Added, summary="Add an uploaded image")
async def add_file(request: Request, file: Annotated[UploadFile, File()],
                   key: Annotated[str | None, Form()] = None,
                   imgPath: Annotated[str | None, Form()] = None) -> JSONResponse:
    data = await run_blocking(request, _upload_bytes, request, file)
    return await _add(request, data, key, imgPath or file.filename)


@router.post("/add/url", response_model=Added, summary="Add an image fetched from a URL")
async def add_url(request: Request, body: AddUrl) -> JSONResponse:
    data = await run_blocking(request, _service(request).bytes_from_url, body.url)
    return await _add(request, data, body.key, body.imgPath or body.url)


@router.post("/add/path", response_model=Added, summary="Add an image from a server path")
async def add_path(request: Request, body: AddPath) -> JSONResponse:
    data = await run_blocking(request, _service(request).bytes_from_path, body.path)
    return await _add(request, data, body.key, body.imgPath or body.path)


# --- search ---------------------------------------------------------------------------------

@router.post("/search/file", response_model=Hits, summary="Search with an uploaded image")
async def search_file(request: Request, file: Annotated[UploadFile, File()],
                      limit: Annotated[int, Form()] = LIMIT_DEFAULT,
                      min_score: Annotated[float, Form(ge=0.0, le=1.0)] = 0.0) -> JSONResponse:
    data = await run_blocking(request, _upload_bytes, request, file)
    return await _search(request, data, limit, min_score)


@router.post("/search/url", response_model=Hits, summary="Search with an image URL")
async def search_url(request: Request, body: SearchUrl) -> JSONResponse:
    data = await run_blocking(request, _service(request).bytes_from_url, body.url)
    return await _search(request, data, body.limit, body.min_score)


@router.post("/search/path", response_model=Hits, summary="Search with a server path")
async def search_path(request: Request, body: SearchPath) -> JSONResponse:
    data = await run_blocking(request, _service(request).bytes_from_path, body.path)
    return await _search(request, data, body.limit, body.min_score)


@router.post("/search/base64", response_model=Hits, summary="Search with base64 image data")
async def search_base64(request: Request, body: SearchBase64) -> JSONResponse:
    data = await run_blocking(request, _service(request).bytes_from_base64, body.base64)
    return await _search(request, data, body.limit, body.min_score)


# --- delete and stats -----------------------------------------------------------------------

@router.post("/del/id", response_model=Count, summary="Delete records by id")
async def delete_ids(request: Request, body: DeleteIds) -> JSONResponse:
    return envelope(await run_blocking(request, _service(request).delete_ids, body.id))


@router.post("/del/key", response_model=Count, summary="Delete every record of these keys")
async def delete_keys(request: Request, body: DeleteKeys) -> JSONResponse:
    return envelope(await run_blocking(request, _service(request).delete_keys, body.key))


@router.get("/stats", summary="Record count, model and store in use")
async def stats(request: Request) -> JSONResponse:
    return envelope(await run_blocking(request, _service(request).stats))
