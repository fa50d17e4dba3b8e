"""Every hostile input through the real API: a 4xx whose message names the problem, never a
500, and the stored records unchanged (their count and a search, before and after)."""

from __future__ import annotations

import base64
import json
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bogv.api.app import create_app
from bogv.config import Settings
from bogv.indexing import index_spec
from bogv.model.descriptor import DIM
from bogv.model.embedder import Embedder
from bogv.service import Service
from bogv.store import Store

from . import hostile
from .images import PHOTOS, encode, photo
from .remote import Remote, Reply, offline_resolve

API = "/api/image/sim"
LIMIT = 2_000_000  # MAX_UPLOAD_BYTES of the app under attack


@dataclass
class Case:
    route: str
    status: int
    words: tuple[str, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    private_ok: bool = False
    """Send to the app with URL_ALLOW_PRIVATE (for sites on the loopback test server)."""


@dataclass
class Target:
    strict: TestClient
    private_ok: TestClient
    service: Service
    roots: Path
    site: Remote
    query: Any

    def snapshot(self) -> tuple[int, list[int]]:
        hits = self.service.store.search(self.query, 50)
        return self.service.store.count(), [h.id for h in hits]


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder,
           photos: dict[str, bytes]) -> Iterator[Target]:
    """One store with the test photos, behind two apps (strict, and URL_ALLOW_PRIVATE)."""
    tmp = tmp_path_factory.mktemp("hostile")
    roots = tmp / "allowed"
    traps(roots, photos["coffee"])
    common = {"data_dir": tmp / "data", "token": "", "image_allowed_roots": str(roots),
              "max_upload_bytes": LIMIT, "url_timeout": 1.0}
    strict = Settings(**common)
    store = Store(strict.store_uri, model_id=embedder.model_id, dim=DIM,
                  index=index_spec(strict))
    service = Service(strict, embedder, store, resolve=offline_resolve)
    for name, data in photos.items():
        service.add(data, name, f"shop/{name}.jpg")
    open_service = Service(Settings(**common, url_allow_private=True), embedder, store,
                           resolve=offline_resolve)
    site = Remote()
    site.routes.update(site_routes(photos["coffee"]))
    query = embedder.embed_tensors(service.prepare(photos["coffee"]).tensor[None])
    with TestClient(create_app(service=service), raise_server_exceptions=False) as a, \
            TestClient(create_app(service=open_service), raise_server_exceptions=False) as b:
        yield Target(a, b, service, roots, site, query)
    site.close()
    store.close()


def traps(roots: Path, jpeg: bytes) -> None:
    """The allowed folder, baited: links out, a FIFO, a socket, a folder, a link loop."""
    (roots / "folder.jpg").mkdir(parents=True)
    (roots / "coffee.jpg").write_bytes(jpeg)
    (roots / "notes.jpg").write_text("just text")
    (roots / "big.jpg").write_bytes(b"\xff\xd8" + b"\0" * LIMIT)
    (roots / "passwd.jpg").symlink_to("/etc/passwd")
    (roots / "zero.jpg").symlink_to("/dev/zero")
    (roots / "loop.jpg").symlink_to(roots / "loop.jpg")
    os.mkfifo(roots / "fifo.jpg")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(roots / "socket.jpg"))
    sock.close()


def site_routes(jpeg: bytes) -> dict[str, Reply]:
    import gzip

    return {
        "/coffee.jpg": Reply(body=jpeg),
        "/page.jpg": Reply(body=hostile.html(), headers={"Content-Type": "image/jpeg"}),
        "/broken": Reply(500, b"oops"),
        "/gzip-bomb.jpg": Reply(body=gzip.compress(b"\0" * 40_000_000),
                                headers={"Content-Encoding": "gzip"}),
        "/declared-huge.jpg": Reply(body=b"\xff\xd8" + b"\0" * LIMIT),
        "/chunked-huge.jpg": Reply(chunks=[b"\0" * 65536] * 40),
        "/loop": Reply(302, headers={"Location": "/loop"}),
        "/to-file": Reply(302, headers={"Location": "file:///etc/passwd"}),
        "/stalls.jpg": Reply(chunks=[b"\xff\xd8"], pause=3),
    }


# --- the corpus ---------------------------------------------------------------------------

