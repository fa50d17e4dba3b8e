"""What a record's text fields may hold: each limit defined once, for the API, the CLI and
the store.

The documented limits count characters. A Milvus server counts a VARCHAR's ``max_length`` in
UTF-8 bytes (up to 4 a character), so new collections size their fields at ``UTF8_BYTES``
times the limit and every value within the limit fits on every backend. Collections made
before that keep their sizes (64 and 512 bytes): the store reads them back
(``Store.text_bytes``) and a value over them is refused as input, naming the field, instead
of failing the insert. Milvus Lite 2.5.1 enforces no length at all.
"""

from __future__ import annotations

from bogv.errors import InvalidParameter

__all__ = ["MAX_FILEPATH", "MAX_KEY", "UTF8_BYTES", "check_filepath", "check_key"]

MAX_KEY = 64
"""Characters of a record's key."""
MAX_FILEPATH = 512
"""Characters of a record's filepath (the API's ``imgPath``)."""
UTF8_BYTES = 4
"""Most bytes one character takes in UTF-8."""


def _check_length(value: str, field: str, max_chars: int, what: str = "") -> None:
    if len(value) > max_chars:
        raise InvalidParameter(f"{field} is {len(value)} characters, over {max_chars}{what}",
                               field=field)


def _check_text(value: str, field: str, max_bytes: int | None, what: str = "") -> str:
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate is valid in JSON, not in UTF-8, which Milvus stores.
        raise InvalidParameter(f"{field} is not valid Unicode text", field=field) from None
    if max_bytes is not None and len(encoded) > max_bytes:
        raise InvalidParameter(f"{field} is {len(encoded)} bytes in UTF-8, over the "
                               f"{max_bytes} bytes this collection was made with{what}",
                               field=field)
    return value


def check_key(key: str, max_bytes: int | None = None) -> str:
    """``max_bytes``: the collection's own size when it is smaller than the limit needs."""
    _check_length(key, "key", MAX_KEY)
    if any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise InvalidParameter("key contains control characters", field="key")
    return _check_text(key, "key", max_bytes)


def check_filepath(filepath: str, field: str = "imgPath", max_bytes: int | None = None) -> str:
    """``field`` names where the stored filepath came from (imgPath, or the URL it defaults
    to)."""
    what = " (the stored filepath)"
    _check_length(filepath, field, MAX_FILEPATH, what)
    return _check_text(filepath, field, max_bytes, what)
