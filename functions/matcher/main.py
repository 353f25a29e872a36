"""The matcher function: decide what to do about each SecurityEvent; reply with the action event.

ApiServerSource → Broker → here (binary or structured CloudEvents, Resource or Reference mode).
A thin adapter: decode the event (amtd.model.apiserverevents), decide, sign (with
``MATCHER_SIGNING_KEY``, amtd.decide.signing) and record against the API server
(amtd.decide.triaging), and reply one ``action.requested`` CloudEvent with the steps
executors
must perform (amtd.model.actionevents), or 204 when there are none. docs/events.md has the contract.
The decision's Kubernetes Event is written after the reply, by the process's background worker
(amtd.kube.deferring): it is an audit record, not part of the decision.
"""

from __future__ import annotations

import logging
import os

import flask
import functions_framework

from amtd.decide.indexing import warm_policy_indexes
from amtd.decide.signing import read_signing_key
from amtd.decide.triaging import list_policies, triage_found
from amtd.edge.metrics import count_triage
from amtd.edge.publishing import PublishError, publish_action_request, read_sink
from amtd.edge.responding import (
    BadRequestError,
    cloudevent_response,
    decode_cloudevent,
    no_content,
    serve,
)
from amtd.edge.tracing import (
    SpanLike,
    current_trace_extensions,
    note_span,
    read_annotated_parent,
    trace_span,
)
from amtd.edge.workers import start_function
from amtd.kube import api as kubeapi
from amtd.kube.deferring import shared_deferrer
from amtd.model.actionevents import (
    MATCHER_SOURCE,
    ActionRequest,
    split_request,
    to_request_attributes,
)
from amtd.model.apiserverevents import (
    Change,
    InvalidEventError,
    is_announcing_undecided,
    is_echo_of_decision,
    read_change,
    read_change_type,
)
from amtd.model.objects import Object
from amtd.model.securityevents import KIND
from amtd.model.signatures import SigningKey
from amtd.model.timestamps import format_now

start_function(os.environ, "matcher")
logger = logging.getLogger("amtd.matcher")


@functions_framework.http
def match_security_event(request: flask.Request) -> flask.Response:
    """Answer health probes, else handle one ApiServerSource CloudEvent."""
    return serve(request, handle_event)


def handle_event(request: flask.Request) -> flask.Response:
    """Decode → decide and record → reply; an event that can never be handled is a 400."""
    try:
        return decide_and_reply(request)
    except InvalidEventError as error:
        raise BadRequestError(error.error, error.detail) from None


def decide_and_reply(request: flask.Request) -> flask.Response:
    """The SecurityEvent's decision, recorded; the action event for executors, if any."""
    change = read_security_event_change(request)
    if change is None:
        return no_content()
    if is_echo_of_decision(change):
        logger.info("SecurityEvent %s: a status update of a decided generation", change.name)
        return no_content()
    # Read once, before the span: its parent is the object's annotation (the span of the ingest
    # that created it), and the decision is made from the same read.
    cluster = kubeapi.shared_cluster()
    found = cluster.find(kubeapi.SECURITY_EVENTS, change.name)
    parent = read_annotated_parent(found)
    with trace_span("amtd.decide", parent, {"amtd.securityevent": change.name}, "SERVER") as span:
        return triage_and_reply(cluster, change, found, span)


def triage_and_reply(
    cluster: kubeapi.Cluster, change: Change, found: Object | None, span: SpanLike
) -> flask.Response:
    """Decide and record the SecurityEvent's generation; the action event, if any (traced)."""
    triage = triage_found(
        cluster,
        change.name,
        found,
        may_replay=change.verb == "add" or is_announcing_undecided(change),
        now=format_now(),
        defer=shared_deferrer().defer,  # its Event is written after the reply
        signer=read_matcher_key(),
        indexes=warm_policy_indexes(list_policies, kubeapi.shared_cluster),
    )
    count_triage(triage)
    note_span(span, {"amtd.outcome": triage.outcome, "amtd.targets": len(triage.decisions)})
    if triage.request is None:
        logger.info("SecurityEvent %s: %s, nothing for executors", change.name, triage.outcome)
        return no_content()
    first = publish_beyond_first(triage.request)
    attributes = {**to_request_attributes(first), **current_trace_extensions()}
    note_span(span, {"amtd.request.id": attributes["id"], "amtd.steps": len(triage.request.steps)})
    logger.info(
        "SecurityEvent %s: %s, requesting %s", change.name, triage.outcome, attributes["id"]
    )
    return cloudevent_response(attributes, first.model_dump(by_alias=True, mode="json"))


def publish_beyond_first(request: ActionRequest) -> ActionRequest:
    """A reply carries one event: the other parts of a split request go to ``K_SINK`` (503 if
    that fails: the Broker redelivers and the matcher re-requests what was not executed).
    Without a sink nothing is split (and a very large request may outlive its timeout)."""
    parts = split_request(request)
    if len(parts) == 1:
        return request
    try:
        sink = read_sink(os.environ)
    except ValueError as error:
        raise BadRequestError("NotConfigured", str(error), 503) from None
    if sink is None:
        logger.warning("matcher: K_SINK is not set: %d steps in one request", len(request.steps))
        return request
    try:
        for part in parts[1:]:
            publish_action_request(sink, part, MATCHER_SOURCE)
    except PublishError as error:
        logger.error("matcher: could not publish a part of a split request: %s", error)
        raise BadRequestError("SinkUnavailable", "the Broker did not take a request", 503) from None
    return parts[0]


def read_matcher_key() -> SigningKey:
    """The key steps are signed with; 503 NotConfigured without one (retried once it is set)."""
    try:
        return read_signing_key(os.environ)
    except ValueError as error:
        logger.error("matcher: not configured: %s", error)
        raise BadRequestError("NotConfigured", str(error), 503) from None


def read_security_event_change(request: flask.Request) -> Change | None:
    """The SecurityEvent change the event announces; None for deletions and other kinds."""
    event = decode_cloudevent(request)
    change_type = read_change_type(str(event["type"]))
    if change_type.verb == "delete":
        logger.info("ignored %s %s: a deletion needs no decision", event["type"], event["id"])
        return None
    change = read_change(change_type, event.get_attributes(), event.get_data())
    if change.kind != KIND:
        logger.info(
            "ignored %s %s: kind %s is not %s", event["type"], change.name, change.kind, KIND
        )
        return None
    return change
