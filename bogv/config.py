"""Settings from the environment.

The seed service's variable names (``API_PORT``, ``TOKEN``, ``MILVUS_*``, ``IMAGE_*``) keep
working unprefixed; bogv's own settings use the same flat style so one ``env`` file serves
both. ``MILVUS_URI`` wins over ``MILVUS_HOST``/``MILVUS_PORT``; with neither, the store is an
embedded Milvus Lite file under ``DATA_DIR``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "is_server"]


def is_server(uri: str) -> bool:
    """The one test of which Milvus a URI means: ``http://host:19530`` (any scheme) is a
    server or cluster, anything else a Milvus Lite file."""
    return "://" in uri


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore",
                                      populate_by_name=True)

    api_host: str = Field("0.0.0.0", description="Interface the HTTP server binds to.")
    api_port: int = Field(7000, description="HTTP port (seed: API_PORT).")
    token: SecretStr = Field(SecretStr(""), description="When set, every API call needs header "
                             "`token: <TOKEN>` (or `Authorization: Bearer <TOKEN>`).")

    data_dir: Path = Field(Path("data"), description="Where the Milvus Lite file and the "
                           "converted model live.")
    model_dir: Path | None = Field(None, description="Where the converted model is cached "
                                   "(the Docker image bakes it in). Default: DATA_DIR/models.")
    milvus_uri: str = Field("", description="Milvus Lite file path, or http://host:19530 for a "
                            "server; wins over MILVUS_HOST. Default: DATA_DIR/bogv.db.")
    milvus_host: str = Field("", description="Milvus server host (seed); unset means embedded.")
    milvus_port: int = Field(19530, description="Milvus server port (seed).")
    milvus_user: str = Field("", description="Milvus user.")
    milvus_password: SecretStr = Field(SecretStr(""), description="Milvus password.")
    milvus_host_token: SecretStr = Field(SecretStr(""), description="Milvus token (seed name).")
    milvus_db_name: str = Field("", description="Milvus database (servers only).")
    milvus_timeout: int = Field(30, ge=0, description="Seconds a read or write on a Milvus "
                                "server may take before its request fails with 503 (0: no "
                                "limit): a stalled server or network would hold the request, "
                                "and its worker, for ever. Milvus Lite, a local process, has "
                                "none: a large batch search there may take longer.")
    record_dir: Path | None = Field(None, description="Where each record's thumbnail and "
                                    "keypoints are kept (shared by API replicas). Default: "
                                    "DATA_DIR/records.")
    collection: str = Field("images", description="Milvus collection name.")
    index_type: str = Field("", description="Vector index for new collections. Default: "
                            "IVF_FLAT on Milvus Lite (which builds only FLAT, IVF_FLAT, "
                            "AUTOINDEX), HNSW on a server (also FLAT, IVF_FLAT, IVF_SQ8, "
                            "AUTOINDEX).")
    index_nlist: int = Field(1024, ge=1, description="IVF clusters per segment (servers; "
                             "Milvus Lite 2.5.1 ignores it).")
    search_nprobe: int = Field(64, ge=1, description="IVF clusters probed per search "
                               "(servers; Milvus Lite 2.5.1 ignores it).")
    search_consistency: Literal["Session", "Strong", "Bounded", "Eventually"] = Field(
        "Session", description="Milvus consistency of searches on a server. Session: a "
        "replica sees its own adds and deletes in its next search, and those of other "
        "replicas within ~0.4 s (at most 5 s, Milvus's common.gracefulTime), without waiting "
        "on each search; Strong: every search waits for the server's next time tick "
        "(~0.2-0.6 s) to see every replica's writes. Lite answers at once either way.")
    hnsw_m: int = Field(16, ge=2, le=2048, description="HNSW links per node (memory vs recall).")
    hnsw_ef_construction: int = Field(200, ge=1, description="HNSW build breadth.")
    search_ef: int = Field(128, ge=1, description="HNSW search breadth (raised to `limit` "
                           "when a search asks for more hits).")

    image_inc_path: Path | None = Field(None, description="Incoming folder imported at start-up; "
                                        "indexed files move to IMAGE_POOL_PATH.")
    image_pool_path: Path | None = Field(None, description="Where imported images are moved to.")
    import_lease_ttl: float = Field(60.0, gt=0, description="Seconds without a heartbeat "
                                    "after which a dead replica's start-up import lease "
                                    "(a file in IMAGE_INC_PATH) is taken over.")
    image_cache_path: Path = Field(Path("image_cache_path"), description="Scratch folder (seed).")
    image_allowed_roots: str = Field("", description="Comma-separated folders /add/path and "
                                     "/search/path may read. Default: the import folders.")

    max_upload_bytes: int = Field(50 * 1024 * 1024, ge=1, description="Largest image accepted.")
    max_pixels: int = Field(80_000_000, ge=1, le=178_000_000,
                            description="Largest decoded image, in pixels.")
    max_frames: int = Field(1000, ge=1, description="Most frames (GIF, APNG, WebP, TIFF "
                            "pages) an image may have; only the first is used.")
    url_timeout: float = Field(10.0, gt=0, description="Seconds to connect / read a URL.")
    url_total_timeout: float = Field(30.0, gt=0, description="Seconds a whole URL fetch "
                                     "(redirects and body) may take.")
    url_max_redirects: int = Field(3, ge=0, description="Redirects followed per URL fetch.")
    url_fetches: int = Field(16, ge=1, description="URL downloads the API runs at once. They "
                             "wait on remote hosts, not the CPU, so they have a bound of their "
                             "own: slow sites never hold the WORKERS that decode, search and "
                             "answer /readyz.")
    url_allow_private: bool = Field(False, description="Allow URLs on loopback/private networks.")
    max_limit: int = Field(1000, ge=1, description="Largest `limit` a search accepts.")

    workers: int = Field(max(os.cpu_count() or 1, 1), ge=1, description="Threads for decoding "
                         "and inference in the API and in `bogv import`.")
    intra_op_threads: int = Field(0, ge=0, description="onnxruntime threads per inference "
                                  "(0: all cores; in `bogv import`, cores / WORKERS).")
    precision: Literal["fp32", "int8"] = Field("fp32", description="The graph that embeds: "
                                               "`fp32` gives the same vectors on every CPU; "
                                               "`int8` (~2x less inference CPU, vectors at "
                                               "cosine 0.991 to FP32's, its own model id) "
                                               "starts only on x86 CPUs with VNNI.")
    batch_size: int = Field(4, ge=1, description="Images per inference batch during import "
                            "(small batches keep activations in the CPU cache).")
    log_level: str = Field("info", description="Logging level.")
    log_format: Literal["text", "json"] = Field("text", description="`json`: one JSON object "
                                                "per log line, for log collectors.")

    @property
    def model_cache(self) -> Path:
        return self.model_dir or Path(self.data_dir) / "models"

    @property
    def store_uri(self) -> str:
        if self.milvus_uri:
            return self.milvus_uri
        if self.milvus_host:
            return f"http://{self.milvus_host}:{self.milvus_port}"
        return str(self.data_dir / "bogv.db")

    @property
    def record_path(self) -> Path:
        return self.record_dir if self.record_dir is not None else self.data_dir / "records"

    @property
    def store_token(self) -> str:
        if self.milvus_host_token.get_secret_value():
            return self.milvus_host_token.get_secret_value()
        if self.milvus_user:
            return f"{self.milvus_user}:{self.milvus_password.get_secret_value()}"
        return ""

    @property
    def allowed_roots(self) -> list[Path]:
        if self.image_allowed_roots.strip():
            return [Path(p.strip()) for p in self.image_allowed_roots.split(",") if p.strip()]
        return [p for p in (self.image_inc_path, self.image_pool_path) if p is not None]

    @property
    def is_embedded(self) -> bool:
        return not is_server(self.store_uri)

    def describe(self) -> list[tuple[str, str, str]]:
        """(ENV NAME, current value with secrets redacted, help) for every setting."""
        rows = []
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            shown = "***" if isinstance(value, SecretStr) and value.get_secret_value() else (
                "" if isinstance(value, SecretStr) else str(value if value is not None else ""))
            rows.append((name.upper(), shown, field.description or ""))
        return rows
