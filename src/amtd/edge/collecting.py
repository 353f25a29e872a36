"""Collecting: the OTLP/HTTP ``/v1/logs`` endpoint of the ingest functions (OpenTelemetry
Collector ``otlphttp`` exporter; docs/ingest.md).

Method, size and bearer token are checked as on every ingest path (:func:`receive`); the body is
read by :mod:`amtd.ingest.otlp` and each log record is mapped and recorded like an item of a
batch. Answers follow OTLP/HTTP: 200 with an ``ExportLogsServiceResponse`` in the request's
encoding, records refused counted in ``partialSuccess`` (ignored ones are accepted: they are not
for us); 400 for an undecodable body; 503 when the API server is unavailable, so the collector
retries the whole request and records already created come back as counted duplicates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flask

from amtd.edge.receiving import RESULTS, failure_status, process_item, receive
from amtd.edge.responding import RESULT_HEADER, BadRequestError, error_response
from amtd.ingest.alerts import Alert, Ignored, IngestOutcome
from amtd.ingest.otlp import (
    LOGS_PATH,
    LogRecord,
    build_logs_response,
    is_protobuf,
    is_resource_target_enabled,
    read_log_records,
)

# The record's alert (decoded JSON) and the pod its resource names (when enabled) → an alert.
ReadAlert = Callable[[Any, tuple[str, str] | None], Alert | Ignored]
RecordAlert = Callable[[Alert, float], IngestOutcome]
PROTOBUF_ANSWER = "application/x-protobuf"


def is_logs_export(request: flask.Request) -> bool:
    """Whether the request is for the OTLP endpoint (the collector appends ``/v1/logs``)."""
    return request.path.rstrip("/") == LOGS_PATH


def answer_logs_export(
    request: flask.Request, read_alert: ReadAlert, record: RecordAlert, env: Mapping[str, str]
) -> flask.Response:
    """Receive → decode → map and record each log record → the OTLP answer."""
    delivery = receive(request, env)
    if delivery.envelope is not None:
        raise BadRequestError("NotOtlp", f"{LOGS_PATH} takes OTLP logs, not a CloudEvent")
    media_type = delivery.payload.media_type
    records = read_log_records(delivery.payload.body, media_type)
    use_resource = is_resource_target_enabled(env)
    outcomes = [
        process_record(item, read_alert, lambda alert: record(alert, delivery.received_at),
                       use_resource)
        for item in records
    ]  # fmt: skip
    return answer_outcomes(outcomes, is_protobuf(media_type))


def process_record(
    item: LogRecord, read_alert: ReadAlert, record: Callable[[Alert], IngestOutcome],
    use_resource: bool,
) -> IngestOutcome:  # fmt: skip
    """One log record; its resource's pod is offered to the mapper only when enabled."""

    def parse() -> Alert | Ignored:
        if item.document.error is not None:
            raise item.document.error
        return read_alert(item.document.value, item.resource_pod if use_resource else None)

    return process_item(parse, record, item.document.label)


def answer_outcomes(outcomes: Sequence[IngestOutcome], protobuf: bool) -> flask.Response:
    """200 with partialSuccess for refused records; 503/500 when the API failed any record."""
    counts = {name: sum(1 for item in outcomes if item.result == name) for name in RESULTS}
    summary = ",".join(f"{name}={count}" for name, count in counts.items())
    failed = [item for item in outcomes if item.result == "failed"]
    if failed:
        response = error_response(failure_status(failed), failed[0].reason, failed[0].detail)
        response.headers[RESULT_HEADER] = summary
        return response
    rejected = [f"{item.label}: {item.field} {item.detail}" for item in outcomes
                if item.result == "rejected"]  # fmt: skip
    body = build_logs_response(rejected, protobuf)
    content_type = PROTOBUF_ANSWER if protobuf else "application/json"
    return flask.Response(body, status=200, content_type=content_type,
                          headers={RESULT_HEADER: summary})  # fmt: skip
