"""ingest-alertmanager: Prometheus Alertmanager webhook notifications in, SecurityEvents out.

Alertmanager's ``webhook_configs`` receiver POSTs one notification (payload version 4) holding a
group of alerts; each alert is answered on its own, like a KubeArmor batch: created, duplicate,
ignored (resolved, no pod; with reason) or rejected (with field). See docs/ingest.md.
"""

from __future__ import annotations

import os
from typing import Any

import flask
import functions_framework

from amtd.edge.receiving import (
    Delivery,
    answer_batch,
    process_item,
    receive,
    serve_ingest,
    start_ingest,
)
from amtd.ingest.alertmanager import (
    AlertmanagerSettings,
    parse_alertmanager_alert,
    read_notification_alerts,
)
from amtd.ingest.alerts import Alert, IngestOutcome
from amtd.ingest.documents import check_media_type, parse_single_object

RECORDER = start_ingest("ingest-alertmanager", os.environ)


@functions_framework.http
def ingest_alertmanager_alerts(request: flask.Request) -> flask.Response:
    """One notification per request (health probes answered first)."""
    return serve_ingest(request, ingest, os.environ)


def ingest(request: flask.Request) -> flask.Response:
    """Decode → take the alerts → map and create each → answer per alert."""
    delivery = receive(request, os.environ)
    check_media_type(delivery.payload.media_type, allow_lines=False)
    alerts = read_notification_alerts(parse_single_object(delivery.payload.body))
    settings = AlertmanagerSettings.from_env(os.environ)
    outcomes = [
        ingest_alert(item, f"alerts[{index}]", settings, delivery)
        for index, item in enumerate(alerts)
    ]
    return answer_batch(outcomes, delivery)


def ingest_alert(
    item: Any, label: str, settings: AlertmanagerSettings, delivery: Delivery
) -> IngestOutcome:
    """One alert of the notification: its own outcome, never the whole request's failure."""

    def record(alert: Alert) -> IngestOutcome:
        return RECORDER.record(alert, delivery.received_at, os.environ)

    return process_item(lambda: parse_alertmanager_alert(item, settings), record, label)
