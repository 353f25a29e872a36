"""Announcing: the dead-letters function tells the Broker it recorded a dead letter.

A dead-letter sink's reply goes nowhere in Knative, so the notice
(:mod:`amtd.notify.deadletternotices`) is posted to ``K_SINK``, the Broker a SinkBinding names;
the Trigger ``notify-dead-letters`` takes it to notify. Without ``K_SINK`` nothing is announced.
A notice that cannot be posted is a 503: the Broker re-sends the dead letter, which is then
already recorded and announced again (at least once). A dead-lettered notice is never announced.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import flask

from amtd.edge.publishing import PublishError, publish_event, read_sink
from amtd.edge.responding import error_response, no_content
from amtd.notify.deadletternotices import is_notice_type, make_notice

LOG = logging.getLogger("amtd.dead-letters")


def announce_dead_letter(event_type: str, manifest: Mapping[str, Any]) -> flask.Response:
    """Post the notice about the recorded Event ``manifest``; 204, or 503 if it was refused."""
    sink = read_sink(os.environ)
    if sink is None or is_notice_type(event_type):
        return no_content()
    attributes, data = make_notice(manifest)
    try:
        publish_event(sink, attributes, data)
    except PublishError as error:
        LOG.error("dead letter %s NOT announced: %s", attributes["id"], error)
        return error_response(503, "NotAnnounced", str(error))
    LOG.info("dead letter %s announced", attributes["id"])
    return no_content()
