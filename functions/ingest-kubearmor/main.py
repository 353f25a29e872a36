"""ingest-kubearmor: KubeArmor alerts in, SecurityEvents out.

Accepts one alert object, a JSON array, NDJSON or back-to-back objects (Fluent Bit ``json``,
``json_lines``, ``json_stream``; OTel collectors), each optionally wrapped in a ``log``/``body``
field (string or object), and CloudEvents carrying any of these; on ``/v1/logs``, an OpenTelemetry
Collector's OTLP/HTTP logs export (protobuf or JSON). A batch is answered per item:
created, duplicate, ignored (with reason) or rejected (with field). See docs/ingest.md.
"""

from __future__ import annotations

import os
from typing import Any

import flask
import functions_framework

from amtd.edge.collecting import answer_logs_export, is_logs_export
from amtd.edge.receiving import (
    Delivery,
    answer_batch,
    answer_outcome,
    process_item,
    receive,
    serve_ingest,
    start_ingest,
)
from amtd.ingest.alerts import Alert, Ignored, IngestOutcome
from amtd.ingest.documents import Document, check_media_type, split_documents
from amtd.ingest.kubearmor import KubeArmorSettings, parse_kubearmor_item, unwrap_alert
from amtd.ingest.otlp import fill_kubearmor_pod

RECORDER = start_ingest("ingest-kubearmor", os.environ)


@functions_framework.http
def ingest_kubearmor_alerts(request: flask.Request) -> flask.Response:
    """One alert, or a batch of them, per request (health probes answered first)."""
    return serve_ingest(request, ingest, os.environ)


def ingest(request: flask.Request) -> flask.Response:
    """Decode → split → map and create each item → answer per item."""
    if is_logs_export(request):
        return answer_logs_export(request, read_record_alert, record_alert, os.environ)
    delivery = receive(request, os.environ)
    check_media_type(delivery.payload.media_type, allow_lines=True)
    documents, is_batch = split_documents(delivery.payload.body)
    settings = KubeArmorSettings.from_env(os.environ)
    outcomes = [ingest_document(document, settings, delivery) for document in documents]
    if is_batch:
        return answer_batch(outcomes, delivery)
    return answer_outcome(outcomes[0], delivery)


def ingest_document(
    document: Document, settings: KubeArmorSettings, delivery: Delivery
) -> IngestOutcome:
    """One item: a line that was not JSON is rejected here, with its position."""

    def parse() -> Alert | Ignored:
        if document.error is not None:
            raise document.error
        return parse_kubearmor_item(document.value, settings)

    def record(alert: Alert) -> IngestOutcome:
        return RECORDER.record(alert, delivery.received_at, os.environ)

    return process_item(parse, record, document.label)


def read_record_alert(value: Any, pod: tuple[str, str] | None) -> Alert | Ignored:
    """An OTLP log record's alert; its resource's pod stands in when the alert names none."""
    item = unwrap_alert(value)
    if isinstance(item, Ignored):
        return item
    return parse_kubearmor_item(
        fill_kubearmor_pod(item, pod), KubeArmorSettings.from_env(os.environ)
    )


def record_alert(alert: Alert, received_at: float) -> IngestOutcome:
    """Create the alert's SecurityEvent (or count its repeat)."""
    return RECORDER.record(alert, received_at, os.environ)
