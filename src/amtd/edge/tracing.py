"""Tracing: OpenTelemetry spans along the alert path, off unless ``OTEL_TRACES_EXPORTER`` asks.

The one module that imports OpenTelemetry, and only once tracing is on: off (the default, or
``none``) a span is a no-op and the SDK is never loaded, so the functions' cold start does not
pay for it. On (``otlp``, ``console``, or both comma-separated) the SDK is configured by the
standard variables — ``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``
(OTLP/HTTP protobuf), ``OTEL_SERVICE_NAME`` (default: the function's name),
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_BSP_*`` — when the first span starts (after gunicorn forks
its workers, whose export threads would not survive a fork). Spans are exported in the
background; a collector that is down costs a log line, never an answer.

Trace context comes in as hostile input (:mod:`amtd.model.traces` validates it): an invalid one
is ignored and the span starts a new trace. docs/tracing.md lists the spans and attributes.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from amtd.model.traces import (
    TRACEPARENT,
    TRACESTATE,
    make_trace_annotations,
    read_annotated_traceparent,
    read_traceparent,
    read_tracestate,
)

logger = logging.getLogger(__name__)

EXPORTER_ENV = "OTEL_TRACES_EXPORTER"
DISABLED_ENV = "OTEL_SDK_DISABLED"
FALLBACK_SERVICE_ENV = "K_SERVICE"  # Knative's name of the Service: the function's name
EXPORTERS = ("otlp", "console")
TRACER_NAME = "amtd"
AttributeValue = str | bool | int | float | Sequence[str]


class SpanLike(Protocol):
    """What the code does with a span: note what happened."""

    def set_attribute(self, key: str, value: AttributeValue) -> None: ...


class NoSpan:
    """The span when tracing is off: notes nothing."""

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        """Nothing to note."""


@dataclass(frozen=True)
class Parent:
    """A span's remote parent: a valid ``traceparent`` (None: a new trace) and its tracestate."""

    traceparent: str | None = None
    tracestate: str | None = None


@dataclass
class Settings:
    """This process's tracing: which exporters (none: off), for which function; its tracer."""

    exporters: tuple[str, ...] = ()
    function: str = "amtd"
    tracer: Any = None


SETTINGS = Settings()
_LOCK = threading.Lock()


def read_exporters(env: Mapping[str, str]) -> tuple[str, ...]:
    """The exporters ``OTEL_TRACES_EXPORTER`` names (unknown ones logged and dropped)."""
    if env.get(DISABLED_ENV, "").strip().lower() == "true":
        return ()
    names = [name.strip().lower() for name in env.get(EXPORTER_ENV, "").split(",")]
    unknown = [name for name in names if name and name not in (*EXPORTERS, "none")]
    if unknown:
        logger.error("%s: unsupported exporter(s) %s: not traced", EXPORTER_ENV, ",".join(unknown))
    return tuple(name for name in EXPORTERS if name in names)


def start_tracing(service: str, env: Mapping[str, str]) -> None:
    """At a function's start: read the settings (nothing is imported or started yet)."""
    SETTINGS.exporters = read_exporters(env)
    SETTINGS.function = service or env.get(FALLBACK_SERVICE_ENV, "") or "amtd"
    SETTINGS.tracer = None


def function_name() -> str:
    """The function this process serves (the spans' default service name)."""
    return SETTINGS.function


def is_tracing() -> bool:
    """Whether spans are recorded in this process."""
    return bool(SETTINGS.exporters)


def get_tracer() -> Any:
    """The tracer, its provider made on first use (imports the SDK: only when tracing is on)."""
    with _LOCK:
        if SETTINGS.tracer is None:
            SETTINGS.tracer = make_provider(SETTINGS.exporters, SETTINGS.function).get_tracer(
                TRACER_NAME
            )
        return SETTINGS.tracer


