"""Which network addresses a URL fetch may reach, and connecting only to those.

Checking a host name and then letting the HTTP library resolve it again leaves a gap: a DNS
server that answers differently the second time (DNS rebinding) steers the connection to an
address nobody checked. So the check lives in the httpcore *network backend*, the one call
that opens every connection, for the first request and each redirect alike: it resolves the
host once, refuses the connection when any answer is not a public unicast address, and
connects to a checked address literally. TLS still verifies the certificate against the
URL's host name (httpcore passes it as ``server_hostname``) and the Host header is unchanged.
Environment proxies are ignored for the same reason: a proxy would resolve the name itself.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
import typing
from collections.abc import Callable, Iterable

import httpcore
import httpx

from bogv.errors import NotFound, PathForbidden

__all__ = ["GuardedTransport", "Resolver", "refusal", "system_resolve"]

Resolver = Callable[[str, int], list[str]]
"""``(host, port) -> addresses``; injectable so tests can play a lying DNS server."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def system_resolve(host: str, port: int) -> list[str]:
    """The addresses the operating system's resolver gives, in its order, deduplicated."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _embedded_v4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, NAT64, 6to4), if any."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr in _NAT64:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return addr.sixtofour


def refusal(addr: IPAddress) -> str | None:
    """Why bogv will not connect to ``addr`` (e.g. "loopback"), or None for a public address.

    Python's own ``is_global`` misses a few cases (site-local IPv6, 6to4 wrapping a private
    IPv4 address), so every category is checked explicitly, and an IPv4 address carried
    inside an IPv6 one is judged as itself.
    """
    if isinstance(addr, ipaddress.IPv6Address):
        inner = _embedded_v4(addr)
        if inner is not None:
            reason = refusal(inner)
            if reason is not None or addr.ipv4_mapped is not None or addr in _NAT64:
                return reason
        if addr.is_site_local:
            return "site-local"
    for name in ("loopback", "unspecified", "link_local", "multicast", "private", "reserved"):
        if getattr(addr, f"is_{name}"):
            return name.replace("_", "-")
    return None if addr.is_global else "not globally routable"


class _PinnedBackend(httpcore.NetworkBackend):
    """httpcore's sync backend, resolving and checking the host itself before connecting."""

    def __init__(self, allow_private: bool, resolve: Resolver) -> None:
        self.allow_private, self.resolve = allow_private, resolve
        self._sync = httpcore.SyncBackend()

    def checked_addresses(self, host: str, port: int) -> list[str]:
        try:
            found = self.resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise NotFound(f"url host {host!r} does not resolve", field="url") from exc
        if not found:
            raise NotFound(f"url host {host!r} does not resolve", field="url")
        if not self.allow_private:
            for text in found:
                reason = refusal(ipaddress.ip_address(text))
                if reason is not None:
                    raise PathForbidden(
                        f"url host {host!r} resolves to a non-public address ({text}, "
                        f"{reason}); set URL_ALLOW_PRIVATE to allow it",
                        field="url")
        return found

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Iterable[typing.Any] | None = None,
                    ) -> httpcore.NetworkStream:
        error: Exception | None = None
        for address in self.checked_addresses(host, port):
            try:  # the literal address that was checked: no second DNS lookup
                return self._sync.connect_tcp(address, port, timeout, local_address,
                                              socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[typing.Any] | None = None,
                            ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are never fetched")

    def sleep(self, seconds: float) -> None:
        self._sync.sleep(seconds)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One verifying client context for every fetch: building one reads the CA bundle (~80 ms)."""
    return httpx.create_ssl_context(verify=True, trust_env=False)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport over ``_PinnedBackend``: TLS verified, no proxies, checked targets.

    httpx has no public hook for the network backend, so the connection pool it builds is
    replaced by one that uses ours (the same arguments httpx passes, plus the backend).
    """

    def __init__(self, *, allow_private: bool, resolve: Resolver = system_resolve) -> None:
        super().__init__(verify=_tls_context(), trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=_tls_context(), network_backend=_PinnedBackend(allow_private, resolve))
