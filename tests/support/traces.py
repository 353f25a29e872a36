"""A local OTLP/HTTP trace receiver: what the functions export, decoded with opentelemetry-proto.

:func:`run_trace_receiver` yields a :class:`TraceReceiver` whose ``url`` is an
``OTEL_EXPORTER_OTLP_ENDPOINT``; :func:`tracing_env` is the environment that turns a function's
tracing on towards it (exported quickly, so a test waits briefly).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from support.receivers import Answer, Receiver, Recorded
from support.waiting import wait_until

TRACES_PATH = "/v1/traces"


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

    @property
    def ids(self) -> str:
        """Its trace and span ids as a traceparent spells them (flags are not exported)."""
        return f"{self.trace_id}-{self.span_id}"


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
    """Every span of one ExportTraceServiceRequest."""
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
                    span.status.code,
                ))  # fmt: skip
    return spans


class TraceReceiver(Receiver):
    """A loopback OTLP/HTTP endpoint keeping every span exported to it."""

    def __init__(self) -> None:
        super().__init__(self._accept)

    def _accept(self, recorded: Recorded, number: int) -> Answer:
        if recorded.path != TRACES_PATH:
            return Answer(404)
        body = ExportTraceServiceResponse().SerializeToString()
        return Answer(200, {"Content-Type": "application/x-protobuf"}, body)

    def spans(self) -> list[ReceivedSpan]:
        """Every span received so far."""
        bodies = [item.body for item in list(self.requests) if item.path == TRACES_PATH]
        return [span for body in bodies for span in read_spans(body)]

    def wait_for_spans(
        self, name: str, count: int = 1, deadline_s: float = 15.0
    ) -> list[ReceivedSpan]:
        """The spans named ``name`` once there are ``count`` of them (fewer after the deadline)."""
        wait_until(lambda: len(self.named(name)) >= count, deadline_s)
        return self.named(name)

    def named(self, name: str) -> list[ReceivedSpan]:
        """The spans named ``name`` received so far."""
        return [span for span in self.spans() if span.name == name]


@contextlib.contextmanager
def run_trace_receiver() -> Iterator[TraceReceiver]:
    """A fresh :class:`TraceReceiver`, stopped when the block ends."""
    receiver = TraceReceiver()
    try:
        yield receiver
    finally:
        receiver.stop()


def tracing_env(receiver: TraceReceiver) -> dict[str, str]:
    """The environment turning a function's tracing on, exporting to ``receiver`` at once."""
    return {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_BSP_SCHEDULE_DELAY": "50",
    }
