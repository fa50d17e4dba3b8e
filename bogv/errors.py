"""Every failure bogv expects, one tree, each class carrying its HTTP status.

    BogvError (500)
    ├── BadInput (400)                 the request is malformed (e.g. bad base64)
    │   ├── InvalidParameter (422)     a field is missing, mistyped or out of range
    │   ├── NotAnImage (415)           the bytes are not an image bogv can decode
    │   └── TooLarge (413)             bytes or pixels over a configured limit
    ├── Unauthorized (401)             missing or wrong token
    ├── PathForbidden (403)            path outside the allowed roots, or URL target refused
    ├── NotFound (404)                 path or URL that does not exist
    ├── ModelMismatch (409)            the collection was built by another model
    ├── Busy (409)                     the same long job is already running (a duplicate scan)
    └── BackendUnavailable (503)       Milvus or a remote host cannot be reached

Only ``bogv.api.app`` turns these into HTTP responses and only ``bogv.cli`` into exit codes;
the modules at the edges (sources, imaging, store) translate foreign exceptions into these.
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailable",
    "BadInput",
    "BogvError",
    "Busy",
    "InvalidParameter",
    "ModelMismatch",
    "NotAnImage",
    "NotFound",
    "PathForbidden",
    "TooLarge",
    "Unauthorized",
]


class BogvError(Exception):
    """Root of every expected failure; ``status`` is the HTTP status and envelope ``code``."""

    status = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class BadInput(BogvError):
    """The request cannot be understood (e.g. invalid base64)."""

    status = 400


class InvalidParameter(BadInput):
    """A field is missing or outside its documented range."""

    status = 422


class NotAnImage(BadInput):
    """The bytes are not an image in a supported format, or are corrupt."""

    status = 415


class TooLarge(BadInput):
    """The upload, download or decoded image exceeds a configured limit."""

    status = 413


class Unauthorized(BogvError):
    """The service requires a token and the request had none or a wrong one."""

    status = 401


class PathForbidden(BogvError):
    """A server path outside the allowed roots, or a URL whose target is refused."""

    status = 403


class NotFound(BogvError):
    """A server path or URL that does not exist."""

    status = 404


class ModelMismatch(BogvError):
    """The collection holds vectors of another model; mixing them would corrupt search."""

    status = 409


class Busy(BogvError):
    """A long job that runs once at a time (the duplicate scan) is already running."""

    status = 409


class BackendUnavailable(BogvError):
    """Milvus, or a remote host an image is fetched from, did not answer."""

    status = 503


def error_for_status(status: int, message: str) -> BogvError:
    """The most specific bogv error for an HTTP status, e.g. from a remote bogv."""
    for cls in (InvalidParameter, NotAnImage, TooLarge, BadInput, Unauthorized, PathForbidden,
                NotFound, ModelMismatch, BackendUnavailable):
        if cls.status == status:
            return cls(message)
    return BogvError(message)
