"""Pinging: the entry of the functions a PingSource drives through the Broker (timer, sweeper).

A ping is a POSTed ``dev.knative.sources.ping`` CloudEvent; anything else is a 4xx naming the
problem (405 for another method, 400 otherwise). Their answers carry the counts in
``X-Amtd-Result`` (behind the Broker a body would have to be a CloudEvent).
"""

from __future__ import annotations

import flask

from amtd.edge.receiving import handle_refusals, trace_request
from amtd.edge.responding import BadRequestError, Handler, read_body, serve
from amtd.ingest.envelopes import is_cloudevent, read_envelope

PING_TYPE = "dev.knative.sources.ping"


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


def serve_ping(request: flask.Request, handle: Handler) -> flask.Response:
    """A ping-driven function's entry: probes, else check the ping and ``handle`` it (traced:
    what it publishes to ``K_SINK`` carries the span)."""

    def handle_ping(pinged: flask.Request) -> flask.Response:
        check_ping(pinged)
        return handle(pinged)

    return serve(
        request, handle_ping,
        guard=lambda handler: trace_request(request, "amtd.ping", lambda: handle_refusals(handler)),
    )  # fmt: skip
