"""Which physical Milvus collection a collection name (``COLLECTION``) stands for.

A model migration (``bogv reembed``) fills a second collection beside the first and then
moves the name over in one step, so searches never see a half-built index. On a Milvus
server the name is a Milvus alias: bogv creates its collections as ``<name>__<model>`` with
the alias ``<name>`` pointing at it, and ``alter_alias`` is the switch. Milvus Lite 2.5.1
answers UNIMPLEMENTED to every alias call (and to rename), and a Lite file has one owning
process anyway, so for Lite the same table is a small JSON file beside the data file,
replaced atomically. Callers translate pymilvus errors (``store._milvus_errors``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from bogv._pymilvus import MilvusClient, MilvusException
from bogv.config import is_server

__all__ = ["physical_name", "point", "resolve"]


def physical_name(name: str, model_id: str) -> str:
    """``images__efficientnet_lite0_<hash>``: readable, unique per model, a legal name."""
    slug = re.sub(r"[^0-9A-Za-z]+", "_", model_id.split(":")[0]).strip("_")[:40]
    return f"{name}__{slug}_{hashlib.sha256(model_id.encode()).hexdigest()[:10]}"


def _alias_file(uri: str) -> Path:
    path = Path(uri)
    return path.with_name(f"{path.name}.aliases.json")


def _lite_aliases(uri: str) -> dict[str, str]:
    try:
        table: dict[str, str] = json.loads(_alias_file(uri).read_text())
    except FileNotFoundError:
        return {}
    return table


def _server_alias(client: MilvusClient, name: str) -> str | None:
    try:
        target: str = client.describe_alias(name)["collection_name"]
    except MilvusException:  # "alias not found" is the normal answer for a plain name
        return None
    return target


def resolve(client: MilvusClient, uri: str, name: str) -> str | None:
    """The collection ``name`` means now, or None when there is none yet."""
    target = (_server_alias(client, name) if is_server(uri)
              else _lite_aliases(uri).get(name))
    if target and client.has_collection(target):
        return target
    return name if client.has_collection(name) else None


def point(client: MilvusClient, uri: str, name: str, target: str) -> None:
    """Make ``name`` mean ``target`` from now on (one atomic step for readers)."""
    if not is_server(uri):
        table = _lite_aliases(uri) | {name: target}
        tmp = _alias_file(uri).with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(table, indent=1))
        tmp.replace(_alias_file(uri))
        return
    if _server_alias(client, name) is not None:
        client.alter_alias(target, name)
        return
    if client.has_collection(name):
        # A plain collection holds the name (made before aliases were used): it moves to a
        # physical name of its own, then the alias takes the name.
        stamp = client.describe_collection(name).get("description", "") or "unknown"
        client.rename_collection(name, physical_name(name, stamp))
    client.create_alias(target, name)
