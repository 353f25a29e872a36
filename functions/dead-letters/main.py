"""The dead-letters function: the Broker's deadLetterSink; every lost event becomes visible.

Each dead-lettered CloudEvent is logged loudly and recorded as a Warning Event (reason
DeadLetter) on the SecurityEvent it concerns when the cluster confirms it (amtd.deadletters),
else on the Broker, marked unverified; with or without the broker's ``knativeerror*`` extensions
(it adds none after a timeout). 204 when recorded (or already
recorded), 503 when the API server is unreachable (the broker retries), 400 for a non-CloudEvent.
Once recorded, a notice goes to ``K_SINK`` (the Broker) for notify (amtd.edge.announcing).
"""

from __future__ import annotations

import logging
import os

import flask
import functions_framework

from amtd.deadletters import (
    DeadLetter,
    describe_dead_letter,
    make_dead_letter_event,
    read_dead_letter,
    refer_to_broker,
    verify_dead_letter,
)
from amtd.edge.announcing import announce_dead_letter
from amtd.edge.metrics import count_dead_letter
from amtd.edge.responding import (
    decode_cloudevent,
    error_response,
    read_json_data,
    serve,
)
from amtd.edge.workers import start_function
from amtd.kube import api as kubeapi
from amtd.kube.api import EVENTS, SECURITY_EVENTS, Cluster
from amtd.kube.apierrors import ConflictError, NotFoundError
from amtd.kube.events import refer_to_security_event
from amtd.model.timestamps import format_now

start_function(os.environ, "dead-letters")
logger = logging.getLogger("amtd.dead-letters")


@functions_framework.http
def record_dead_letter(request: flask.Request) -> flask.Response:
    """Answer health probes, else record one dead-lettered CloudEvent."""
    return serve(request, handle_dead_letter)


def handle_dead_letter(request: flask.Request) -> flask.Response:
    """Decode → log → record the Event (409: already recorded, fine)."""
    event = decode_cloudevent(request)
    letter = read_dead_letter(event.get_attributes(), read_json_data(event))
    logger.error("DEAD LETTER: %s", describe_dead_letter(letter))
    cluster = kubeapi.shared_cluster()
    involved, unverified = find_involved(cluster, letter)
    if unverified is not None:
        logger.warning("dead letter %s is unverified: %s", letter.event_id, unverified)
    manifest = make_dead_letter_event(letter, involved, format_now(), unverified)
    namespace = manifest["metadata"]["namespace"]
    try:
        cluster.create(EVENTS, manifest, namespace)
    except ConflictError:
        logger.info("dead letter %s was already recorded", letter.event_id)
        count_dead_letter(involved["kind"], "duplicate")
        return announce_dead_letter(letter.event_type, manifest)  # again: the last may be lost
    except NotFoundError as error:
        logger.error("dead letter %s NOT recorded: %s", letter.event_id, error.message)
        count_dead_letter(involved["kind"], "failed")
        return error_response(500, "NotRecorded", f"namespace {namespace}: {error.message}")
    count_dead_letter(involved["kind"], "recorded")
    logger.info(
        "dead letter %s recorded as Event %s", letter.event_id, manifest["metadata"]["name"]
    )
    return announce_dead_letter(letter.event_type, manifest)


def find_involved(cluster: Cluster, letter: DeadLetter) -> tuple[dict[str, str], str | None]:
    """The SecurityEvent the letter names, with its uid, when the cluster confirms the letter;
    else the Broker, and what was not confirmed."""
    broker = refer_to_broker(os.environ.get("AMTD_NAMESPACE", "amtd-system"))
    if letter.security_event is None:
        return broker, None
    found = cluster.find(SECURITY_EVENTS, letter.security_event)
    unverified = verify_dead_letter(letter, found)
    if found is None or unverified is not None:
        return broker, unverified
    return refer_to_security_event(letter.security_event, found["metadata"]["uid"]), None
