"""pymilvus, imported so that bogv's own ``MILVUS_URI`` cannot break it.

pymilvus reads ``MILVUS_URI`` (or ``MILVUS_DEFAULT_CONNECTION``) once, when it is first
imported, to configure the default connection of its ORM API, and raises unless the value is
``http(s)://...``. bogv never uses that connection (each ``Store`` opens its own from
``Settings.store_uri``) and documents ``MILVUS_URI`` as a Milvus Lite file path as well, so
``MILVUS_URI=/data/bogv.db bogv serve`` died before bogv's settings were read. The variables
are hidden from pymilvus for the length of its import and put back at once. Every bogv module
imports pymilvus through here, which also quiets two of its warnings (below).
"""

from __future__ import annotations

import logging
import os
import warnings

# Milvus Lite 2.5.1 imports pkg_resources (so setuptools stays under 81), whose deprecation
# warning every command printed; and it gives a query iterator no MVCC timestamp, so
# pymilvus warns that it takes the client's clock instead, at every start-up (``Service``
# reads every record's id to index its pieces): harmless for one process that owns its
# file, and noise on a person's terminal.
warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning,
                        module="milvus_lite")

_READ_AT_IMPORT = ("MILVUS_URI", "MILVUS_DEFAULT_CONNECTION")

_saved = {name: os.environ.pop(name) for name in _READ_AT_IMPORT if name in os.environ}
try:
    from pymilvus import DataType, MilvusClient, MilvusException
finally:
    os.environ.update(_saved)
logging.getLogger("pymilvus.orm.iterator").setLevel(logging.ERROR)
# What a call whose deadline passed raises: pymilvus passes gRPC's own error on, unwrapped.
from grpc import RpcError  # type: ignore[import-untyped]  # noqa: E402

__all__ = ["DataType", "MilvusClient", "MilvusException", "RpcError", "last_write_ts"]


def last_write_ts(collection: str) -> int:
    """The server timestamp of this process's latest acknowledged write to ``collection``.

    pymilvus keeps it (per process and collection name) for its own ``Session`` level; bogv
    tracks it per store instead (``bogv.session``), so it reads it right after each write.
    """
    from pymilvus.client import ts_utils

    return int(ts_utils.get_collection_ts(collection) or 0)
