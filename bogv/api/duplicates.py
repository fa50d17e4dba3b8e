"""Copies inside the collection over HTTP: scan, list groups, dismiss, keep one; and "more
like this".

Like ``routes``, each route only moves data between the request, a call in the worker pool
and the envelope. A scan can take minutes on a large collection, so listing never scans:
``GET /duplicates`` answers from what the last scan saved and says how many images are
``pending``; ``POST /duplicates/scan`` checks those, and ``GET /duplicates/progress`` says
how far it is (the page shows it while it waits). Groups are made once per state of the
collection and kept (``Duplicates.groups``), so each page only reads a few counts.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator

from bogv.api.schemas import (
    LIMIT_HELP,
    MIN_SCORE_HELP,
    UNIQUE_KEY_HELP,
    Envelope,
    ErrorOut,
    HitOut,
    errors,
)
from bogv.api.shared import envelope, get_service, run_blocking
from bogv.duplicates import MAX_DISMISS, Duplicates, Group
from bogv.similar import search_stored

__all__ = ["router"]

router = APIRouter(prefix="/api/image/sim", responses=errors(400, 401, 422, 503))


Id = Annotated[int, Field(ge=0, le=2**63 - 1)]


class SearchId(BaseModel):
    id: Id = Field(description="Id of a stored record: its own vector and keypoints are the "
                   "query; the record itself is not a hit.")
    limit: int = Field(10, ge=1, description=LIMIT_HELP)
    min_score: float = Field(0.0, ge=0.0, le=1.0, allow_inf_nan=False,
                             description=MIN_SCORE_HELP)
    unique_key: bool = Field(False, description=UNIQUE_KEY_HELP + " The record's own key is "
                             "left out.")


class Dismiss(BaseModel):
    ids: list[int] = Field(min_length=2, max_length=MAX_DISMISS, description="Two ids (a "
                           "pair) or a whole group: no two of them are proposed as duplicates "
                           "again.")


MAX_KEEP = 10_000
"""Most images one ``POST /duplicates/keep`` deletes ("Keep all suggested" sends a batch
at a time, its bar following them)."""


class KeepOne(BaseModel):
    keep: Id = Field(description="The image to keep.")
    delete: list[Id] = Field(min_length=1, description="Images of its group to delete.")


class Keep(BaseModel):
    groups: list[KeepOne] = Field(min_length=1, description="For each group decided, the "
                                  "image to keep and those to delete.")
    version: str = Field(max_length=64, description="`version` of the listing (`GET "
                         "/duplicates`) the groups were decided on. While it holds, the "
                         "images are deleted as asked, for each image to keep still stored; "
                         "once a scan or a dismissal changed it, only those in the kept "
                         "image's group as it now stands.")

    @field_validator("groups")
    @classmethod
    def _at_most(cls, groups: list[KeepOne]) -> list[KeepOne]:
        if sum(len(g.delete) for g in groups) > MAX_KEEP:
            raise ValueError(f"at most {MAX_KEEP} images to delete in one request")
        return groups


class KeepOut(BaseModel):
    deleted: int = Field(description="Records deleted.")
    left: list[int] = Field(description="Ids asked to be deleted that were not: the image "
                            "to keep with them is gone, or (the version changed) they are no "
                            "longer in its group, or they are kept themselves.")


class MemberOut(BaseModel):
    id: int
    key: str
    filepath: str
    score: float = Field(description="Score against the group's suggested image (1 for itself).")
    match: str = Field(description="reference: the suggested image itself; exact: the same "
                       "pixels; copy: an edited copy of it, verified by keypoints or pixels.")
    suggested: bool = Field(description="The image to keep.")
    width: int = Field(description="Pixels; from the file when the service may read it, else "
                       "from its thumbnail (256 px at most).")
    height: int


class GroupOut(BaseModel):
    members: list[MemberOut] = Field(description="The suggested image first; each other "
                                     "member is verified against it, or against a copy it "
                                     "holds whole (scored then by the weaker link).")
    suggested: int
    why: str = Field(description="Why that one: the largest (holding the whole picture); the "
                     "least edited (what the others look: drawn over, blurred, greyscale, "
                     "washed out; or it shares the most with them); the oldest; or the others "
                     "are copies of it.")


class GroupsPage(BaseModel):
    groups: list[GroupOut]
    total: int = Field(description="Groups in all, largest first.")
    next: int | None = Field(description="`offset` of the next page; null on the last.")
    pending: int = Field(description="Images added since the last scan (not in any group "
                         "yet): `POST /duplicates/scan` checks them.")
    version: str = Field(description="What the groups are made from besides which images "
                         "are stored (the scans, the dismissals): `POST /duplicates/keep` "
                         "takes it with the decisions made on these groups.")


class ScanOut(BaseModel):
    scanned: int = Field(description="Images checked by this scan (those added since the "
                         "last one).")
    copies: int = Field(description="Copy pairs found.")
    seconds: float


class StageOut(BaseModel):
    done: int = Field(description="Images done so far.")
    total: int = Field(description="Images this stage goes through.")
    seconds: float = Field(description="Since it started.")


class ProgressOut(BaseModel):
    scanning: StageOut | None = Field(description="A scan running in this service (`POST "
                                      "/duplicates/scan`): images checked, of those added "
                                      "since the last scan.")
    grouping: StageOut | None = Field(description="Groups being made (the first `GET "
                                      "/duplicates` after a scan): images of the changed "
                                      "groups done.")
    elsewhere: bool = Field(False, description="A scan of this collection running on "
                            "another replica sharing `RECORD_DIR`: `POST /duplicates/scan` "
                            "answers 409 until it ends.")
    scanning_elsewhere: StageOut | None = Field(None, description="That scan's progress, "
                                                "as its replica last noted it (`seconds` "
                                                "by the two machines' clocks), once it has "
                                                "counted its images.")


def _duplicates(request: Request) -> Duplicates:
    dups: Duplicates = request.app.state.duplicates
    return dups


def _group(g: Group) -> dict[str, object]:
    return {"members": [m.__dict__ for m in g.members], "suggested": g.suggested, "why": g.why}


@router.post("/search/id", response_model=Envelope[list[HitOut]], responses=errors(404),
             summary="More like this: search with a stored record")
async def search_id(request: Request, body: SearchId) -> JSONResponse:
    hits = await run_blocking(request, search_stored, get_service(request), body.id,
                              body.limit, body.min_score, body.unique_key)
    return envelope([{"key": h.key, "filepath": h.filepath, "id": h.id, "score": h.score,
                      "match": h.match} for h in hits])


@router.get("/duplicates", response_model=Envelope[GroupsPage],
            summary="Groups of copies inside the collection, a page at a time")
async def duplicates(request: Request,
                     offset: Annotated[int, Query(ge=0, description="Groups to skip: the "
                                                  "previous page's `next`.")] = 0,
                     limit: Annotated[int, Query(ge=1, le=500,
                                                 description="Groups per page.")] = 20,
                     min_score: Annotated[float, Query(
                         ge=0.5, le=1.0, description="Leave out members scoring less against "
                         "the suggested image (0.5: every verified copy).")] = 0.5,
                     ) -> JSONResponse:
    dups = _duplicates(request)
    version, groups = await run_blocking(request, dups.listing, min_score)
    pending = await run_blocking(request, dups.pending)
    page = groups[offset:offset + limit]
    end = offset + len(page)
    return envelope({"groups": [_group(g) for g in page], "total": len(groups),
                     "next": end if end < len(groups) else None, "pending": pending,
                     "version": version})


@router.post("/duplicates/scan", response_model=Envelope[ScanOut],
             responses={409: {"model": ErrorOut,
                              "description": "A scan is already running, here or on another "
                                             "replica."}},
             summary="Check the images added since the last scan for copies")
async def scan(request: Request) -> JSONResponse:
    report = await run_blocking(request, _duplicates(request).scan)
    return envelope({"scanned": report.scanned, "copies": report.copies,
                     "seconds": round(report.seconds, 3)})


@router.get("/duplicates/progress", response_model=Envelope[ProgressOut],
            summary="How far a running scan, or the making of groups, is")
async def progress(request: Request) -> JSONResponse:
    dups = _duplicates(request)
    running = dups.progress()
    stages = {stage: (p.__dict__ if (p := running.get(stage)) else None)
              for stage in ("scanning", "grouping")}
    # a lock probed without taking it (~2 us; ~15 us with another replica's note read):
    # not worth a worker slot behind searches
    there = dups.scanning_elsewhere()
    return envelope({**stages, "elsewhere": there is not None,
                     "scanning_elsewhere": there.__dict__ if there and there.total else None})


@router.post("/duplicates/dismiss", response_model=Envelope[int], responses=errors(404),
             summary="Not duplicates: never propose these images together again")
async def dismiss(request: Request, body: Dismiss) -> JSONResponse:
    return envelope(await run_blocking(request, _duplicates(request).dismiss, body.ids))


@router.post("/duplicates/keep", response_model=Envelope[KeepOut],
             responses={409: {"model": ErrorOut,
                              "description": "Another decision on these groups, here or on "
                                             "another replica, did not end within 30 s."}},
             summary="Keep one image of a group, delete others that are still its copies")
async def keep(request: Request, body: Keep) -> JSONResponse:
    """Deletes through the same path as `/del/id`, never an image to keep, and never the
    images of one that is gone: the groups a person decides on were listed minutes before,
    and another reviewer may have changed them since."""
    report = await run_blocking(request, _duplicates(request).keep,
                                [(g.keep, g.delete) for g in body.groups], body.version)
    return envelope({"deleted": report.deleted, "left": report.left})
