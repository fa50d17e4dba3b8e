"""A scriptable HTTP(S) server on loopback standing in for the sites image URLs point at.

Each path answers with a ``Reply``: a status, headers, a body sent whole or in timed chunks
(no Content-Length then), so tests can play slow, huge, compressed or redirecting sites. The
server records the Host header and, over TLS, the SNI name of every request it sees.
"""

from __future__ import annotations

import http.server
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

__all__ = ["Remote", "Reply", "offline_resolve", "self_signed"]


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[bytes] | None = None
    """Sent with chunked transfer encoding, ``pause`` seconds before each chunk."""
    pause: float = 0.0
    sent: int = 0
    """Chunks written before the client hung up (or all of them)."""


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: socket.socket | tuple[bytes, socket.socket],
                     client_address: Any) -> None:
        """A client the test makes give up (a size cap, a time-out) resets the connection
        while a handler reads its next request: what is tested, not an error to print."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class Remote:
    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.routes: dict[str, Reply] = {}
        self.seen: list[tuple[str, str]] = []  # (path, Host header)
        self.sni: list[str | None] = []
        remote = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                remote.seen.append((self.path, self.headers.get("Host", "")))
                reply = remote.routes.get(self.path, Reply(404, b"no such file"))
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.chunks is None:
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                    return
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for chunk in reply.chunks:
                        time.sleep(reply.pause)
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.flush()
                        reply.sent += 1
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    pass  # the client gave up, as it should

            def log_message(self, *args: object) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        scheme = "http"
        if tls is not None:
            tls.sni_callback = lambda _sock, name, _ctx: self.sni.append(name)
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.port = int(self.server.server_address[1])
        self.base = f"{scheme}://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def self_signed(folder: Path, host: str) -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate for ``host``."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", f"/CN={host}", "-addext", f"subjectAltName=DNS:{host}",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def serve(tls: ssl.SSLContext | None = None) -> Iterator[Remote]:
    remote = Remote(tls)
    try:
        yield remote
    finally:
        remote.close()


def offline_resolve(host: str, port: int) -> list[str]:
    """A resolver that sends no DNS query: IP literals and localhost only, other names fail."""
    if host == "localhost":
        return ["127.0.0.1", "::1"]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_NUMERICHOST)
    except socket.gaierror:
        raise socket.gaierror(socket.EAI_NONAME, f"{host}: no DNS in tests") from None
    return [str(info[4][0]) for info in infos]