def make_provider(exporters: Sequence[str], service: str) -> Any:
    """A TracerProvider exporting in the background to ``exporters``, flushed at exit."""
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    resource = Resource.create()  # OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: service}))
    provider = TracerProvider(resource=resource)
    if "otlp" in exporters:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if "console" in exporters:
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    atexit.register(provider.shutdown)
    return provider


@contextlib.contextmanager
def trace_span(
    name: str, parent: Parent | None = None, attributes: Mapping[str, AttributeValue] | None = None,
    kind: str = "INTERNAL",
) -> Iterator[SpanLike]:  # fmt: skip
    """A span around the block, child of ``parent`` (or of the current span); a no-op when off.
    ``kind``: an OpenTelemetry SpanKind's name. An exception leaving the block sets the span's
    status to error and ``error.type`` to its class, and is re-raised."""
    if not is_tracing():
        yield NoSpan()
        return
    from opentelemetry.trace import SpanKind

    tracer = get_tracer()
    context = extract_context(parent) if parent is not None else None
    with tracer.start_as_current_span(
        name, context=context, kind=SpanKind[kind], attributes=attributes, record_exception=False
    ) as span:
        try:
            yield span
        except Exception as error:  # its class only: a message may quote hostile input
            span.set_attribute("error.type", type(error).__name__)
            raise


def extract_context(parent: Parent) -> Any:
    """The OpenTelemetry context of a remote parent (an empty one starts a new trace)."""
    from opentelemetry.context import Context
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    if parent.traceparent is None:
        return Context()
    carrier = {TRACEPARENT: parent.traceparent}
    if parent.tracestate is not None:
        carrier[TRACESTATE] = parent.tracestate
    return TraceContextTextMapPropagator().extract(carrier, context=Context())


def read_parent(carrier: Mapping[str, Any]) -> Parent:
    """The parent named by ``traceparent``/``tracestate`` keys (HTTP headers, CloudEvent
    attributes); a new trace when they are absent or invalid."""
    traceparent = read_traceparent(carrier.get(TRACEPARENT))
    tracestate = read_tracestate(carrier.get(TRACESTATE)) if traceparent else None
    return Parent(traceparent, tracestate)


def read_request_parent(headers: Mapping[str, str]) -> Parent:
    """The parent an HTTP request names: its W3C ``traceparent`` header (a collector's or a
    proxy's), else a binary-mode CloudEvent's ``ce-traceparent`` extension."""
    lowered = {key.lower(): value for key, value in headers.items()}
    parent = read_parent(lowered)
    if parent.traceparent is None:
        parent = read_parent({TRACEPARENT: lowered.get("ce-traceparent"),
                              TRACESTATE: lowered.get("ce-tracestate")})  # fmt: skip
    return parent


def read_annotated_parent(obj: Mapping[str, Any] | None) -> Parent:
    """The parent a SecurityEvent's annotation names (its creator's span), else a new trace."""
    return Parent(read_annotated_traceparent(obj))


def current_trace_extensions() -> dict[str, str]:
    """The current span's context as CloudEvents distributed-tracing extension attributes
    (``traceparent``, ``tracestate``); empty when off or outside a span."""
    if not is_tracing():
        return {}
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier


def current_trace_annotations() -> dict[str, str]:
    """The annotation carrying the current span to the matcher; empty when off."""
    return make_trace_annotations(current_trace_extensions().get(TRACEPARENT))


def note_http_status(span: SpanLike, status: int) -> None:
    """The answer's status on a server span; a 5xx also sets the span's status to error."""
    span.set_attribute("http.response.status_code", status)
    if status >= 500 and not isinstance(span, NoSpan):
        from opentelemetry.trace import StatusCode

        span.set_status(StatusCode.ERROR)  # type: ignore[attr-defined]


def note_span(span: SpanLike, attributes: Mapping[str, AttributeValue]) -> None:
    """Set ``attributes`` on ``span``, but for empty ones (a no-op when off)."""
    for key, value in attributes.items():
        if value != "":
            span.set_attribute(key, value)
