"""Logging for ``bogv serve``: plain text lines, or one JSON object per line (``LOG_FORMAT``).

Uvicorn's own loggers and Python warnings are routed through the same handler, and
uvicorn's access log is replaced by bogv's request log (``bogv.access``: method, path,
status, duration), so every line of a running service has one shape.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

__all__ = ["JsonFormatter", "configure"]

_TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "color_message"}  # uvicorn's copy of msg with terminal colours


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "msg", ...extra fields, "exc"?}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update((k, v) for k, v in vars(record).items() if k not in _STANDARD)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(level: str, fmt: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(_TEXT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # library warnings become log lines in the same format
    # Libraries that bring handlers of their own (pymilvus: three loggers) log through ours.
    for name in ["uvicorn", "uvicorn.error", "uvicorn.access", "pymilvus",
                 *(n for n in logging.Logger.manager.loggerDict if n.startswith("pymilvus."))]:
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
