"""URL fetching: which addresses are refused, the checked address is the one connected to,
TLS is verified against the host name, and size, time and redirects are bounded."""

from __future__ import annotations

import gzip
import ipaddress
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bogv.errors import BackendUnavailable, BadInput, InvalidParameter, PathForbidden, TooLarge
from bogv.netguard import GuardedTransport, Resolver, refusal
from bogv.sources import fetch_url

from .remote import Remote, Reply, self_signed, serve


@pytest.fixture
def remote() -> Iterator[Remote]:
    yield from serve()


def fetch(url: str, *, allow_private: bool = True, resolve: Resolver | None = None,
          transport: httpx.BaseTransport | None = None, limit: int = 1 << 20,
          timeout: float = 5.0, total: float = 30.0, redirects: int = 3) -> bytes:
    if transport is None:
        transport = (GuardedTransport(allow_private=allow_private) if resolve is None else
                     GuardedTransport(allow_private=allow_private, resolve=resolve))
    return fetch_url(url, limit=limit, timeout=timeout, total_timeout=total,
                     max_redirects=redirects, transport=transport)


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.8.9.10", "::1", "0.0.0.0", "::", "10.1.2.3", "172.16.0.1",
    "192.168.1.1", "169.254.169.254", "fe80::1", "fe80::1%2", "fc00::1", "fd12:3456::1",
    "fec0::1", "100.64.0.1", "224.0.0.1", "239.255.255.250", "ff02::1", "255.255.255.255",
    "240.0.0.1", "198.18.0.1", "192.0.2.1", "2001:db8::1",
    "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:10.0.0.1", "64:ff9b::a00:1",
    "2002:7f00:1::1", "2002:a9fe:a9fe::1", "::7f00:1",
])
def test_non_public_addresses_are_refused(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is not None, address


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "2606:4700::1111",
                                     "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"])
