"""Timestamps: times as Kubernetes writes and reads them (RFC 3339, UTC, ``Z``). Pure but for now.

One format everywhere the core writes a time (decisions, executions, Events, annotations), so
times compare as text and read back the same; :func:`format_now` is the only clock read here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

KUBERNETES_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC to the second, with a ``Z`` (as Kubernetes writes timestamps)."""
    return moment.astimezone(UTC).strftime(KUBERNETES_TIME_FORMAT)


def format_unix_time(seconds: float) -> str:
    """:func:`format_time` of a Unix time (whole seconds)."""
    return format_time(datetime.fromtimestamp(int(seconds), UTC))


def format_now() -> str:
    """:func:`format_time` of the time now."""
    return format_time(datetime.now(UTC))


def parse_time(text: Any) -> datetime | None:
    """An RFC 3339 timestamp (``2025-03-14T09:12:44Z``), or None when missing or malformed."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
