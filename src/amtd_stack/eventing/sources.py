"""What every local Knative source shares: sink and ceOverrides parsing, and emitting events.

A source hands each event to an ``EventSender`` (the stack posts it to the sink over HTTP, like a
Knative adapter) and keeps a log of what it emitted, for tests and inspection.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloudevents.http import CloudEvent

from amtd_stack.eventing.connections import ConnectionPool
from amtd_stack.eventing.deliveries import DeliverySpec, Destination, SpecError, parse_destination
from amtd_stack.eventing.delivering import AttemptLog, Delivery, deliver, make_sender
from amtd_stack.eventing.filtering import ATTRIBUTE_NAME
from amtd_stack.journals import Journal
from amtd_stack.manifests import Manifest, namespace_of

LOG = logging.getLogger(__name__)
SOURCES_V1 = "sources.knative.dev/v1"
# Knative adapters retry sends to their sink; a few quick retries cover a busy broker.
SINK_DELIVERY = DeliverySpec(retry=3, backoff_policy="exponential", backoff_delay_s=0.1)

EventSender = Callable[[CloudEvent], None]
EmittedLog = Journal[CloudEvent]  # the events one source emitted, oldest first


def parse_sink(manifest: Manifest) -> Destination:
    """``spec.sink`` of a source; ManifestError naming the file and field."""
    try:
        return parse_destination(manifest.spec.get("sink"), namespace_of(manifest), "spec.sink")
    except SpecError as error:
        raise manifest.refuse(error.field, error.problem) from error


def parse_extensions(manifest: Manifest) -> dict[str, str]:
    """``spec.ceOverrides.extensions``: names must be valid CloudEvent extension names."""
    overrides = manifest.spec.get("ceOverrides") or {}
    extensions = overrides.get("extensions") or {} if isinstance(overrides, Mapping) else None
    if not isinstance(extensions, Mapping):
        raise manifest.refuse("spec.ceOverrides.extensions", "must be a mapping")
    for name in extensions:
        if not isinstance(name, str) or not ATTRIBUTE_NAME.match(name) or len(name) > 20:
            field = f"spec.ceOverrides.extensions.{name}"
            raise manifest.refuse(field, "extension names are a-z0-9, start with a letter, <= 20")
    return {str(name): str(value) for name, value in extensions.items()}


def build_event(attributes: Mapping[str, Any], data: bytes | None) -> CloudEvent:
    """A CloudEvent with exactly these attributes (no invented ``time``)."""
    event = CloudEvent(dict(attributes), data)
    if "time" not in attributes:
        del event["time"]
    return event


@dataclass
class SourceContext:
    """What a running source needs from the stack: identity, API URL, a sender, a log."""

    kubeconfig: Path
    api_url: str
    send: EventSender
    emitted: EmittedLog

    def emit(self, event: CloudEvent) -> None:
        """Record the event as emitted, then send it (raising whatever sending raises)."""
        self.emitted.append(event)
        self.send(event)


def make_sink_sender(
    label: str, url: str, attempts: AttemptLog, stopping: threading.Event,
    connections: ConnectionPool | None = None,
) -> EventSender:  # fmt: skip
    """An EventSender posting to ``url`` in binary mode with a few retries, logged as ``label``;
    over kept-alive ``connections`` (its own pool when not given)."""
    sender = make_sender(connections or ConnectionPool())

    def send(event: CloudEvent) -> None:
        delivery = Delivery(label, url, event, SINK_DELIVERY)
        result = deliver(delivery, attempts, stopping, sender)
        if not result.ok:
            LOG.error("%s could not send event %s to %s: %s", label, event["id"], url, result.error)

    return send
