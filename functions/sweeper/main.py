"""sweeper: the periodic safety net behind the ApiServerSource, driven by a PingSource.

Every ping (``dev.knative.sources.ping``, once a minute through the Broker) lists the
SecurityEvents and (amtd.schedule.sweeping decides, amtd.schedule.housekeeping acts):

- announces to the matcher those whose current generation has no decision after the grace
  period (the source missed them): a ``dev.knative.apiserver.ref.add`` event naming each, posted
  to ``K_SINK`` (the Broker, bound by a SinkBinding); only the matcher decides and signs;
- re-requests decided steps that no executor recorded after the grace period (a lost request),
  publishing each ``action.requested`` with the matcher's signatures to ``K_SINK`` (a reply could
  carry only one event);
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

from amtd.edge.metrics import count_report
from amtd.edge.pinging import serve_ping
from amtd.edge.publishing import Sink, publish_action_request, publish_event, read_sink
from amtd.edge.responding import RESULT_HEADER, BadRequestError, error_response
from amtd.edge.workers import start_function
from amtd.kube.connecting import connect_cluster
from amtd.model.actionevents import ActionRequest, SecurityEventRef, split_request
from amtd.model.apiserverevents import to_announcement, to_announcement_attributes
from amtd.schedule.housekeeping import run_sweep
from amtd.schedule.sweeping import read_sweep_settings

SWEEPER_SOURCE = "/amtd/sweeper"

start_function(os.environ, "sweeper")
logger = logging.getLogger("sweeper")


@functions_framework.http
def sweep_security_events(request: flask.Request) -> flask.Response:
    """One ping: one bounded sweep (probes answered first)."""
    return serve_ping(request, sweep)


def sweep(request: flask.Request) -> flask.Response:
    """Sweep (the ping is checked) → answer with the counts."""
    sink = bound_sink()
    report = run_sweep(
        connect_cluster(),
        read_sweep_settings(os.environ),
        datetime.now(UTC),
        partial(publish_request, sink),
        partial(announce_to_matcher, sink),
    )
    count_report(report)
    summary = report.summary()
    logger.info("sweeper: ping handled: %s", summary)
    if report.failed:
        response = error_response(503, "SweepIncomplete", f"{report.failed} failed: {summary}")
    else:
        response = flask.Response(status=204)
    response.headers[RESULT_HEADER] = summary
    return response


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
    """The request's ``action.requested`` events to the sink, as the matcher splits them."""
    for part in split_request(request):
        event_id = publish_action_request(sink, part, SWEEPER_SOURCE)
        logger.info("sweeper: published %s for %s", event_id, request.security_event.name)


def announce_to_matcher(sink: Sink, ref: SecurityEventRef) -> None:
    """The event the SecurityEvent's ApiServerSource (Reference mode) would have sent: the
    matcher re-reads the object, so the event carries no authority of its own."""
    attributes = to_announcement_attributes(ref.name, ref.uid, SWEEPER_SOURCE)
    publish_event(sink, attributes, to_announcement(ref.name))
    logger.info("sweeper: announced SecurityEvent %s to the matcher", ref.name)
