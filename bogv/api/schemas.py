"""Request and response bodies of the seed API, plus bogv's additive fields.

Field names are the seed's (``imgPath``, ``id`` as "1,2,3"), so old clients work unchanged.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, Field, field_validator

__all__ = [
    "LIMIT_DEFAULT",
    "AddPath",
    "AddUrl",
    "DeleteIds",
    "DeleteKeys",
    "Envelope",
    "HitOut",
    "SearchBase64",
    "SearchPath",
    "SearchUrl",
]

T = TypeVar("T")
LIMIT_DEFAULT = 10


class Envelope(BaseModel, Generic[T]):
    """Every response: ``code`` equals the HTTP status, ``data`` is null on failure."""

    msg: str = "success"
    code: int = 200
    data: T | None = None


class HitOut(BaseModel):
    key: str
    filepath: str
    id: int = Field(description="Record id; always below 2**53, safe as a JavaScript Number.")
    score: float = Field(description="Cosine similarity of the two images' descriptors, "
                         "0..1; 1 means the same picture.")


class _Add(BaseModel):
    key: str | None = Field(None, description="External key; default: MD5 of the image bytes.")
    imgPath: str | None = Field(None, description="Stored and returned as `filepath`.")


class AddUrl(_Add):
    url: str = Field(description="http(s) URL of the image.")


class AddPath(_Add):
    path: str = Field(description="Absolute path on the server, below IMAGE_ALLOWED_ROOTS.")


class _Search(BaseModel):
    limit: int = Field(LIMIT_DEFAULT, description="Number of hits, best first (1..MAX_LIMIT).")
    min_score: float = Field(0.0, ge=0.0, le=1.0, description="Drop hits scoring below this.")


class SearchUrl(_Search):
    url: str


class SearchPath(_Search):
    path: str


class SearchBase64(_Search):
    base64: str = Field(description="Image bytes as base64, optionally a data: URI.")


def _split(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in str(value).split(",") if part.strip()]


class DeleteIds(BaseModel):
    id: list[int] = Field(description='One id or several: "1,2,3" (a number or a list also '
                          "work).")

    @field_validator("id", mode="before")
    @classmethod
    def _ids(cls, value: object) -> list[int]:
        parts = _split(value)
        if not parts:
            raise ValueError("give at least one id")
        try:
            ids = [int(p) for p in parts]
        except ValueError:
            raise ValueError("ids must be integers separated by commas") from None
        if any(not 0 <= i < 2**63 for i in ids):
            raise ValueError("ids must be between 0 and 2**63-1")
        return ids


class DeleteKeys(BaseModel):
    key: list[str] = Field(description='One key or several: "a,b".')

    @field_validator("key", mode="before")
    @classmethod
    def _keys(cls, value: object) -> list[str]:
        parts = _split(value)
        if not parts:
            raise ValueError("give at least one key")
        return parts
