"""API errors: what a Kubernetes API server's refusals mean to a caller. Pure.

An answer that is not a success becomes one of a small hierarchy, so callers can tell "already
gone" (NotFoundError), "already there / changed underneath" (ConflictError), "can never work"
(InvalidError) and "try again" (TransientError) apart without knowing the client's exceptions.
:mod:`amtd.kube.api` raises them; nothing here talks to the API server.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})


class ApiError(Exception):
    """An answer from the API server that is not a success."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class NotFoundError(ApiError):
    """404: the object (or its namespace, or its kind) does not exist."""


class ConflictError(ApiError):
    """409: AlreadyExists on create, or a stale resourceVersion / uid precondition."""


class InvalidError(ApiError):
    """400/403/422: the request can never succeed as it is."""


class TransientError(ApiError):
    """5xx, 429 or no answer at all: worth retrying later (``retry_after_s``: when the server
    said so in a Retry-After header)."""

    def __init__(
        self, status: int, reason: str, message: str, retry_after_s: float | None = None
    ) -> None:
        super().__init__(status, reason, message)
        self.retry_after_s = retry_after_s


def translate_error(
    status: int, reason: str, body: Any, retry_after: str | None = None
) -> ApiError:
    """Map an HTTP error answer (and its Retry-After header) to its :class:`ApiError`."""
    message = read_status_message(body) or reason
    if status == 404:
        return NotFoundError(status, "NotFound", message)
    if status == 409:
        return ConflictError(status, "Conflict", message)
    if status in RETRIED_STATUSES or status == 0:
        wait = read_retry_after(retry_after)
        return TransientError(status, reason or "Unavailable", message, wait)
    return InvalidError(status, reason or "Invalid", message)


def read_retry_after(header: str | None) -> float | None:
    """Seconds from a Retry-After header in seconds (what the API server sends), else None."""
    text = (header or "").strip()
    return float(text) if text.isdigit() else None


def read_status_message(body: Any) -> str:
    """The ``message`` of a Kubernetes Status body, when there is one."""
    try:
        decoded = json.loads(body) if body else {}
    except (TypeError, ValueError):
        return str(body or "")[:300]
    if not isinstance(decoded, dict):
        return ""
    message = str(decoded.get("message", ""))
    # an eviction's 429 names its PodDisruptionBudget only in a cause: keep what adds to it
    extra = [text for text in read_cause_messages(decoded) if text not in message]
    return "; ".join([message, *extra])


def read_cause_messages(status: Mapping[str, Any]) -> list[str]:
    """The messages of a Status's ``details.causes`` (whatever shape a server sends)."""
    details = status.get("details")
    causes = details.get("causes") if isinstance(details, dict) else None
    if not isinstance(causes, list):
        return []
    return [str(c["message"]) for c in causes if isinstance(c, dict) and c.get("message")]
