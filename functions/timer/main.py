"""timer: the time-based trigger, driven by a PingSource through the Broker.

Every ping (``dev.knative.sources.ping``, once a minute) looks at the pods annotated
``time-based-trigger.amtd.r6security.com/enabled`` / ``.../schedule`` and creates one SecurityEvent
for each pod that is due (as r6security's time-based-trigger); likewise for Phoenix's interval
timer (``interval-timer.amtd.r6security.com/enabled`` / ``.../config``, keyed by the optional env
``INTERVAL_TIMER_KEY``). Answers 204 with the counts in
``X-Amtd-Result`` (behind the Broker a body would have to be a CloudEvent); 503 when the API server
failed, so the Broker retries the ping. See docs/ingest.md.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime

import flask
import functions_framework

from amtd.edge.metrics import count_results, set_ingest_source
from amtd.edge.pinging import serve_ping
from amtd.edge.responding import RESULT_HEADER
from amtd.edge.workers import start_function
from amtd.kube.connecting import connect_cluster
from amtd.schedule.intervals import read_interval_key
from amtd.schedule.triggering import trigger_due_pods

start_function(os.environ, "timer")
set_ingest_source("timer")  # its SecurityEvents count as alerts of source timer
logger = logging.getLogger("timer")
INTERVAL_KEY = read_interval_key(os.environ)


@functions_framework.http
def trigger_timed_events(request: flask.Request) -> flask.Response:
    """One ping: create the due time-based SecurityEvents (probes answered first)."""
    return serve_ping(request, trigger)


def trigger(request: flask.Request) -> flask.Response:
    """Evaluate every annotated pod (the ping is checked) → answer with the counts."""
    report = trigger_due_pods(connect_cluster(), datetime.now(UTC), INTERVAL_KEY)
    count_results(report.counts)
    logger.info("timer: ping handled: %s", report.summary() or "no annotated pods")
    return flask.Response(status=204, headers={RESULT_HEADER: report.summary()})
