"""Spans the local stack collects: a loopback OTLP/HTTP collector and the spans it decodes.

``make demo`` runs a :class:`TraceCollector`, turns every function's tracing on towards it
(:func:`tracing_env`) and prints one alert's trace (:func:`render_trace`); the tracing tests read
the same spans. Decoded with opentelemetry-proto (docs/tracing.md lists the spans).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from amtd_stack.running.receivers import LoopbackReceiver, Received, Reply

TRACES_PATH = "/v1/traces"
PROTOBUF = "application/x-protobuf"
INDENT = "  "
EMPTY_RESPONSE = ExportTraceServiceResponse().SerializeToString()


@dataclass(frozen=True)
class ReceivedSpan:
    """One exported span: ids as hex, its service and attributes as Python values."""

    name: str
    service: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    attributes: dict[str, Any]
    status_code: int
    start_time_unix_nano: int
    end_time_unix_nano: int

    @property
    def ids(self) -> str:
        """Its trace and span ids as a traceparent spells them (flags are not exported)."""
        return f"{self.trace_id}-{self.span_id}"

    @property
    def duration_ms(self) -> float:
        """How long it took, in milliseconds (0 if its end is not after its start)."""
        return max(self.end_time_unix_nano - self.start_time_unix_nano, 0) / 1e6


def read_ids(traceparent: str) -> str:
    """The trace and span ids of a traceparent, as :attr:`ReceivedSpan.ids`."""
    return traceparent[3:52]


def read_value(value: Any) -> Any:
    """An OTLP AnyValue as a Python value (arrays as lists)."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [read_value(item) for item in value.array_value.values]
    return getattr(value, kind) if kind else None


def read_spans(body: bytes) -> list[ReceivedSpan]:
    """Every span of one ExportTraceServiceRequest (raises DecodeError if it is not one)."""
    request = ExportTraceServiceRequest.FromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        resource = {item.key: read_value(item.value) for item in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                attributes = {item.key: read_value(item.value) for item in span.attributes}
                spans.append(ReceivedSpan(
                    span.name, str(resource.get("service.name", "")), span.trace_id.hex(),
                    span.span_id.hex(), span.parent_span_id.hex(), span.kind, attributes,
                    span.status.code, span.start_time_unix_nano, span.end_time_unix_nano,
                ))  # fmt: skip
    return spans


class TraceCollector(LoopbackReceiver):
    """A loopback OTLP/HTTP traces endpoint keeping every span exported to it; its ``url`` is
    an ``OTEL_EXPORTER_OTLP_ENDPOINT``."""

    def __init__(self) -> None:
        super().__init__()
        self._spans: list[ReceivedSpan] = []
        self._lock = threading.Lock()

    def accept(self, received: Received) -> Reply:
        """Keep the spans of an export (200 with an empty ExportTraceServiceResponse)."""
        if received.path != TRACES_PATH:
            return Reply(404)
        try:
            spans = read_spans(received.body)
        except DecodeError:
            return Reply(400)
        with self._lock:
            self._spans.extend(spans)
        return Reply(200, {"Content-Type": PROTOBUF}, EMPTY_RESPONSE)

    def spans(self) -> list[ReceivedSpan]:
        """Every span received so far."""
        with self._lock:
            return list(self._spans)

    def spans_of(self, trace_id: str) -> list[ReceivedSpan]:
        """The spans received so far of one trace."""
        return [span for span in self.spans() if span.trace_id == trace_id]


def tracing_env(endpoint: str, delay_ms: int = 50) -> dict[str, str]:
    """The environment turning a function's tracing on towards the OTLP/HTTP ``endpoint``,
    exported every ``delay_ms`` (the SDK's 5 s would keep a reader waiting)."""
    return {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": str(delay_ms),
    }


def arrange_spans(spans: Sequence[ReceivedSpan]) -> list[tuple[int, ReceivedSpan]]:
    """The spans depth first with their depth: each after its parent (by span ids), siblings by
    start time; a span whose parent is not among them counts as a root."""
    known = {span.span_id for span in spans}
    children: dict[str, list[ReceivedSpan]] = {}
    for span in sorted(spans, key=lambda span: (span.start_time_unix_nano, span.name)):
        parent = span.parent_span_id if span.parent_span_id in known else ""
        children.setdefault(parent, []).append(span)
    arranged: list[tuple[int, ReceivedSpan]] = []
    expanded: set[str] = set()  # each id's children once, whatever the ids say

    def visit(parent: str, depth: int) -> None:
        if parent in expanded:
            return
        expanded.add(parent)
        for span in children.get(parent, []):
            arranged.append((depth, span))
            visit(span.span_id, depth + 1)

    visit("", 0)
    return arranged


def render_trace(spans: Sequence[ReceivedSpan]) -> list[str]:
    """One trace as an indented tree, a line a span: name, service, duration (pure)."""
    known = {span.span_id for span in spans} | {""}
    rows = [(INDENT * depth + span.name, span) for depth, span in arrange_spans(spans)]
    name_width = max((len(label) for label, _ in rows), default=0) + 3
    service_width = max((len(span.service) for _, span in rows), default=0) + 2
    took = [f"{span.duration_ms:.1f}" for _, span in rows]
    took_width = max(map(len, took), default=0)
    return [
        f"{label:<{name_width}}{span.service:<{service_width}}{ms:>{took_width}} ms"
        + ("" if span.parent_span_id in known else " (parent not received)")
        for (label, span), ms in zip(rows, took, strict=True)
    ]
