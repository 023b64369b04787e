"""Logging for zkq processes: one line per event, as text or JSON (``--log-format``).

Events about a job pass ``extra={"job_id": ..., "worker_id": ..., "type": ...}``; both
formats carry those fields, so ``grep job=<id>`` (or a JSON query) follows one job across
the coordinator's and the workers' logs.
"""

from __future__ import annotations

import json
import logging
import sys
import time

#: record attributes that name what an event is about, in the order they are shown
CONTEXT_FIELDS = ("job_id", "worker_id", "type")


def _context(record: logging.LogRecord) -> dict[str, str]:
    return {k: str(getattr(record, k)) for k in CONTEXT_FIELDS if getattr(record, k, None)}


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = _context(record)
        if context:
            # keep a traceback, if any, after the context on the event's own line
            head, sep, rest = line.partition("\n")
            fields = " ".join(f"{k.removesuffix('_id')}={v}" for k, v in context.items())
            line = f"{head} {fields}{sep}{rest}"
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, str] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **_context(record),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup(level: str = "info", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # kazoo narrates every reconnection attempt at INFO; its warnings are what matter,
    # except to someone asking for debug, who gets its narration too
    debug = root.level <= logging.DEBUG
    logging.getLogger("kazoo").setLevel(root.level if debug else max(logging.WARNING, root.level))
