"""The web page: ``/`` and its static files under ``/web``, from the package's ``bogv/web``.

Plain HTML, CSS and JavaScript, no build step and nothing from a CDN, so the page works on a
service without internet access. The page itself holds no data and needs no token; every
call it makes goes through the token-checked API.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["WEB_DIR", "mount"]

WEB_DIR = Path(__file__).resolve().parent.parent / "web"

# The page shows keys and file paths that clients chose: it renders them as text, and this
# policy keeps anything else from running even if a bug ever let markup through.
_CSP = ("default-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
        "script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


def mount(app: FastAPI) -> None:
    app.mount("/web", StaticFiles(directory=WEB_DIR), name="web")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", headers={"Content-Security-Policy": _CSP,
                                                             "Cache-Control": "no-cache"})
