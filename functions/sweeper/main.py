"""sweeper: the periodic safety net behind the ApiServerSource, driven by a PingSource.

Every ping (``dev.knative.sources.ping``, once a minute through the Broker) lists the
SecurityEvents and (amtd.sweeping decides, amtd.housekeeping acts):

- decides those whose current generation has no decision after the grace period (the source
  missed them), with the matcher's own code, and publishes each ``action.requested`` to
  ``K_SINK`` (the Broker, bound by a SinkBinding): a reply could carry only one event;
- re-requests decided steps that no executor recorded after the grace period (a lost request);
- deletes fully handled SecurityEvents past the retention period.

Answers 204 with the counts in ``X-Amtd-Result``; 503 when the API server or the sink failed
(the Broker retries the ping); 503 ``NotConfigured`` without ``K_SINK``; 4xx for anything that
is not a ping. docs/events.md ("Sweep") has the design.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from functools import partial

import flask
import functions_framework

from amtd import kubeapi
from amtd.actionevents import ActionRequest, to_request_attributes
from amtd.envelopes import is_cloudevent, read_envelope
from amtd.housekeeping import run_sweep
from amtd.ingesting import connect_cluster
from amtd.publishing import Sink, publish_event, read_sink
from amtd.receiving import RESULT_HEADER, handle_refusals
from amtd.responding import BadRequestError, answer_health, error_response, read_body
from amtd.sweeping import read_sweep_settings

PING_TYPE = "dev.knative.sources.ping"
SWEEPER_SOURCE = "/amtd/sweeper"

logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"))
logger = logging.getLogger("sweeper")


@functions_framework.http
def sweep_security_events(request: flask.Request) -> flask.Response:
    """One ping: one bounded sweep."""
    health = answer_health(request, kubeapi.is_configurable)
    if health is not None:
        return health
    return handle_refusals(lambda: sweep(request))


def sweep(request: flask.Request) -> flask.Response:
    """Check the ping → sweep → answer with the counts."""
    check_ping(request)
    sink = bound_sink()
    report = run_sweep(
        connect_cluster(),
        read_sweep_settings(os.environ),
        datetime.now(UTC),
        partial(publish_request, sink),
    )
    summary = report.summary()
    logger.info("sweeper: ping handled: %s", summary)
    if report.failed:
        response = error_response(503, "SweepIncomplete", f"{report.failed} failed: {summary}")
    else:
        response = flask.Response(status=204)
    response.headers[RESULT_HEADER] = summary
    return response


def check_ping(request: flask.Request) -> None:
    """A POSTed PingSource CloudEvent, else a 4xx naming the problem."""
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


def bound_sink() -> Sink:
    """The sink a SinkBinding injects; without one nothing could be published (503)."""
    try:
        sink = read_sink(os.environ)
    except ValueError as error:
        sink, problem = None, str(error)
    else:
        problem = "K_SINK is not set (bind the sweeper to the Broker with a SinkBinding)"
    if sink is None:
        logger.error("sweeper: not configured: %s", problem)
        raise BadRequestError("NotConfigured", problem, 503)
    return sink


def publish_request(sink: Sink, request: ActionRequest) -> None:
    """One ``action.requested`` event to the sink (the matcher's id: executors deduplicate)."""
    attributes = {**to_request_attributes(request), "source": SWEEPER_SOURCE}
    publish_event(sink, attributes, request.model_dump(by_alias=True, mode="json"))
    logger.info("sweeper: published %s for %s", attributes["id"], request.security_event.name)
