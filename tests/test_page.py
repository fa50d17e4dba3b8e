"""The page's static files, as the app serves them (the browser test drives the page itself)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from bogv.api.page import WEB_DIR


def test_page_and_assets_are_served_without_a_token_or_cdn(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    refs = re.findall(r'(?:src|href)="(?!data:)([^"]+)"', page.text)
    assert set(refs) == {"web/style.css", "web/app.js"}  # relative: works under a path prefix
    for ref, kind in (("web/app.js", "javascript"), ("web/style.css", "text/css")):
        resp = client.get(f"/{ref}")
        assert resp.status_code == 200 and kind in resp.headers["content-type"]
    for path in WEB_DIR.iterdir():  # nothing is fetched from another origin
        assert not re.search(r"(?:url\(|import |fetch\()\s*['\"]?https?:", path.read_text())
    assert client.get("/web/missing.js").status_code == 404
