"""Logs: every function logs JSON lines, one object per record, on stderr.

Knative and Kubernetes log collectors parse a JSON object per line. Log messages quote hostile
input (alert fields, event ids, pod names): as JSON, a newline, an ANSI escape or a bidi override
in them is escaped (the output is ASCII), so no input can forge a log line or repaint a terminal.
``configure_logging`` is the one configuration every ``functions/*/main.py`` calls.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

# What every LogRecord carries; anything else on a record came in through ``extra=``.
STANDARD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonLineFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", ...extras, "exception"?}`` on one ASCII line."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one JSON object; extras that are not JSON are written as text."""
        entry: dict[str, Any] = {
            "time": format_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(
            (key, value) for key, value in vars(record).items()
            if key not in STANDARD_ATTRIBUTES and key not in entry
        )  # fmt: skip
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=True, default=str)


def format_time(created: float) -> str:
    """RFC 3339 UTC with milliseconds, as collectors expect."""
    moment = datetime.fromtimestamp(created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def configure_logging(env: Mapping[str, str]) -> None:
    """JSON lines on stderr at ``LOG_LEVEL`` (default INFO), unless logging is set up already
    (as ``logging.basicConfig`` does: a test runner's capture stays in place)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLineFormatter())
    logging.basicConfig(level=env.get("LOG_LEVEL", "INFO"), handlers=[handler])
