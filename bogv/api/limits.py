"""A cap on request bodies, enforced while they arrive.

Starlette spools a multipart upload to a temporary file in full before any route runs, and
reads a JSON body into memory in full, so the routes' own size checks come too late to stop
a client that sends gigabytes. This ASGI middleware counts bytes as the server receives them
and fails the request with 413 as soon as a body declares or sends more than the cap: memory
and disk stay bounded by MAX_UPLOAD_BYTES, whatever the client sends.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimit", "body_cap"]

_SLACK = 64 * 1024
"""Room for multipart headers and the other form or JSON fields next to the image."""


def body_cap(max_upload_bytes: int, content_type: str) -> int:
    """Largest body that can carry a ``max_upload_bytes`` image: base64 JSON is 4/3 larger."""
    if content_type.lower().startswith("multipart/"):
        return max_upload_bytes + _SLACK
    return max_upload_bytes * 4 // 3 + 4 + _SLACK


class BodyLimit:
    """Raise 413 (an ``HTTPException``, rendered by the app's handler) past the body cap.

    The exception is raised from ``receive``, i.e. inside the route's body parsing, where
    FastAPI re-raises ``HTTPException`` unchanged, so the client gets the usual envelope.
    """

    def __init__(self, app: ASGIApp, max_upload_bytes: int) -> None:
        self.app, self.max_upload_bytes = app, max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        cap = body_cap(self.max_upload_bytes, headers.get("content-type", ""))
        declared = headers.get("content-length", "")
        received = 0

        def too_large() -> HTTPException:
            return HTTPException(413, f"request body is larger than {cap} bytes (the image "
                                 f"limit MAX_UPLOAD_BYTES is {self.max_upload_bytes})")

        async def limited() -> Message:
            nonlocal received
            if declared.isdigit() and int(declared) > cap:
                raise too_large()
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    raise too_large()
            return message

        await self.app(scope, limited, send)
