"""amtd_stack.running.traces: spans decoded from OTLP/HTTP, and one trace drawn as a tree (pure)."""

from __future__ import annotations

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from amtd_stack.running.receivers import Received
from amtd_stack.running.traces import ReceivedSpan, TraceCollector, read_spans, render_trace

TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN = "b7ad6b7169203331"
MS = 1_000_000  # nanoseconds


def make_span(
    name: str, service: str, span_id: str, parent: str = "", start_ms: int = 0, took_us: int = 1000
) -> ReceivedSpan:
    """A hand-made span of TRACE starting ``start_ms`` in, lasting ``took_us`` microseconds."""
    start = start_ms * MS
    end = start + took_us * 1000
    return ReceivedSpan(name, service, TRACE, span_id, parent, 2, {}, 0, start, end)


CHAIN = [
    make_span("amtd.execute", "executor-delete", "e1", parent="d1", start_ms=9, took_us=6000),
    make_span("amtd.ingest.alert", "ingest-falco", "a1", parent="r1", start_ms=1, took_us=2000),
    make_span("amtd.decide", "matcher", "d1", parent="a1", start_ms=4, took_us=4200),
    make_span("amtd.ingest.request", "ingest-falco", "r1", start_ms=0, took_us=3100),
]


def test_each_span_stands_under_its_parent_whatever_order_they_came_in() -> None:
    assert render_trace(CHAIN) == [
        "amtd.ingest.request   ingest-falco     3.1 ms",
        "  amtd.ingest.alert   ingest-falco     2.0 ms",
        "    amtd.decide       matcher          4.2 ms",
        "      amtd.execute    executor-delete  6.0 ms",
    ]


def test_siblings_stand_in_the_order_they_started() -> None:
    later = make_span("amtd.execute", "executor-quarantine", "e2", parent="d1", start_ms=12)
    lines = render_trace([later, *CHAIN])
    assert [line.split()[:2] for line in lines[3:]] == [
        ["amtd.execute", "executor-delete"],
        ["amtd.execute", "executor-quarantine"],
    ]
    assert lines[4].startswith("      amtd.execute")  # a child of the decide span, as the first


def test_a_span_whose_parent_was_not_received_is_a_root_and_says_so() -> None:
    orphan = make_span("amtd.decide", "matcher", "d2", parent="not-exported", start_ms=20)
    child = make_span("amtd.execute", "executor-debug", "e3", parent="d2", start_ms=21)
    lines = render_trace([child, orphan, CHAIN[3]])
    assert lines == [
        "amtd.ingest.request   ingest-falco    3.1 ms",
        "amtd.decide           matcher         1.0 ms (parent not received)",
        "  amtd.execute        executor-debug  1.0 ms",
    ]


def test_no_spans_draw_nothing_and_a_span_ending_before_it_starts_took_nothing() -> None:
    assert render_trace([]) == []
    backwards = ReceivedSpan("amtd.ping", "timer", TRACE, "p1", "", 2, {}, 0, 5 * MS, 4 * MS)
    assert render_trace([backwards]) == ["amtd.ping   timer  0.0 ms"]


def test_spans_are_decoded_with_their_service_times_and_attributes() -> None:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    service = resource_spans.resource.attributes.add(key="service.name")
    service.value.string_value = "matcher"
    span = resource_spans.scope_spans.add().spans.add(
        name="amtd.decide", trace_id=bytes.fromhex(TRACE), span_id=bytes.fromhex(SPAN), kind=2,
        start_time_unix_nano=7 * MS, end_time_unix_nano=11 * MS,
    )  # fmt: skip
    span.attributes.add(key="amtd.targets").value.int_value = 1
    (decoded,) = read_spans(request.SerializeToString())
    assert decoded == ReceivedSpan(
        "amtd.decide", "matcher", TRACE, SPAN, "", 2, {"amtd.targets": 1}, 0,
        7 * MS, 11 * MS,
    )  # fmt: skip
    assert decoded.duration_ms == 4.0


def test_the_collector_keeps_exported_spans_and_refuses_anything_else() -> None:
    collector = TraceCollector()  # not started: its answers are asked directly
    try:
        export = ExportTraceServiceRequest()
        export.resource_spans.add().scope_spans.add().spans.add(name="amtd.ping")
        answer = collector.accept(Received("/v1/traces", {}, export.SerializeToString()))
        empty = ExportTraceServiceResponse().SerializeToString()
        assert (answer.status, answer.body) == (200, empty)
        assert [span.name for span in collector.spans()] == ["amtd.ping"]
        assert collector.accept(Received("/v1/logs", {}, b"")).status == 404
        assert collector.accept(Received("/v1/traces", {}, b"\xff not protobuf")).status == 400
        assert len(collector.spans()) == 1
    finally:
        collector.stop()
