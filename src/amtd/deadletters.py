"""Dead letters: read what a Knative Broker hands its dead-letter sink, and describe it. Pure.

When a delivery fails for good (retries spent, or a final 4xx), the broker sends the ORIGINAL
CloudEvent to the dead-letter sink, also when it was delivered but the broker could not store
its reply. Extensions say how it failed when the broker could tell: ``knativeerrordest`` (the
subscriber, or the broker itself for a refused reply), ``knativeerrorcode`` (the HTTP status; 500
when the subscriber was unreachable) and ``knativeerrordata`` (the start of the response body,
base64). After a timeout, or a 2xx answer that was not a CloudEvent, there are none: such a
dead letter is just the original event. The dead-letters function turns each one into a Warning
Event where an operator looks.

Anyone who reaches the sink can post a "dead letter", so nothing in one is taken on trust: it is
recorded on a SecurityEvent only when the cluster confirms what it says (the SecurityEvent exists;
an action event's steps are steps the SecurityEvent's status holds, its uid is that object's),
else on the Broker, marked unverified; every string from it is shown cut and without control
characters (:func:`~amtd.model.texts.clean_text`).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from amtd import SECURITY_EVENT_KIND as KIND
from amtd.kube.events import CLUSTER_SCOPED_EVENTS_NAMESPACE, make_kube_event
from amtd.model.targets import DNS1123_SUBDOMAIN
from amtd.model.texts import clean_text

COMPONENT = "amtd-dead-letters"
BROKER_API_VERSION = "eventing.knative.dev/v1"
SECURITY_EVENTS_PATH = "/securityevents/"
MAX_RESPONSE_CHARS = 300
MAX_NAME_LENGTH = 253
# As shown: the type, source and destination, the id (ours list targets) and the status code;
# together they fit the 1024 characters of an Event message with the response.
MAX_SHOWN_CHARS = 128
MAX_ID_CHARS = 256
MAX_CODE_CHARS = 16
# amtd.model.actionevents names the types, but loads pydantic: this function must not.
ACTION_TYPE_PREFIX = "com.r6security.amtd.action."
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
    is_action: bool = False  # an action event: its steps must be the SecurityEvent's
    steps: tuple[tuple[str, str], ...] = ()  # (stepId, target) the action event names
    security_event_uid: str | None = None  # the uid its data names, if any


def read_dead_letter(attributes: Mapping[str, Any], data: Any = None) -> DeadLetter:
    """The facts of a dead-lettered CloudEvent, from its attributes (and an action event's data),
    every string cut and cleaned of control characters."""
    event_type = str(attributes.get("type", ""))
    reference = data.get("securityEvent") if isinstance(data, Mapping) else None
    uid = reference.get("uid") if isinstance(reference, Mapping) else None
    return DeadLetter(
        event_type=clean_text(event_type, MAX_SHOWN_CHARS),
        event_id=clean_text(str(attributes.get("id", "")), MAX_ID_CHARS),
        source=clean_text(str(attributes.get("source", "")), MAX_SHOWN_CHARS),
        destination=clean_text(str(attributes.get("knativeerrordest") or UNKNOWN), MAX_SHOWN_CHARS),
        code=clean_text(str(attributes.get("knativeerrorcode") or UNKNOWN), MAX_CODE_CHARS),
        response=decode_error_data(attributes.get("knativeerrordata")),
        security_event=find_security_event_name(attributes),
        is_action=event_type.startswith(ACTION_TYPE_PREFIX),
        steps=read_named_steps(data),
        security_event_uid=clean_text(uid, MAX_NAME_LENGTH) if isinstance(uid, str) else None,
    )


def read_named_steps(data: Any) -> tuple[tuple[str, str], ...]:
    """``(stepId, target)`` of an action event's ``steps`` (requested) or ``executions``
    (completed); an item that is not one makes the whole claim unreadable (empty)."""
    items = data.get("steps") or data.get("executions") if isinstance(data, Mapping) else None
    if not isinstance(items, list):
        return ()
    named = [(item.get("stepId"), item.get("target")) for item in items if isinstance(item, dict)]
    if len(named) != len(items) or not all(isinstance(a, str) and isinstance(b, str)
                                           for a, b in named):  # fmt: skip
        return ()
    return tuple((str(step), str(target)) for step, target in named)


def verify_dead_letter(letter: DeadLetter, found: Mapping[str, Any] | None) -> str | None:
    """None when the cluster confirms what the letter says about its SecurityEvent (``found``,
    as read now), else what it could not confirm."""
    name = letter.security_event
    if found is None:
        return f"SecurityEvent {name} does not exist"
    if not letter.is_action:
        return None
    uid = (found.get("metadata") or {}).get("uid")
    if letter.security_event_uid is not None and letter.security_event_uid != uid:
        return f"SecurityEvent {name} is uid {uid}, not {letter.security_event_uid}"
    if not letter.steps:
        return "the action event names no step"
    decisions = (found.get("status") or {}).get("decisions") or []
    decided = {(item.get("stepId"), item.get("target")) for item in decisions
               if isinstance(item, dict)}  # fmt: skip
    for step, target in letter.steps:
        if (step, target) not in decided:
            shown = clean_text(f"{step} ({target})", 2 * MAX_NAME_LENGTH)
            return f"step {shown} is not in the status of SecurityEvent {name}"
    return None


def decode_error_data(value: Any) -> str:
    """The failed response's body from base64, shortened; raw text if it is not base64."""
    if not value:
        return ""
    text = str(value)
    with contextlib.suppress(binascii.Error, ValueError):  # not base64: keep what was sent
        text = base64.b64decode(text, validate=True).decode("utf-8", errors="replace")
    return clean_text(" ".join(text.split()), MAX_RESPONSE_CHARS)


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
    letter: DeadLetter, involved: Mapping[str, str], now: str, unverified: str | None = None
) -> dict[str, Any]:
    """The Warning Event (reason DeadLetter); the same dead letter always gets the same name.

    It lives in the involved object's namespace; for a SecurityEvent (cluster-scoped) that is
    ``default``, the only namespace the API server accepts for such Events. ``unverified`` says
    what the cluster did not confirm (the message then starts with it).
    """
    key = "/".join((letter.source, letter.event_id, letter.destination, letter.code))
    message = describe_dead_letter(letter)
    if unverified is not None:
        message = f"unverified ({unverified}): {message}"
    return make_kube_event(
        involved, namespace=involved.get("namespace") or CLUSTER_SCOPED_EVENTS_NAMESPACE,
        reason="DeadLetter", message=message, key=key, component=COMPONENT,
        now=now, event_type="Warning",
    )  # fmt: skip
