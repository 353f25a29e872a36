"""ingest-falco: Falco alerts in, SecurityEvents out.

Accepts Falco's ``http_output`` JSON, the Falcosidekick webhook (same JSON plus ``uuid``) and
Falcosidekick CloudEvents (binary or structured, directly or through the Broker). See
docs/ingest.md for configuration, authentication and answers.
"""

from __future__ import annotations

import logging
import os

import flask
import functions_framework

from amtd.alerts import Alert, Outcome, read_window_seconds
from amtd.documents import check_media_type, parse_single_object
from amtd.falcoalerts import DEFAULT_RULE_SOURCE, check_falco_event, parse_falco_alert
from amtd.ingesting import OccurrenceCounter, connect_cluster, read_flush_seconds, record_alert
from amtd.receiving import (
    Delivery,
    answer_ingest_health,
    answer_outcome,
    handle_refusals,
    process_item,
    receive,
    warn_if_open,
)

FUNCTION_NAME = "ingest-falco"

logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"))
logger = logging.getLogger(FUNCTION_NAME)
COUNTER = OccurrenceCounter(read_flush_seconds(os.environ))
warn_if_open(os.environ)


@functions_framework.http
def ingest_falco_alert(request: flask.Request) -> flask.Response:
    """One Falco alert per request."""
    health = answer_ingest_health(request, os.environ)
    if health is not None:
        return health
    return handle_refusals(lambda: ingest(request))


def ingest(request: flask.Request) -> flask.Response:
    """Decode → map → create → answer."""
    delivery = receive(request, os.environ)
    check_media_type(delivery.payload.media_type, allow_lines=False)
    extensions = delivery.envelope.attributes if delivery.envelope else {}
    if delivery.envelope is not None:
        check_falco_event(extensions)
    rule_source = os.environ.get("RULE_SOURCE", "").strip() or DEFAULT_RULE_SOURCE
    outcome = process_item(
        lambda: parse_falco_alert(parse_single_object(delivery.payload.body), rule_source,
                                  extensions),
        lambda alert: record(alert, delivery),
        "body",
    )  # fmt: skip
    return answer_outcome(outcome, delivery)


def record(alert: Alert, delivery: Delivery) -> Outcome:
    """Create the SecurityEvent (409 = duplicate within the dedup window)."""
    window = read_window_seconds(os.environ)
    return record_alert(
        connect_cluster(), alert, delivery.received_at, window, FUNCTION_NAME, COUNTER
    )
