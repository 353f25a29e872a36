"""Traces: W3C trace context as amtd carries it (docs/tracing.md). Pure, no pydantic.

A trace context rides from the alert to the executors' replies: an HTTP ``traceparent`` header
into ingest, the SecurityEvent's ``amtd.r6security.com/traceparent`` annotation into the matcher,
the CloudEvents distributed-tracing extensions (``traceparent``, ``tracestate``) into the
executors. Every one of them is hostile input, used for nothing but tracing: a value that is not
exactly the W3C shape, or is longer than it may be, is ignored (the span starts a new trace).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

TRACEPARENT_ANNOTATION = "amtd.r6security.com/traceparent"
TRACEPARENT = "traceparent"  # the W3C header, and the CloudEvents extension attribute
TRACESTATE = "tracestate"
TRACEPARENT_LENGTH = 55  # version 00: 2 + 1 + 32 + 1 + 16 + 1 + 2
MAX_TRACESTATE_LENGTH = 512  # W3C: a vendor may drop a longer one; we always do
MAX_TRACESTATE_MEMBERS = 32
TRACEPARENT_SHAPE = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
TRACESTATE_MEMBER = re.compile(
    r"[a-z0-9][a-z0-9_*/@-]{0,255}(?:@[a-z][a-z0-9_*/-]{0,13})?"  # key, or tenant@system
    r"=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]"
)
INVALID_TRACE_ID = "0" * 32
INVALID_SPAN_ID = "0" * 16


def read_traceparent(value: Any) -> str | None:
    """``value`` when it is a valid version-00 ``traceparent``, else None (ignored)."""
    if not isinstance(value, str) or len(value) != TRACEPARENT_LENGTH:
        return None
    shape = TRACEPARENT_SHAPE.fullmatch(value)
    if shape is None:
        return None
    version, trace_id, span_id, _ = shape.groups()
    if version != "00" or trace_id == INVALID_TRACE_ID or span_id == INVALID_SPAN_ID:
        return None
    return value


def read_tracestate(value: Any) -> str | None:
    """``value`` when it is a well-formed ``tracestate`` of bounded size, else None (ignored)."""
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TRACESTATE_LENGTH:
        return None
    members = [member.strip() for member in value.split(",") if member.strip()]
    if len(members) > MAX_TRACESTATE_MEMBERS:
        return None
    if not all(TRACESTATE_MEMBER.fullmatch(member) for member in members):
        return None
    return ",".join(members)


def read_annotated_traceparent(obj: Mapping[str, Any] | None) -> str | None:
    """The valid ``traceparent`` a SecurityEvent's annotation carries, else None."""
    metadata = obj.get("metadata") if isinstance(obj, Mapping) else None
    annotations = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    if not isinstance(annotations, Mapping):
        return None
    return read_traceparent(annotations.get(TRACEPARENT_ANNOTATION))


def make_trace_annotations(traceparent: str | None) -> dict[str, str]:
    """The annotation carrying ``traceparent`` to the matcher; none without a valid one."""
    valid = read_traceparent(traceparent)
    return {TRACEPARENT_ANNOTATION: valid} if valid else {}