def test_public_addresses_pass(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


def test_names_are_resolved_once_and_the_checked_address_is_used(remote: Remote) -> None:
    """A DNS server that answers loopback once and then fails cannot steer the connection:
    there is no second lookup. The Host header still carries the name."""
    remote.routes["/cat.jpg"] = Reply(body=b"cat bytes")
    answers = iter([["127.0.0.1"]])
    lookups: list[tuple[str, int]] = []

    def lying_dns(host: str, port: int) -> list[str]:
        lookups.append((host, port))
        return next(answers)  # a second lookup would raise StopIteration

    url = f"http://images.test:{remote.port}/cat.jpg"
    assert fetch(url, resolve=lying_dns) == b"cat bytes"
    assert lookups == [("images.test", remote.port)]
    assert remote.seen == [("/cat.jpg", f"images.test:{remote.port}")]


@pytest.mark.parametrize("answers", [["127.0.0.1"], ["93.184.216.34", "127.0.0.1"],
                                     ["169.254.169.254"], ["::ffff:10.0.0.7"]])
def test_a_name_resolving_to_any_non_public_address_is_refused(remote: Remote,
                                                               answers: list[str]) -> None:
    with pytest.raises(PathForbidden, match="non-public address"):
        fetch(f"http://cdn.test:{remote.port}/x.jpg", allow_private=False,
              resolve=lambda host, port: answers)
    assert remote.seen == []


@pytest.mark.parametrize("url", ["http://127.0.0.1:{port}/x", "http://localhost:{port}/x",
                                 "http://[::ffff:127.0.0.1]:{port}/x", "http://127.1:{port}/x",
                                 "http://2130706433:{port}/x", "http://0x7f000001:{port}/x",
                                 "http://0:{port}/x", "http://[::]:{port}/x"])
def test_loopback_spellings_are_refused(remote: Remote, url: str) -> None:
    with pytest.raises(PathForbidden):
        fetch(url.format(port=remote.port), allow_private=False)
    assert remote.seen == []


class FirstHopElsewhere(httpx.BaseTransport):
    """``public.test`` answers from a script (a public site); every other hop is real."""

    def __init__(self, first: httpx.MockTransport, real: httpx.BaseTransport) -> None:
        self.first, self.real = first, real

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "public.test":
            return self.first.handle_request(request)
        return self.real.handle_request(request)


@pytest.mark.parametrize("target", ["http://127.0.0.1:{port}/cat.jpg",
                                    "http://localhost:{port}/cat.jpg",
                                    "http://[::ffff:7f00:1]:{port}/cat.jpg"])
def test_every_redirect_is_checked_again(remote: Remote, target: str) -> None:
    remote.routes["/cat.jpg"] = Reply(body=b"internal")
    location = target.format(port=remote.port)
    public = httpx.MockTransport(lambda _: httpx.Response(302, headers={"Location": location}))
    transport = FirstHopElsewhere(public, GuardedTransport(allow_private=False))
    with pytest.raises(PathForbidden, match="non-public"):
        fetch("http://public.test/img.jpg", transport=transport)
    assert remote.seen == []


def test_redirects_are_followed_a_few_times_and_only_to_http(remote: Remote) -> None:
    remote.routes["/cat.jpg"] = Reply(body=b"cat")
    for hop in range(3):
        remote.routes[f"/r{hop}"] = Reply(302, headers={"Location": f"/r{hop + 1}"})
    remote.routes["/r3"] = Reply(302, headers={"Location": "/cat.jpg"})
    assert fetch(f"{remote.base}/r1", redirects=3) == b"cat"
    with pytest.raises(BadInput, match="more than 2 times"):
        fetch(f"{remote.base}/r0", redirects=2)
    remote.routes["/loop"] = Reply(301, headers={"Location": "/loop"})
    with pytest.raises(BadInput, match="redirected more than"):
        fetch(f"{remote.base}/loop")
    remote.routes["/to-file"] = Reply(302, headers={"Location": "file:///etc/passwd"})
    with pytest.raises(InvalidParameter, match="url redirect must be an absolute http"):
        fetch(f"{remote.base}/to-file")


def test_tls_is_verified_against_the_host_name_sent_as_sni(tmp_path: Path) -> None:
    """Connecting to the pinned address keeps the URL's name for SNI and certificate checks,
    and an untrusted certificate is refused."""
    for remote in serve(self_signed(tmp_path, "images.test")):
        remote.routes["/cat.jpg"] = Reply(body=b"cat")
        with pytest.raises(BackendUnavailable, match="ConnectError"):
            fetch(f"https://images.test:{remote.port}/cat.jpg",
                  resolve=lambda host, port: ["127.0.0.1"])
        assert remote.sni == ["images.test"]
        assert remote.seen == []


def test_size_is_capped_while_streaming(remote: Remote) -> None:
    remote.routes["/declared"] = Reply(body=b"x" * 5000)
    remote.routes["/chunked"] = Reply(chunks=[b"x" * 1000] * 50)
    bomb = gzip.compress(b"\0" * 50_000_000)
    remote.routes["/gzip-bomb"] = Reply(body=bomb, headers={"Content-Encoding": "gzip"})
    for path in ("/declared", "/chunked", "/gzip-bomb"):
        with pytest.raises(TooLarge, match="MAX_UPLOAD_BYTES"):
            fetch(remote.base + path, limit=4000)
    assert len(bomb) < 100_000


def test_slow_sites_time_out(remote: Remote) -> None:
    remote.routes["/stalls"] = Reply(chunks=[b"x"], pause=3)
    remote.routes["/drips"] = drips = Reply(chunks=[b"x"] * 60, pause=0.1)
    with pytest.raises(BackendUnavailable, match="timed out"):
        fetch(f"{remote.base}/stalls", timeout=0.5)
    with pytest.raises(BackendUnavailable, match="URL_TOTAL_TIMEOUT"):
        fetch(f"{remote.base}/drips", timeout=1.0, total=1.0)
    time.sleep(0.5)
    assert drips.sent < 30  # the client hung up after about 1 s, not after the whole body


def test_messages_never_show_url_credentials_or_query(remote: Remote) -> None:
    url = f"http://user:hunter2@127.0.0.1:{remote.port}/missing.jpg?sig=s3cr3t"
    with pytest.raises(Exception) as info:
        fetch(url)
    assert "hunter2" not in str(info.value) and "s3cr3t" not in str(info.value)
    assert "/missing.jpg" in str(info.value)