def _files() -> dict[str, tuple[bytes, int, tuple[str, ...]]]:
    jpeg = encode(photo("coffee"), quality=90)
    png = encode(photo("coffee"), "PNG")
    not_image = ("not an image",)
    return {
        "empty": (b"", 415, ("empty",)),
        "truncated-jpeg": (jpeg[: len(jpeg) // 3], 415, ("truncated",)),
        "truncated-png": (png[: len(png) // 2], 415, ("truncated",)),
        "png-50000x50000": (hostile.png_declaring(50_000, 50_000), 413, ("pixels",)),
        "jpeg-65000x65000": (hostile.jpeg_declaring(65_000, 65_000), 413, ("MAX_PIXELS",)),
        "png-text-bomb": (hostile.png_text_bomb(), 415, ("too large",)),
        "gif-3000-frames": (hostile.gif_frames(3000), 413, ("1000 frames", "MAX_FRAMES")),
        "tiff-1200-pages": (hostile.tiff_pages(1200), 413, ("MAX_FRAMES",)),
        "svg": (hostile.svg(), 415, not_image),
        "pdf": (hostile.pdf(), 415, not_image),
        "eps": (hostile.eps(), 415, not_image),
        "ico": (hostile.ico(), 415, ("supported format",)),
        "zip": (hostile.zip_of(jpeg), 415, not_image),
        "html-named-jpg": (hostile.html(), 415, not_image),
        "gif-js-polyglot": (hostile.gif_js_polyglot(), 415, not_image),
        "png-html-polyglot": (hostile.png_html_polyglot(), 415, ("corrupt",)),
        "over-upload-limit": (b"\xff\xd8" + b"\0" * LIMIT, 413, ("MAX_UPLOAD_BYTES",)),
    }


FILES = _files()


def _image_cases() -> dict[str, Callable[[Target], Case]]:
    """Each hostile file as an upload to add and to search, and as base64 to search."""
    cases: dict[str, Callable[[Target], Case]] = {}
    for name, (data, status, words) in FILES.items():
        upload = {"files": {"file": (f"{name}.jpg", data)}}
        cases[f"add-file:{name}"] = lambda t, u=upload, s=status, w=words: Case(
            "/add/file", s, w, u)
        cases[f"search-file:{name}"] = lambda t, u=upload, s=status, w=words: Case(
            "/search/file", s, w, u)
        if name != "over-upload-limit":
            b64 = {"json": {"base64": base64.b64encode(data).decode()}}
            words64 = ("empty",) if not data else words
            status64 = 400 if not data else status
            cases[f"search-base64:{name}"] = lambda t, j=b64, s=status64, w=words64: Case(
                "/search/base64", s, w, j)
    return cases


def _jpeg() -> bytes:
    return encode(photo("chelsea").resize((96, 64)), quality=80)


def upload(**form: str) -> dict[str, Any]:
    return {"files": {"file": ("cat.jpg", _jpeg())}, "data": form}


def json_body(text: str) -> dict[str, Any]:
    return {"content": text.encode(), "headers": {"content-type": "application/json"}}


def escaped(body: dict[str, Any]) -> dict[str, Any]:
    """JSON with \\u escapes, so lone surrogates (valid JSON, not UTF-8) can be sent."""
    return json_body(json.dumps(body, ensure_ascii=True))


def b64(**fields: Any) -> dict[str, Any]:
    return {"json": {"base64": base64.b64encode(_jpeg()).decode(), **fields}}


CASES: dict[str, Callable[[Target], Case]] = {
    **_image_cases(),
    # multipart structure
    "upload-missing-file": lambda t: Case("/add/file", 422, ("file",), {"data": {"key": "k"}}),
    "upload-file-as-text": lambda t: Case("/add/file", 422, ("file",),
                                          {"data": {"file": "not a file"}}),
    "upload-no-boundary": lambda t: Case("/add/file", 400, ("boundary",), {
        "content": b"--x\r\n", "headers": {"content-type": "multipart/form-data"}}),
    "upload-file-name-600": lambda t: Case("/add/file", 422, ("file name", "512"), {
        "files": {"file": ("n" * 596 + ".jpg", _jpeg())}}),
    # keys and stored paths
    "key-65-chars": lambda t: Case("/add/file", 422, ("key", "64"), upload(key="k" * 65)),
    "key-control-char": lambda t: Case("/add/file", 422, ("key", "control"),
                                       upload(key="sku\x01")),
    "key-newline": lambda t: Case("/add/file", 422, ("key", "control"), upload(key="a\nb")),
    "key-lone-surrogate": lambda t: Case("/add/path", 422, ("key", "string"), escaped({
        "path": str(t.roots / "coffee.jpg"), "key": "\ud800"})),
    "imgPath-513-chars": lambda t: Case("/add/file", 422, ("imgPath", "512"),
                                        upload(imgPath="p" * 513)),
    "imgPath-lone-surrogate": lambda t: Case("/add/path", 422, ("imgPath", "string"), escaped({
        "path": str(t.roots / "coffee.jpg"), "imgPath": "x\udfff"})),
    "url-600-as-filepath": lambda t: Case("/add/url", 422, ("url", "512"), {
        "json": {"url": "http://example.com/" + "a" * 600}}),
    # limit and min_score
    **{f"limit-{v!r}": (lambda t, v=v: Case("/search/file", 422, ("limit",),
                                            upload(limit=str(v))))
       for v in (0, -1, 10**9, "abc", "1e3")},
    "limit-json-fraction": lambda t: Case("/search/base64", 422, ("limit",), b64(limit=1.5)),
    "limit-json-1e9": lambda t: Case("/search/base64", 422, ("limit", "MAX_LIMIT"),
                                     b64(limit=10**9)),
    "limit-json-null": lambda t: Case("/search/base64", 422, ("limit",), b64(limit=None)),
    "min-score-negative": lambda t: Case("/search/file", 422, ("min_score",),
                                         upload(min_score="-0.5")),
    "min-score-above-one": lambda t: Case("/search/base64", 422, ("min_score",),
                                          b64(min_score=1.5)),
    "min-score-nan": lambda t: Case("/search/file", 422, ("min_score",),
                                    upload(min_score="nan")),
    "min-score-json-nan": lambda t: Case("/search/base64", 422, ("min_score",), json_body(
        '{"base64": "' + base64.b64encode(_jpeg()).decode() + '", "min_score": NaN}')),
    # base64
    "base64-garbage": lambda t: Case("/search/base64", 400, ("base64",), {
        "json": {"base64": "###not base64###"}}),
    "base64-bad-padding": lambda t: Case("/search/base64", 400, ("base64",), {
        "json": {"base64": "aGVsbG8"}}),
    "base64-lone-surrogate": lambda t: Case("/search/base64", 400, ("base64",), escaped({
        "base64": "aGVs\ud800bG8="})),
    "base64-of-text": lambda t: Case("/search/base64", 415, ("not an image",), {
        "json": {"base64": base64.b64encode(b"hello world").decode()}}),
    "data-uri-text-html": lambda t: Case("/search/base64", 415, ("text/html",), {
        "json": {"base64": "data:text/html;base64," + base64.b64encode(b"<b>").decode()}}),
    "data-uri-pdf": lambda t: Case("/search/base64", 415, ("application/pdf",), {
        "json": {"base64": "data:application/pdf;base64,"
                 + base64.b64encode(hostile.pdf()).decode()}}),
    "base64-over-limit": lambda t: Case("/search/base64", 413, ("MAX_UPLOAD_BYTES",), {
        "json": {"base64": base64.b64encode(b"\xff\xd8" + b"\0" * LIMIT).decode()}}),
    "json-body-over-cap": lambda t: Case("/search/base64", 413, ("request body",), {
        "json": {"base64": "A" * (LIMIT * 2)}}),
    # JSON shape
    "json-array": lambda t: Case("/add/url", 422, (), json_body("[]")),
    "json-null": lambda t: Case("/add/url", 422, (), json_body("null")),
    "json-broken": lambda t: Case("/add/url", 422, ("JSON",), json_body('{"url": ')),
    "json-as-text-plain": lambda t: Case("/add/url", 422, (), {
        "content": b'{"url": "http://x/"}', "headers": {"content-type": "text/plain"}}),
    "json-url-not-string": lambda t: Case("/add/url", 422, ("url",), {"json": {"url": 42}}),
    # delete lists
    **{f"del-id-{v!r}": (lambda t, v=v: Case("/del/id", 422, ("id",), {"json": {"id": v}}))
       for v in ("1,,x", "99999999999999999999", "", " , ", "-1", "1.5", "0x10", None, True,
                 [], {"a": 1}, 1.5, [1, "x"], ",".join(["1"] * 16_385))},
    **{f"del-key-{v!r}": (lambda t, v=v: Case("/del/key", 422, ("key",), escaped({"key": v})))
       for v in (" , ", "", None, {"k": 1}, "\ud800", ",".join(["k"] * 16_385))},
    # server paths
    "path-relative": lambda t: Case("/add/path", 422, ("absolute",), {
        "json": {"path": "coffee.jpg"}}),
    "path-etc-passwd": lambda t: Case("/add/path", 403, ("outside",), {
        "json": {"path": "/etc/passwd"}}),
    "path-dotdot": lambda t: Case("/search/path", 403, ("outside",), {
        "json": {"path": f"{t.roots}/../../../etc/passwd"}}),
    "path-symlink-out": lambda t: Case("/add/path", 403, ("outside",), {
        "json": {"path": str(t.roots / "passwd.jpg")}}),
    "path-symlink-dev-zero": lambda t: Case("/add/path", 403, ("outside",), {
        "json": {"path": str(t.roots / "zero.jpg")}}),
    "path-dev-zero": lambda t: Case("/search/path", 403, ("outside",), {
        "json": {"path": "/dev/zero"}}),
    "path-fifo": lambda t: Case("/add/path", 403, ("not a regular file",), {
        "json": {"path": str(t.roots / "fifo.jpg")}}),
    "path-directory": lambda t: Case("/add/path", 403, ("not a regular file",), {
        "json": {"path": str(t.roots / "folder.jpg")}}),
    "path-socket": lambda t: Case("/search/path", 403, ("not a regular file",), {
        "json": {"path": str(t.roots / "socket.jpg")}}),
    "path-symlink-loop": lambda t: Case("/add/path", 403, ("not a regular file",), {
        "json": {"path": str(t.roots / "loop.jpg")}}),
    "path-nul": lambda t: Case("/add/path", 422, ("NUL",), {
        "json": {"path": f"{t.roots}/coffee.jpg\x00.png"}}),
    "path-5000-chars": lambda t: Case("/add/path", 422, ("path", "4096"), {
        "json": {"path": "/" + "a" * 5000}}),
    "path-name-too-long": lambda t: Case("/add/path", 422, ("too long",), {
        "json": {"path": f"{t.roots}/{'n' * 300}.jpg"}}),
    "path-lone-surrogate": lambda t: Case("/add/path", 422, ("path",), escaped({
        "path": f"{t.roots}/\ud800.jpg"})),
    "path-missing": lambda t: Case("/add/path", 404, ("does not exist",), {
        "json": {"path": str(t.roots / "missing.jpg")}}),
    "path-over-limit": lambda t: Case("/add/path", 413, ("MAX_UPLOAD_BYTES",), {
        "json": {"path": str(t.roots / "big.jpg")}}),
    "path-not-an-image": lambda t: Case("/add/path", 415, ("not an image",), {
        "json": {"path": str(t.roots / "notes.jpg")}}),
    # URLs that must never be fetched
    **{f"url-scheme-{u.split(':')[0] or 'relative'}": (
        lambda t, u=u: Case("/add/url", 422, ("http(s)",), {"json": {"url": u}}))
       for u in ("file:///etc/passwd", "ftp://example.com/a.jpg", "gopher://127.0.0.1:70/",
                 "javascript:alert(1)", "//example.com/a.jpg", "http://", "data:image/png,x")},
    **{f"url-invalid-{i}": (lambda t, u=u: Case("/add/url", 422, ("url", "valid URL"), {
        "json": {"url": u}}))
       for i, u in enumerate(("http://[::1/a.jpg", "http://[zz]/a.jpg", "http://\u2100/a.jpg",
                              "http://host:99999/a.jpg", "http://exa\x00mple/a.jpg"))},
    "url-4097-chars": lambda t: Case("/add/url", 422, ("url", "4096"), {
        "json": {"url": "http://example.com/" + "a" * 4100}}),
    **{f"url-{name}": (lambda t, u=u: Case("/add/url", 403, ("non-public",), {
        "json": {"url": u.format(port=t.site.port)}}))
       for name, u in {
           "loopback": "http://127.0.0.1:{port}/coffee.jpg",
           "localhost": "http://localhost:{port}/coffee.jpg",
           "ipv6-loopback": "http://[::1]:{port}/coffee.jpg",
           "ipv4-mapped": "http://[::ffff:127.0.0.1]:{port}/coffee.jpg",
           "decimal": "http://2130706433:{port}/coffee.jpg",
           "hex": "http://0x7f000001:{port}/coffee.jpg",
           "zero": "http://0:{port}/coffee.jpg",
           "metadata": "http://169.254.169.254/latest/meta-data/",
           "metadata-mapped": "http://[::ffff:169.254.169.254]/latest/meta-data/",
           "private": "http://10.0.0.1/a.jpg",
           "link-local-v6": "http://[fe80::1]/a.jpg",
           "multicast": "http://224.0.0.1/a.jpg",
           "credentials": "http://admin:hunter2@127.0.0.1:{port}/coffee.jpg"}.items()},
    "url-search-metadata": lambda t: Case("/search/url", 403, ("non-public",), {
        "json": {"url": "http://169.254.169.254/"}}),
    "url-unresolvable": lambda t: Case("/add/url", 404, ("does not resolve",), {
        "json": {"url": "http://nonexistent.invalid/a.jpg"}}),
    # URLs to a (loopback) site that answers badly, with URL_ALLOW_PRIVATE
    **{f"site-{name}": (lambda t, p=p, s=s, w=w: Case("/add/url", s, w, {
        "json": {"url": f"{t.site.base}{p}"}}, private_ok=True))
       for name, (p, s, w) in {
           "html-page": ("/page.jpg", 415, ("not an image",)),
           "404": ("/missing.jpg", 404, ("404",)),
           "500": ("/broken", 400, ("HTTP 500",)),
           "gzip-bomb": ("/gzip-bomb.jpg", 413, ("MAX_UPLOAD_BYTES",)),
           "declared-huge": ("/declared-huge.jpg", 413, ("MAX_UPLOAD_BYTES",)),
           "chunked-huge": ("/chunked-huge.jpg", 413, ("MAX_UPLOAD_BYTES",)),
           "redirect-loop": ("/loop", 400, ("redirected more than",)),
           "redirect-to-file": ("/to-file", 422, ("http(s)",)),
           "stalls": ("/stalls.jpg", 503, ("timed out",))}.items()},
}


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_input_gets_a_clear_4xx_and_changes_nothing(target: Target, name: str) -> None:
    case = CASES[name](target)
    client = target.private_ok if case.private_ok else target.strict
    before = target.snapshot()
    seen = len(target.site.seen)
    resp = client.post(API + case.route, **case.kwargs)
    body = resp.json()
    assert set(body) == {"msg", "code", "data"} and body["data"] is None, body
    assert resp.status_code == case.status == body["code"], body
    for word in case.words:
        assert word in body["msg"], body["msg"]
    assert target.snapshot() == before
    if not case.private_ok:
        assert len(target.site.seen) == seen, "a refused URL reached the site"
    assert "hunter2" not in body["msg"]


def test_the_corpus_covers_the_issue(target: Target) -> None:
    """The named hostile inputs of issue 5 are all in the corpus, and good input still works."""
    assert len(CASES) >= 150
    assert len(PHOTOS) == target.snapshot()[0]
    resp = target.private_ok.post(f"{API}/search/url",
                                  json={"url": f"{target.site.base}/coffee.jpg", "limit": 1})
    assert resp.json()["data"][0]["key"] == "coffee"
    resp = target.strict.post(f"{API}/search/path",
                              json={"path": str(target.roots / "coffee.jpg"), "limit": 1})
    assert resp.json()["data"][0]["key"] == "coffee"


def test_delete_lists_take_the_forms_older_clients_send(target: Target,
                                                        photos: dict[str, bytes]) -> None:
    """Strictness stays additive: a number as key and text ids inside a list still work."""
    for body, route in (({"key": 42}, "/del/key"), ({"key": ["42", 7]}, "/del/key")):
        target.service.add(photos["rocket"], "42", "r.jpg")
        assert target.strict.post(API + route, json=body).json()["data"] == 1
    target.service.add(photos["rocket"], "42", "r.jpg")
    ids = [r.id for r in target.service.store.query('key == "42"')]
    resp = target.strict.post(f"{API}/del/id", json={"id": [str(ids[0]), 12345]})
    assert resp.json()["data"] == 1
    assert target.snapshot()[0] == len(PHOTOS)
