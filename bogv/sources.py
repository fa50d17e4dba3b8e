"""Where image bytes come from: an upload, a URL, a server path or base64.

Every limit on *getting* bytes lives here: size (enforced while reading, so memory stays
bounded), time, redirects, which network targets a URL may reach, and which folders a path
may name. httpx exceptions are translated to bogv errors in ``_http_errors`` only.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urljoin, urlsplit

import httpx

from bogv.errors import (
    BackendUnavailable,
    BadInput,
    InvalidParameter,
    NotAnImage,
    NotFound,
    PathForbidden,
    TooLarge,
)

__all__ = ["check_url_target", "decode_base64", "fetch_url", "read_path", "read_stream"]

_CHUNK = 1 << 16


def _too_large(field: str, limit: int) -> TooLarge:
    return TooLarge(f"{field} is larger than {limit} bytes (MAX_UPLOAD_BYTES)", field=field)


def read_stream(stream: BinaryIO, *, limit: int, field: str = "file") -> bytes:
    """Read at most ``limit`` bytes, failing as soon as there are more."""
    parts, size = [], 0
    while chunk := stream.read(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise _too_large(field, limit)
        parts.append(chunk)
    return b"".join(parts)


_DATA_URI = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?(;[\w-]+=[\w.-]+)*;base64,", re.I)


def decode_base64(text: str, *, limit: int) -> bytes:
    """Plain or ``data:image/...;base64,`` text to bytes."""
    text = text.strip()
    match = _DATA_URI.match(text)
    if match:
        mime = (match.group(1) or "").lower()
        if mime and not mime.startswith("image/"):
            raise NotAnImage(f"base64 data URI has type {mime}, not image/*", field="base64")
        text = text[match.end():]
    if len(text) * 3 // 4 > limit:
        raise _too_large("base64", limit)
    try:
        data = base64.b64decode(re.sub(r"\s+", "", text), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadInput(f"base64 is not valid base64: {exc}", field="base64") from exc
    if not data:
        raise BadInput("base64 is empty", field="base64")
    return data


# --- server paths ----------------------------------------------------------------------

def read_path(path: str, *, roots: Iterable[Path], limit: int, field: str = "path") -> bytes:
    """Read a regular file below one of ``roots``, following no link out of them."""
    if not path:
        raise InvalidParameter(f"{field} is required", field=field)
    real_roots = [Path(os.path.realpath(r)) for r in roots]
    if not real_roots:
        raise PathForbidden(f"{field}: no folders are allowed (set IMAGE_ALLOWED_ROOTS)",
                            field=field)
    candidate = Path(path)
    if not candidate.is_absolute():
        raise InvalidParameter(f"{field} must be an absolute path", field=field)
    real = Path(os.path.realpath(candidate))
    if not any(real.is_relative_to(root) for root in real_roots):
        raise PathForbidden(f"{field} is outside the allowed folders (IMAGE_ALLOWED_ROOTS)",
                            field=field)
    if not real.exists():
        raise NotFound(f"{field} does not exist: {path}", field=field)
    if not real.is_file():
        raise PathForbidden(f"{field} is not a regular file: {path}", field=field)
    if real.stat().st_size > limit:
        raise _too_large(field, limit)
    try:
        with real.open("rb") as f:
            return read_stream(f, limit=limit, field=field)
    except PermissionError as exc:
        raise PathForbidden(f"{field} is not readable by the service: {path}",
                            field=field) from exc


# --- URLs ----------------------------------------------------------------------------------

def check_url_target(url: str, *, allow_private: bool) -> None:
    """Refuse non-http(s) URLs and hosts that resolve to non-public addresses."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidParameter("url must be an absolute http(s) URL", field="url")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise NotFound(f"url host {parts.hostname!r} does not resolve", field="url") from exc
    for info in infos:
        addr = ipaddress.ip_address(info[4][0])
        if not addr.is_global or addr.is_multicast:
            raise PathForbidden(f"url host {parts.hostname!r} resolves to a non-public address "
                                f"({addr}); set URL_ALLOW_PRIVATE to allow it", field="url")


@contextmanager
def _http_errors(url: str) -> Iterator[None]:
    try:
        yield
    except httpx.TimeoutException as exc:
        raise BackendUnavailable(f"url timed out: {url}", field="url") from exc
    except httpx.InvalidURL as exc:
        raise InvalidParameter(f"url is not a valid URL: {exc}", field="url") from exc
    except httpx.HTTPError as exc:
        raise BackendUnavailable(f"url could not be fetched: {exc}", field="url") from exc


def fetch_url(url: str, *, limit: int, timeout: float, max_redirects: int,
              allow_private: bool, transport: httpx.BaseTransport | None = None) -> bytes:
    """GET ``url`` with TLS verified, following redirects by hand so each hop is checked."""
    with _http_errors(url), httpx.Client(timeout=timeout, transport=transport,
                                         follow_redirects=False, verify=True) as client:
        for _ in range(max_redirects + 1):
            check_url_target(url, allow_private=allow_private)
            with client.stream("GET", url, headers={"Accept": "image/*"}) as resp:
                if resp.is_redirect:
                    url = urljoin(url, resp.headers.get("location", ""))
                    continue
                if resp.status_code == 404:
                    raise NotFound(f"url answered 404: {url}", field="url")
                if resp.status_code >= 400:
                    raise BadInput(f"url answered HTTP {resp.status_code}: {url}", field="url")
                declared = resp.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > limit:
                    raise _too_large("url", limit)
                parts, size = [], 0
                for chunk in resp.iter_bytes(_CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise _too_large("url", limit)
                    parts.append(chunk)
                return b"".join(parts)
        raise BadInput(f"url redirected more than {max_redirects} times", field="url")
