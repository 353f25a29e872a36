"""timer: the time-based trigger, driven by a PingSource through the Broker.

Every ping (``dev.knative.sources.ping``, once a minute) looks at the pods annotated
``time-based-trigger.amtd.r6security.com/enabled`` / ``.../schedule`` and creates one
SecurityEvent for each pod that is due (REFERENCE §5). Answers 204 with the counts in
``X-Amtd-Result`` (behind the Broker a body would have to be a CloudEvent); 503 when the API
server failed, so the Broker retries the ping. See docs/ingest.md.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime

import flask
import functions_framework

from amtd import kubeapi
from amtd.envelopes import is_cloudevent, read_envelope
from amtd.ingesting import connect_cluster
from amtd.receiving import RESULT_HEADER, handle_refusals
from amtd.responding import BadRequestError, answer_health, read_body
from amtd.triggering import trigger_due_pods

PING_TYPE = "dev.knative.sources.ping"

logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"))
logger = logging.getLogger("timer")


@functions_framework.http
def trigger_timed_events(request: flask.Request) -> flask.Response:
    """One ping: create the due time-based SecurityEvents."""
    health = answer_health(request, kubeapi.is_configurable)
    if health is not None:
        return health
    return handle_refusals(lambda: trigger(request))


def trigger(request: flask.Request) -> flask.Response:
    """Check the ping → evaluate every annotated pod → answer with the counts."""
    if request.method != "POST":
        raise BadRequestError("MethodNotAllowed", f"use POST, not {request.method}", 405)
    body = read_body(request)
    headers = dict(request.headers)
    if not is_cloudevent(headers):
        raise BadRequestError("NotACloudEvent", "expected a PingSource CloudEvent")
    event_type = read_envelope(headers, body).attributes["type"]
    if event_type != PING_TYPE:
        raise BadRequestError(
            "UnsupportedEventType", f"expected {PING_TYPE}, got {event_type[:80]!r}"
        )
    report = trigger_due_pods(connect_cluster(), datetime.now(UTC))
    logger.info("timer: ping handled: %s", report.summary() or "no annotated pods")
    return flask.Response(status=204, headers={RESULT_HEADER: report.summary()})
