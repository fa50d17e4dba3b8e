"""A small HTTP client for a running bogv, used by the CLI when a service owns the store.

Milvus Lite lets one process own a data file, so while ``bogv serve`` runs, ``bogv import``
and friends talk to it over HTTP instead of opening the file themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from bogv.errors import BackendUnavailable, error_for_status
from bogv.results import Hit

__all__ = ["Client"]


class Client:
    def __init__(self, base_url: str, token: str = "", *, timeout: float = 60.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        headers = {"token": token} if token else {}
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(base_url=f"{self.base_url}/api/image/sim", headers=headers,
                                 timeout=timeout, transport=transport)

    def close(self) -> None:
        self.http.close()

    def _send(self, path: str, **kwargs: Any) -> httpx.Response:
        """The response of a successful call; failures raise the matching ``BogvError``."""
        try:
            resp = self.http.post(path, **kwargs) if path != "/stats" else self.http.get(path)
        except httpx.HTTPError as exc:
            raise BackendUnavailable(f"bogv at {self.base_url} is unreachable: {exc}") from exc
        try:
            body = resp.json()
        except ValueError:
            body = {"msg": resp.text[:200], "code": resp.status_code}
        if resp.status_code != 200 or body.get("code") != 200:
            raise error_for_status(resp.status_code, f"{body.get('msg')} (from {self.base_url})")
        return resp

    def _call(self, path: str, **kwargs: Any) -> Any:
        return self._send(path, **kwargs).json()["data"]

    def add_file(self, path: Path, key: str | None = None, img_path: str | None = None) -> bool:
        """Upload ``path``; False when the service already held these bytes under this key.

        The upload's name is taken from ``img_path`` when given, since a file name that is
        not UTF-8 cannot be sent as it is."""
        form = {k: v for k, v in (("key", key), ("imgPath", img_path)) if v}
        with path.open("rb") as f:
            name = Path(img_path).name if img_path else path.name
            resp = self._send("/add/file", files={"file": (name, f)}, data=form)
        created: str = resp.headers.get("X-Bogv-Created", "true")  # older bogv: unknown
        return created != "false"

    def search_file(self, path: Path, limit: int, min_score: float = 0.0) -> list[Hit]:
        with path.open("rb") as f:
            data = self._call("/search/file", files={"file": (path.name, f)},
                              data={"limit": str(limit), "min_score": str(min_score)})
        return [Hit(h["id"], h["key"], h["filepath"], h["score"], h.get("match", "similar"))
                for h in data]

    def delete_ids(self, ids: list[int]) -> int:
        return int(self._call("/del/id", json={"id": ",".join(map(str, ids))}))

    def delete_keys(self, keys: list[str]) -> int:
        return int(self._call("/del/key", json={"key": ",".join(keys)}))

    def stats(self) -> dict[str, Any]:
        data: dict[str, Any] = self._call("/stats")
        return data
