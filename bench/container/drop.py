"""Drop a bogv collection and its aliases from a Milvus server (``container.sh``'s cleanup).

bogv names its collection `<COLLECTION>__<model>` and points the alias `<COLLECTION>` at it,
so both go. Usage: python drop.py MILVUS_URI COLLECTION
"""

import sys

from pymilvus import MilvusClient

uri, name = sys.argv[1:3]
client = MilvusClient(uri=uri)
for collection in client.list_collections():
    if collection == name or collection.startswith(f"{name}__"):
        for alias in client.list_aliases(collection_name=collection)["aliases"]:
            client.drop_alias(alias)
        client.drop_collection(collection)
        print(f"dropped {collection}")
