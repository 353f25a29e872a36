"""Dead letters: read what a Knative Broker hands its dead-letter sink, and describe it. Pure.

When a delivery fails for good (retries spent, or a final 4xx), the broker sends the ORIGINAL
CloudEvent to the dead-letter sink, also when it was delivered but the broker could not store
its reply. Extensions say how it failed when the broker could tell: ``knativeerrordest`` (the
subscriber, or the broker itself for a refused reply), ``knativeerrorcode`` (the HTTP status; 500
when the subscriber was unreachable) and ``knativeerrordata`` (the start of the response body,
base64). After a timeout, or a 2xx answer that was not a CloudEvent, there are none: such a
dead letter is just the original event. The dead-letters function turns each one into a Warning
Event where an operator looks.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from amtd import SECURITY_EVENT_KIND as KIND
from amtd.kube.events import CLUSTER_SCOPED_EVENTS_NAMESPACE, make_event
from amtd.model.targets import DNS1123_SUBDOMAIN

COMPONENT = "amtd-dead-letters"
BROKER_API_VERSION = "eventing.knative.dev/v1"
SECURITY_EVENTS_PATH = "/securityevents/"
MAX_RESPONSE_CHARS = 300
MAX_NAME_LENGTH = 253
UNKNOWN = "unknown"  # destination or code of a dead letter without error extensions
NO_DETAILS = "the broker reported no error (a timeout, or a 2xx answer that was not a CloudEvent)"


@dataclass(frozen=True)
class DeadLetter:
    """One undeliverable event: what it was, where it was going, how it failed."""

    event_type: str
    event_id: str
    source: str
    destination: str
    code: str
    response: str
    security_event: str | None


def read_dead_letter(attributes: Mapping[str, Any]) -> DeadLetter:
    """The facts of a dead-lettered CloudEvent, from its attributes."""
    return DeadLetter(
        event_type=str(attributes.get("type", "")),
        event_id=str(attributes.get("id", "")),
        source=str(attributes.get("source", "")),
        destination=str(attributes.get("knativeerrordest") or UNKNOWN),
        code=str(attributes.get("knativeerrorcode") or UNKNOWN),
        response=decode_error_data(attributes.get("knativeerrordata")),
        security_event=find_security_event_name(attributes),
    )


def decode_error_data(value: Any) -> str:
    """The failed response's body from base64, shortened; raw text if it is not base64."""
    if not value:
        return ""
    text = str(value)
    with contextlib.suppress(binascii.Error, ValueError):  # not base64: keep what was sent
        text = base64.b64decode(text, validate=True).decode("utf-8", errors="replace")
    line = " ".join(text.split())
    return line if len(line) <= MAX_RESPONSE_CHARS else line[:MAX_RESPONSE_CHARS] + "..."


def find_security_event_name(attributes: Mapping[str, Any]) -> str | None:
    """The SecurityEvent the event is about: our ``securityevent`` extension, an ApiServerSource
    event's ``kind``/``name``, or a subject ``.../securityevents/<name>``; None otherwise."""
    candidates = [attributes.get("securityevent")]
    if attributes.get("kind") == KIND:
        candidates.append(attributes.get("name"))
    subject = str(attributes.get("subject") or "")
    if SECURITY_EVENTS_PATH in subject:
        candidates.append(subject.rsplit(SECURITY_EVENTS_PATH, 1)[1])
    return next((name for name in candidates if is_object_name(name)), None)


def is_object_name(value: Any) -> bool:
    """A valid Kubernetes object name (DNS-1123 subdomain)."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_NAME_LENGTH
        and DNS1123_SUBDOMAIN.match(value) is not None
    )


def describe_dead_letter(letter: DeadLetter) -> str:
    """One line: which event, from where, to where, and the failure."""
    text = f"{letter.event_type} event {letter.event_id} from {letter.source} was not delivered"
    if letter.destination != UNKNOWN:
        text += f" to {letter.destination}"
    text += f": {NO_DETAILS}" if letter.code == UNKNOWN else f": HTTP {letter.code}"
    return f"{text}; response: {letter.response}" if letter.response else text


def refer_to_broker(namespace: str, name: str = "default") -> dict[str, str]:
    """involvedObject for the Broker whose delivery failed."""
    return {
        "apiVersion": BROKER_API_VERSION,
        "kind": "Broker",
        "name": name,
        "namespace": namespace,
    }


def make_dead_letter_event(
    letter: DeadLetter, involved: Mapping[str, str], now: str
) -> dict[str, Any]:
    """The Warning Event (reason DeadLetter); the same dead letter always gets the same name.

    It lives in the involved object's namespace; for a SecurityEvent (cluster-scoped) that is
    ``default``, the only namespace the API server accepts for such Events.
    """
    key = "/".join((letter.source, letter.event_id, letter.destination, letter.code))
    return make_event(
        involved, namespace=involved.get("namespace") or CLUSTER_SCOPED_EVENTS_NAMESPACE,
        reason="DeadLetter", message=describe_dead_letter(letter), key=key, component=COMPONENT,
        now=now, event_type="Warning",
    )  # fmt: skip
