"""Delivering one event to one subscriber: HTTP attempts, retries with backoff, dead letters.

Every attempt is recorded in an AttemptLog so tests and ``amtd up`` users can see exactly what
the broker did. Response interpretation (what counts as success, reply or failure) and the dead
letter a failure yields are pure, and follow Knative's MT channel-based broker: its dead letters
carry ``knativeerror*`` extensions only when its broker-filter could report the subscriber's
answer (or its unreachability, as a 500 "dispatch error"), never after a timeout or a 2xx that
is not a CloudEvent.
Attempts go over kept-alive connections (:mod:`amtd_stack.eventing.connections`) when the caller
gives
a pool, as the broker and sources do.
"""

from __future__ import annotations

import base64
import http.client
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial

from cloudevents.http import CloudEvent

from amtd_stack.eventing.connections import ConnectionPool
from amtd_stack.eventing.deliveries import DeliverySpec, compute_backoff, is_retryable
from amtd_stack.eventing.messages import (
    EventError,
    copy_event,
    encode_binary,
    is_cloudevent_message,
)
from amtd_stack.eventing.messages import parse_event as parse_message
from amtd_stack.journals import Journal

LOG = logging.getLogger(__name__)
ERROR_DATA_BYTES = 768  # knativeerrordata: Knative keeps 1024 characters of base64, 768 bytes
BAD_GATEWAY = 502
DISPATCH_ERROR = 500  # Knative's code for a subscriber that gave no HTTP answer at all


@dataclass(frozen=True)
class DeliveryResult:
    """Outcome of one HTTP attempt: ok, the status (None = no response), any reply event.

    ``reported`` is False for failures Knative's broker dead-letters without ``knativeerror*``
    extensions: a timeout, a 2xx whose body is not a CloudEvent (its 502 has no body to report).
    """

    ok: bool
    status: int | None
    error: str = ""
    body: bytes = b""
    reply: CloudEvent | None = None
    reported: bool = True


@dataclass(frozen=True)
class DeliveryAttempt:
    """One recorded HTTP attempt to a subscriber or dead-letter sink."""

    subscriber: str
    url: str
    event_id: str
    event_type: str
    attempt: int
    status: int | None
    error: str
    final: bool
    at: float = field(default_factory=time.time)


AttemptLog = Journal[DeliveryAttempt]  # every HTTP attempt, oldest first


def interpret_response(status: int, headers: Mapping[str, str], body: bytes) -> DeliveryResult:
    """Classify a subscriber's answer the way the Knative broker does (pure).

    Any 2xx with a non-empty body that is not a CloudEvent fails as a 502 (202 included); a 2xx
    with a CloudEvent is a reply, except a 202 (accepted, never a reply); an empty 2xx is plain
    success; anything else fails with its own status.
    """
    if not 200 <= status < 300:
        return DeliveryResult(False, status, f"subscriber answered {status}", body)
    is_event = is_cloudevent_message(headers)
    if body and not is_event:
        return unreported_502(f"{status} answer's body is not a CloudEvent", body)
    if status == 202 or not is_event:
        return DeliveryResult(True, status, body=body)
    try:
        return DeliveryResult(True, status, body=body, reply=parse_message(headers, body))
    except EventError as error:
        return unreported_502(f"reply is not a valid CloudEvent: {error}", body)


def unreported_502(error: str, body: bytes) -> DeliveryResult:
    """A 2xx answer the broker cannot use: a retried 502 its dead letter does not describe."""
    return DeliveryResult(False, BAD_GATEWAY, error, body, reported=False)


def send_once(
    url: str, event: CloudEvent, timeout_s: float, extra_headers: Mapping[str, str],
    connections: ConnectionPool | None = None,
) -> DeliveryResult:  # fmt: skip
    """POST the event in binary mode once (on a kept-alive connection of ``connections``, else
    a new one) and classify the answer."""
    headers, body = encode_binary(event)
    headers.update(extra_headers)
    pool = connections or ConnectionPool(max_idle_s=0.0)
    try:
        answer = pool.post(url, body, headers, timeout_s)
    except TimeoutError:
        return DeliveryResult(False, None, f"no answer within {timeout_s:g}s", reported=False)
    except (OSError, http.client.HTTPException, ValueError) as error:
        return DeliveryResult(False, None, f"no response: {error or type(error).__name__}")
    finally:
        if connections is None:
            pool.close()
    return interpret_response(answer.status, answer.headers, answer.body)


Sender = Callable[[str, CloudEvent, float, Mapping[str, str]], DeliveryResult]


def make_sender(connections: ConnectionPool) -> Sender:
    """:func:`send_once` over the connections of ``connections``."""
    return partial(send_once, connections=connections)


@dataclass
class Delivery:
    """What to send where, under which delivery spec, logged as ``subscriber``."""

    subscriber: str
    url: str
    event: CloudEvent
    spec: DeliverySpec
    headers: Mapping[str, str] = field(default_factory=dict)


def deliver(
    delivery: Delivery,
    log: AttemptLog,
    stopping: threading.Event,
    sender: Sender = send_once,
) -> DeliveryResult:
    """Send with retries and backoff per the spec; return the last result."""
    spec = delivery.spec
    result = DeliveryResult(False, None, "not attempted")
    for attempt in range(spec.retry + 1):
        if attempt and stopping.wait(compute_backoff(spec, attempt)):
            return DeliveryResult(False, None, "stack stopping")
        result = sender(delivery.url, delivery.event, spec.timeout_s, delivery.headers)
        final = result.ok or not is_retryable(result.status) or attempt == spec.retry
        log.append(attempt_record(delivery, attempt + 1, result, final))
        if final:
            break
    return result


def attempt_record(
    delivery: Delivery, number: int, result: DeliveryResult, final: bool
) -> DeliveryAttempt:
    """The log entry for one attempt."""
    return DeliveryAttempt(
        subscriber=delivery.subscriber,
        url=delivery.url,
        event_id=str(delivery.event["id"]),
        event_type=str(delivery.event["type"]),
        attempt=number,
        status=result.status,
        error=result.error,
        final=final,
    )


def dead_letter_event(event: CloudEvent, destination: str, result: DeliveryResult) -> CloudEvent:
    """The event as sent to a dead-letter sink, with Knative's error extensions when the broker
    can report the failure: the answer's status and body, or a 500 "dispatch error" (pure)."""
    if not result.reported:
        return copy_event(event)
    code, evidence = result.status, result.body
    if code is None:
        code, evidence = DISPATCH_ERROR, f"dispatch error: {result.error}".encode()
    changes = {
        "knativeerrordest": destination,
        "knativeerrorcode": str(code),
        "knativeerrordata": base64.b64encode(evidence[:ERROR_DATA_BYTES]).decode(),
    }
    return copy_event(event, changes)
