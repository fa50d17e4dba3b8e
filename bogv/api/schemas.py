"""Request and response bodies of the seed API, plus bogv's additive fields.

Field names are the seed's (``imgPath``, ``id`` as "1,2,3"), so old clients work unchanged.
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field, WithJsonSchema, field_validator

from bogv.fields import MAX_FILEPATH, MAX_KEY

__all__ = [
    "LIMIT_DEFAULT",
    "MAX_LIST",
    "AddPath",
    "AddUrl",
    "DeleteIds",
    "DeleteKeys",
    "Envelope",
    "ErrorOut",
    "HitOut",
    "RecordOut",
    "RecordsPage",
    "SearchBase64",
    "SearchPath",
    "SearchUrl",
    "StatsOut",
    "errors",
]

T = TypeVar("T")
LIMIT_DEFAULT = 10
MAX_LIST = 16_384
"""Most ids or keys one delete accepts: the store pages its lookups at this size."""
MAX_URL = 4096
MAX_PATH = 4096


class Envelope(BaseModel, Generic[T]):
    """Every response: ``code`` equals the HTTP status, ``data`` is null on failure."""

    msg: str = "success"
    code: int = 200
    data: T | None = None


class ErrorOut(BaseModel):
    """Every failure: ``msg`` names the field and the limit, ``data`` is null."""

    msg: str
    code: int
    data: None = None


_WHY = {
    400: "Malformed input (e.g. invalid base64, unreadable body).",
    401: "Missing or wrong token.",
    403: "Path outside IMAGE_ALLOWED_ROOTS or not a regular file; URL to a non-public address.",
    404: "Path or URL not found.",
    413: "Body, image bytes, pixels or frames over their limit.",
    415: "Not an image in a supported format.",
    422: "A missing or invalid field, named in msg.",
    503: "Milvus, or the host of a URL, did not answer.",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses, all in the envelope."""
    return {status: {"model": ErrorOut, "description": _WHY[status]} for status in statuses}


class StatsOut(BaseModel):
    count: int
    model: str
    dim: int
    store: str
    collection: str
    precision: str = Field(description="The graph that embeds: `fp32` (the same vectors on "
                           "every CPU) or `int8` (opt-in, x86 with VNNI only).")
    cpu: str = Field(description="CPU model and the features that chose the kernels, e.g. "
                     "`AMD EPYC (x86_64: avx2 avx512f avx512_vnni)`.")


class HitOut(BaseModel):
    key: str
    filepath: str
    id: int = Field(description="Record id; always below 2**53, safe as a JavaScript Number.")
    score: float = Field(description="Calibrated score 0..1: 0.5 and above is an edited copy "
                         "verified by keypoints or pixels, 1 the same picture; below 0.5 it "
                         "ranks how alike the hit looks (see the README).")
    match: Literal["exact", "copy", "similar"] = Field(
        description="exact: the same pixels; copy: an edited copy of the query (score >= "
        "0.5); similar: anything else.")


class RecordOut(BaseModel):
    id: int = Field(description="Record id; ids grow with time.")
    key: str
    filepath: str
    added: str = Field(description="When the record was added (UTC, ISO 8601, from its id).")


class RecordsPage(BaseModel):
    records: list[RecordOut] = Field(description="Newest first.")
    next: int | None = Field(description="Pass as `before` for the next page; null on the "
                             "last page.")


KEY_HELP = (f"External key, at most {MAX_KEY} characters, no control characters; default: "
            "MD5 of the image bytes.")
IMG_PATH_HELP = f"Stored and returned as `filepath`, at most {MAX_FILEPATH} characters."
LIMIT_HELP = "Number of hits, best first (1..MAX_LIMIT, 1000 by default)."
MIN_SCORE_HELP = "Drop hits scoring below this (0.5 keeps copies only)."
UNIQUE_KEY_HELP = "One hit per key: its best-matching image."
URL_HELP = ("http(s) URL of the image. Only public addresses are fetched (unless "
            "URL_ALLOW_PRIVATE); TLS is verified; redirects, size and time are bounded.")
PATH_HELP = "Absolute path of a regular file on the server, below IMAGE_ALLOWED_ROOTS."


class _Add(BaseModel):
    key: str | None = Field(None, max_length=MAX_KEY, description=KEY_HELP)
    imgPath: str | None = Field(None, max_length=MAX_FILEPATH, description=IMG_PATH_HELP)


class AddUrl(_Add):
    url: str = Field(max_length=MAX_URL, description=URL_HELP)


class AddPath(_Add):
    path: str = Field(max_length=MAX_PATH, description=PATH_HELP)


class _Search(BaseModel):
    limit: int = Field(LIMIT_DEFAULT, ge=1, description=LIMIT_HELP)
    min_score: float = Field(0.0, ge=0.0, le=1.0, allow_inf_nan=False,
                             description=MIN_SCORE_HELP)
    unique_key: bool = Field(False, description=UNIQUE_KEY_HELP)


class SearchUrl(_Search):
    url: str = Field(max_length=MAX_URL, description=URL_HELP)


class SearchPath(_Search):
    path: str = Field(max_length=MAX_PATH, description=PATH_HELP)


class SearchBase64(_Search):
    base64: str = Field(description="Image bytes as base64, optionally a data: URI.")


def _split(value: object, what: str) -> list[str]:
    """Comma-separated text, one value or a list of values (texts or integers, as older
    clients send them), as stripped non-empty parts."""

    def scalar(v: object) -> bool:
        return isinstance(v, str | int) and not isinstance(v, bool)

    if isinstance(value, str):
        parts = value.split(",")
    elif scalar(value):
        parts = [str(value)]
    elif isinstance(value, list) and all(scalar(v) for v in value):
        parts = [str(v) for v in value]
    else:
        raise ValueError(f'give {what}s as text like "a,b", one value or a list of values')
    parts = [p.strip() for p in parts if p.strip()]
    if not parts:
        raise ValueError(f"give at least one {what}")
    if len(parts) > MAX_LIST:
        raise ValueError(f"at most {MAX_LIST} {what}s per request, not {len(parts)}")
    return parts


def _as_input(example: str, number: dict[str, Any]) -> WithJsonSchema:
    """Document what a delete really accepts: "1,2,3", one value, or a list of values."""
    one = {"anyOf": [{"type": "string"}, number]}
    return WithJsonSchema({"anyOf": [{"type": "string", "example": example}, number,
                                     {"type": "array", "items": one, "maxItems": MAX_LIST}]})


class DeleteIds(BaseModel):
    id: Annotated[list[int], _as_input("1,2,3", {"type": "integer", "minimum": 0,
                                                 "maximum": 2**63 - 1})] = Field(
        description='One id or several: "1,2,3" (a number or a list also work).')

    @field_validator("id", mode="before")
    @classmethod
    def _ids(cls, value: object) -> list[int]:
        parts = _split(value, "id")
        try:
            ids = [int(p) for p in parts]
        except ValueError:
            raise ValueError("ids must be integers separated by commas") from None
        if any(not 0 <= i < 2**63 for i in ids):
            raise ValueError("ids must be between 0 and 2**63-1")
        return ids


class DeleteKeys(BaseModel):
    key: Annotated[list[str], _as_input("a,b", {"type": "integer"})] = Field(
        description='One key or several: "a,b" (a list also works).')

    @field_validator("key", mode="before")
    @classmethod
    def _keys(cls, value: object) -> list[str]:
        keys = _split(value, "key")
        for key in keys:
            try:
                key.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("keys must be valid Unicode text") from None
        return keys
