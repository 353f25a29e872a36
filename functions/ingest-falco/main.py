"""ingest-falco: Falco alerts in, SecurityEvents out.

Accepts Falco's ``http_output`` JSON, the Falcosidekick webhook (same JSON plus ``uuid``) and
Falcosidekick CloudEvents (binary or structured, directly or through the Broker), and on
``/v1/logs`` an OpenTelemetry Collector's OTLP/HTTP logs export of Falco's JSON output. See
docs/ingest.md for configuration, authentication and answers.
"""

from __future__ import annotations

import os
from typing import Any

import flask
import functions_framework

from amtd.edge.collecting import answer_logs_export, is_logs_export
from amtd.edge.receiving import answer_outcome, process_item, receive, serve_ingest, start_ingest
from amtd.ingest.alerts import Alert, Ignored, IngestOutcome
from amtd.ingest.documents import check_media_type, parse_single_object
from amtd.ingest.falco import DEFAULT_RULE_SOURCE, check_falco_cloudevent, parse_falco_alert
from amtd.ingest.otlp import as_alert_object, fill_falco_pod

RECORDER = start_ingest("ingest-falco", os.environ)


@functions_framework.http
def ingest_falco_alert(request: flask.Request) -> flask.Response:
    """One Falco alert per request (health probes answered first)."""
    return serve_ingest(request, ingest, os.environ)


def ingest(request: flask.Request) -> flask.Response:
    """Decode → map → create → answer."""
    if is_logs_export(request):
        return answer_logs_export(request, read_record_alert, record_alert, os.environ)
    delivery = receive(request, os.environ)
    check_media_type(delivery.payload.media_type, allow_lines=False)
    extensions = delivery.envelope.attributes if delivery.envelope else {}
    if delivery.envelope is not None:
        check_falco_cloudevent(extensions)
    rule_source = read_rule_source()
    outcome = process_item(
        lambda: parse_falco_alert(parse_single_object(delivery.payload.body), rule_source,
                                  extensions),
        lambda alert: RECORDER.record(alert, delivery.received_at, os.environ),
        "body",
    )  # fmt: skip
    return answer_outcome(outcome, delivery)


def read_rule_source() -> str:
    """``RULE_SOURCE``, else Phoenix's name."""
    return os.environ.get("RULE_SOURCE", "").strip() or DEFAULT_RULE_SOURCE


def read_record_alert(value: Any, pod: tuple[str, str] | None) -> Alert | Ignored:
    """An OTLP log record's Falco alert; its resource's pod stands in when the alert names none."""
    return parse_falco_alert(fill_falco_pod(as_alert_object(value), pod), read_rule_source())


def record_alert(alert: Alert, received_at: float) -> IngestOutcome:
    """Create the alert's SecurityEvent (or count its repeat)."""
    return RECORDER.record(alert, received_at, os.environ)
