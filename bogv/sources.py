"""Where image bytes come from: an upload, a URL, a server path or base64.

Every limit on *getting* bytes lives here: size (enforced while reading, so memory stays
bounded), time, redirects, and which folders a path may name; which network addresses a URL
may reach is ``bogv.netguard``'s job, done where connections open. httpx exceptions are
translated to bogv errors in ``_http_errors`` only.
"""

from __future__ import annotations

import base64
import binascii
import errno
import os
import re
import stat
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urljoin, urlsplit, urlunsplit

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

__all__ = ["check_url", "decode_base64", "fetch_url", "read_path", "read_stream", "shown_url"]

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
    if len(text) > 2 * limit + 1024:  # cheap early refusal; the exact check follows
        raise _too_large("base64", limit)
    try:
        data = base64.b64decode(re.sub(r"\s+", "", text), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadInput(f"base64 is not valid base64: {exc}", field="base64") from exc
    if not data:
        raise BadInput("base64 is empty", field="base64")
    if len(data) > limit:
        raise _too_large("base64", limit)
    return data


# --- server paths ----------------------------------------------------------------------

def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path.is_relative_to(root) for root in roots)


def _opened_path(fd: int) -> Path | None:
    """The path the kernel actually opened, where ``/proc`` tells it (Linux)."""
    try:
        return Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        return None


def read_path(path: str, *, roots: Iterable[Path], limit: int, field: str = "path",
              head: int | None = None) -> bytes:
    """Read a regular file below one of ``roots``, following no link out of them; with
    ``head``, only its first ``head`` bytes, whatever its size (an image's header).

    The path is resolved and checked, then opened without following a final symlink and
    without blocking (a FIFO would otherwise wait for a writer forever); what was opened is
    checked again, so a folder swapped for a link between the check and the open is caught.
    """
    if not path:
        raise InvalidParameter(f"{field} is required", field=field)
    if "\x00" in path:
        raise InvalidParameter(f"{field} contains a NUL character", field=field)
    real_roots = [Path(os.path.realpath(r)) for r in roots]
    if not real_roots:
        raise PathForbidden(f"{field}: no folders are allowed (set IMAGE_ALLOWED_ROOTS)",
                            field=field)
    if not Path(path).is_absolute():
        raise InvalidParameter(f"{field} must be an absolute path", field=field)
    outside = PathForbidden(f"{field} is outside the allowed folders (IMAGE_ALLOWED_ROOTS)",
                            field=field)
    try:
        real = Path(os.path.realpath(path))
        if not _inside(real, real_roots):
            raise outside
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except UnicodeEncodeError as exc:
        raise InvalidParameter(f"{field} is not valid text for a file name", field=field) from exc
    except OSError as exc:
        raise _path_error(exc, field, path) from exc
    try:
        opened = _opened_path(fd)
        if opened is not None and not _inside(opened, real_roots):
            raise outside
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise PathForbidden(f"{field} is not a regular file: {path}", field=field)
        if head is None and info.st_size > limit:
            raise _too_large(field, limit)
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read(head) if head is not None else read_stream(f, limit=limit, field=field)
    except OSError as exc:
        raise _path_error(exc, field, path) from exc
    finally:
        os.close(fd)


def _path_error(exc: OSError, field: str, path: str) -> BadInput | NotFound | PathForbidden:
    """The bogv error for an ``OSError`` met while opening or reading a server path."""
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return NotFound(f"{field} does not exist: {path}", field=field)
    if exc.errno == errno.ENAMETOOLONG:
        return InvalidParameter(f"{field} is too long for a file name", field=field)
    if exc.errno in (errno.EACCES, errno.EPERM):
        return PathForbidden(f"{field} is not readable by the service: {path}", field=field)
    if exc.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR, errno.ENODEV):
        return PathForbidden(f"{field} is not a regular file: {path}", field=field)
    return BadInput(f"{field} could not be read: {exc.strerror or exc}", field=field)


# --- URLs ----------------------------------------------------------------------------------

def shown_url(url: str) -> str:
    """``url`` without credentials or query string, fit for messages and logs."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(not a valid URL)"
    if ":" in host:
        host = f"[{host}]"
    return urlunsplit((parts.scheme, host + port, parts.path, "", ""))[:300]


def check_url(url: str, *, field: str = "url") -> None:
    """Only absolute http(s) URLs are fetched; where they lead is checked on connecting."""
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port  # both raise ValueError when malformed
    except ValueError as exc:
        raise InvalidParameter(f"{field} is not a valid URL: {exc}", field=field) from exc
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise InvalidParameter(f"{field} must be an absolute http(s) URL", field=field)


@contextmanager
def _http_errors(url: str) -> Iterator[None]:
    try:
        yield
    except httpx.TimeoutException as exc:
        raise BackendUnavailable(f"url timed out: {shown_url(url)}", field="url") from exc
    except httpx.InvalidURL as exc:
        raise InvalidParameter(f"url is not a valid URL: {exc}", field="url") from exc
    except httpx.HTTPError as exc:
        raise BackendUnavailable(f"url could not be fetched ({type(exc).__name__}): "
                                 f"{shown_url(url)}", field="url") from exc
    except UnicodeError as exc:
        raise InvalidParameter("url is not a valid URL (bad characters in it)",
                               field="url") from exc


def fetch_url(url: str, *, limit: int, timeout: float, total_timeout: float,
              max_redirects: int, transport: httpx.BaseTransport) -> bytes:
    """GET ``url``, following redirects by hand so each hop's URL is checked again.

    ``transport`` decides where connections may go (``netguard.GuardedTransport``); this
    function bounds size (while streaming), time (per read and in total) and redirects.
    """
    deadline = time.monotonic() + total_timeout
    with _http_errors(url), httpx.Client(transport=transport, follow_redirects=False,
                                         trust_env=False) as client:
        for hop in range(max_redirects + 1):
            check_url(url, field="url" if hop == 0 else "url redirect")
            per_read = httpx.Timeout(min(timeout, max(deadline - time.monotonic(), 0.001)))
            with client.stream("GET", url, timeout=per_read,
                               headers={"Accept": "image/*",
                                        "Accept-Encoding": "identity"}) as resp:
                if resp.is_redirect:
                    url = urljoin(url, resp.headers.get("location", ""))
                    continue
                if resp.status_code == 404:
                    raise NotFound(f"url answered 404: {shown_url(url)}", field="url")
                if resp.status_code >= 400:
                    raise BadInput(f"url answered HTTP {resp.status_code}: {shown_url(url)}",
                                   field="url")
                declared = resp.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise _too_large("url", limit)
                return _read_body(resp, limit, deadline, total_timeout, url)
        raise BadInput(f"url redirected more than {max_redirects} times (URL_MAX_REDIRECTS)",
                       field="url")


def _read_body(resp: httpx.Response, limit: int, deadline: float, total: float,
               url: str) -> bytes:
    parts, size = [], 0
    for chunk in resp.iter_bytes():  # as received: a chunk_size would wait to fill it
        size += len(chunk)
        if size > limit:
            raise _too_large("url", limit)
        if time.monotonic() > deadline:
            raise BackendUnavailable(f"url took longer than {total:g} s (URL_TOTAL_TIMEOUT): "
                                     f"{shown_url(url)}", field="url")
        parts.append(chunk)
    return b"".join(parts)
