"""The broker over real HTTP: ingress, fan-out, retries, timeouts, dead letters, replies, TTL.

Dead letters follow Knative's MT channel-based broker: ``knativeerror*`` extensions only when
its broker-filter could report an answer (or an unreachable subscriber, as a 500), and the
ORIGINAL event when the broker refuses a reply.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import pytest
import requests
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent

from amtd_stack.eventing.brokers import TriggerRoute
from amtd_stack.eventing.deliveries import DeliverySpec
from amtd_stack.eventing.filtering import compile_trigger_filter
from amtd_stack.running.receivers import Received
from support.receivers import Answer, Receiver, answers
from support.waiting import wait_until

from .conftest import RunningBroker

FAST = DeliverySpec(retry=2, backoff_policy="linear", backoff_delay_s=0.01, timeout_s=5.0)
TYPE = "com.example.test.v1"
ERROR_EXTENSIONS = ("ce-knativeerrordest", "ce-knativeerrorcode", "ce-knativeerrordata")


def route(name: str, url: str, event_type: str = TYPE, **kwargs: object) -> TriggerRoute:
    """A route for ``amtd-system/default`` filtering on one event type ("": every event)."""
    spec = {"filters": [{"exact": {"type": event_type}}]} if event_type else {}
    options: dict[str, object] = {"delivery": FAST, **kwargs}
    return TriggerRoute(
        "amtd-system",
        name,
        "default",
        compile_trigger_filter(spec),
        url,
        **options,  # type: ignore[arg-type]
    )


def post_event(url: str, event_type: str = TYPE, event_id: str = "e-1", **extensions: str) -> int:
    """POST a binary-mode CloudEvent; returns the HTTP status."""
    attributes = {"type": event_type, "source": "/tests", "id": event_id, **extensions}
    event = CloudEvent({**attributes, "datacontenttype": "application/json"}, {"n": 1})
    headers, body = to_binary(event)
    return requests.post(url, headers=headers, data=body, timeout=10).status_code


def ce_reply(event_type: str, event_id: str = "r-1") -> Answer:
    """A 200 answer carrying a binary CloudEvent."""
    event = CloudEvent(
        {
            "type": event_type,
            "source": "/reply",
            "id": event_id,
            "datacontenttype": "application/json",
        },
        {"reply": True},
    )
    headers, body = to_binary(event)
    return Answer(200, {k: str(v) for k, v in headers.items()}, body)


def error_extensions(headers: dict[str, str]) -> list[str]:
    """The knativeerror* headers a dead letter carries."""
    return [name for name in ERROR_EXTENSIONS if name in headers]


def test_ingress_accepts_binary_and_structured_and_delivers(
    broker: Callable[..., RunningBroker], receiver: Callable[..., Receiver]
) -> None:
    subscriber = receiver()
    running = broker([route("t", subscriber.url)])
    assert post_event(running.url) == 202
    structured = CloudEvent(
        {"type": TYPE, "source": "/s", "id": "e-2", "datacontenttype": "text/plain"}, "hi"
    )
    headers, body = to_structured(structured)
    assert requests.post(running.url, headers=headers, data=body, timeout=10).status_code == 202
    assert wait_until(lambda: len(subscriber.requests) == 2)
    first, second = sorted(subscriber.requests, key=lambda r: r.headers["ce-id"])
    assert json.loads(first.body) == {"n": 1}
    assert second.body == b"hi" and second.headers["content-type"] == "text/plain"
    assert first.headers["prefer"] == "reply" and first.headers["kn-namespace"] == "amtd-system"
    assert "ce-knativearrivaltime" in first.headers
    assert "ce-knativebrokerttl" not in first.headers


def test_an_empty_extension_reaches_the_subscriber_empty(
    broker: Callable[..., RunningBroker], receiver: Callable[..., Receiver]
) -> None:
    subscriber = receiver()
    running = broker([route("t", subscriber.url)])
    assert post_event(running.url, namespace="") == 202  # as for a cluster-scoped object
    assert wait_until(lambda: len(subscriber.requests) == 1)
    assert subscriber.requests[0].headers["ce-namespace"] == ""


def test_ingress_refuses_non_events_and_unknown_brokers(
    broker: Callable[..., RunningBroker],
) -> None:
    running = broker([])
    plain = requests.post(running.url, json={"not": "an event"}, timeout=10)
    assert plain.status_code == 400 and "not a CloudEvent" in plain.text
    missing = requests.post(
        running.url, headers={"ce-specversion": "1.0", "ce-type": "t"}, timeout=10
    )
    assert missing.status_code == 400 and "id" in missing.text
    assert post_event(running.ingress.broker_url("amtd-system", "nope")) == 404
    assert requests.get(running.url, timeout=10).status_code == 405


def test_only_matching_triggers_get_the_event(
    broker: Callable[..., RunningBroker], receiver: Callable[..., Receiver]
) -> None:
    wanted, other = receiver(), receiver()
    running = broker([route("a", wanted.url), route("b", other.url, event_type="other.type")])
    post_event(running.url)
    assert running.router.wait_idle(15)
    assert len(wanted.requests) == 1 and other.requests == []


def test_multi_pair_exact_filter_needs_every_pair(
    broker: Callable[..., RunningBroker], receiver: Callable[..., Receiver]
) -> None:
    subscriber = receiver()
    spec = {"filters": [{"exact": {"type": TYPE, "kind": "SecurityEvent"}}]}
    multi = compile_trigger_filter(spec)
    running = broker([TriggerRoute("amtd-system", "t", "default", multi, subscriber.url, FAST)])
    post_event(running.url, event_id="both", kind="SecurityEvent")
    post_event(running.url, event_id="type-only", kind="Pod")
    post_event(running.url, event_type="other.type", event_id="kind-only", kind="SecurityEvent")
    assert running.router.wait_idle(15)
    assert [r.headers["ce-id"] for r in subscriber.requests] == ["both"]


def test_retries_retryable_statuses_until_success(
    broker: Callable[..., RunningBroker], receiver: Callable[..., Receiver]
) -> None:
    flaky = receiver(answers(Answer(503), Answer(429), Answer(204)))
    running = broker([route("t", flaky.url)])
    post_event(running.url)
    assert running.router.wait_idle(15)
    attempts = running.router.attempts.snapshot()
    assert [a.status for a in attempts] == [503, 429, 204]
    assert [a.final for a in attempts] == [False, False, True]
    assert running.router.dead_letters == []


def test_final_failure_goes_to_dead_letter_sink_with_error_extensions(
    broker: Callable[..., RunningBroker], receiver: Callable[..., Receiver]
) -> None:
    failing = receiver(answers(Answer(500, body=b"boom")))
    sink = receiver()
    running = broker([route("t", failing.url, dead_letter_url=sink.url)])
    post_event(running.url)
    assert running.router.wait_idle(15)
    assert len(failing.requests) == 3  # first attempt + retry: 2
    (letter,) = sink.requests
    assert letter.headers["ce-knativeerrordest"] == failing.url
    assert letter.headers["ce-knativeerrorcode"] == "500"
    assert base64.b64decode(letter.headers["ce-knativeerrordata"]) == b"boom"
    assert letter.headers["ce-id"] == "e-1"


def test_non_retryable_status_fails_at_once_into_dead_letters_list(
    broker: Callable[..., RunningBroker], receiver: Callable[..., Receiver]
) -> None:
    refusing = receiver(answers(Answer(400, body=b'{"error": "bad"}')))
    running = broker([route("t", refusing.url)])
    post_event(running.url)
    assert running.router.wait_idle(15)
    assert len(refusing.requests) == 1
    (letter,) = running.router.dead_letters
    assert letter.trigger == "amtd-system/t" and letter.status == 400
    assert letter.event["knativeerrorcode"] == "400"


def test_timeout_is_retried_then_dead_lettered_without_error_extensions(
    broker: Callable[..., RunningBroker], receiver: Callable[..., Receiver]
) -> None:
    stalled = receiver(answers(Answer(stall=True)))
    sink = receiver()
    slow = DeliverySpec(retry=1, backoff_delay_s=0.01, timeout_s=0.2)
    running = broker([route("t", stalled.url, delivery=slow, dead_letter_url=sink.url)])
    post_event(running.url)
    assert wait_until(lambda: len(sink.requests) == 1)
    assert [a.status for a in running.router.attempts.snapshot()[:2]] == [None, None]
    letter = sink.requests[0]
    assert letter.headers["ce-id"] == "e-1" and json.loads(letter.body) == {"n": 1}
    assert error_extensions(letter.headers) == []


def test_dropped_connection_is_retried_then_dead_lettered_as_a_dispatch_error(
    broker: Callable[..., RunningBroker], receiver: Callable[..., Receiver]
) -> None:
    dropping = receiver(answers(Answer(drop=True)))
    sink = receiver()
    running = broker([route("t", dropping.url, dead_letter_url=sink.url)])
    post_event(running.url)
    assert wait_until(lambda: len(sink.requests) == 1)
    assert len(dropping.requests) == 3  # no response is retried
    assert {a.status for a in running.router.attempts.snapshot()[:3]} == {None}
    letter = sink.requests[0].headers
    assert (letter["ce-id"], letter["ce-knativeerrordest"]) == ("e-1", dropping.url)
    assert letter["ce-knativeerrorcode"] == "500"  # what Knative's broker-filter answers then
    assert base64.b64decode(letter["ce-knativeerrordata"]).startswith(b"dispatch error: ")


@pytest.mark.parametrize("status", [200, 201, 202])
def test_non_cloudevent_2xx_body_is_a_502_failure(
    status: int, broker: Callable[..., RunningBroker], receiver: Callable[..., Receiver]
) -> None:
    chatty = receiver(answers(Answer(status, {"Content-Type": "text/html"}, b"OK")))
    sink = receiver()
    running = broker([route("t", chatty.url, dead_letter_url=sink.url)])
    post_event(running.url)
    assert running.router.wait_idle(15)
    assert len(chatty.requests) == 3  # 502 is retried
    assert {a.status for a in running.router.attempts.snapshot()[:3]} == {502}
    (letter,) = sink.requests
    assert letter.headers["ce-id"] == "e-1" and error_extensions(letter.headers) == []


def test_malformed_cloudevent_reply_is_a_502_failure_and_the_original_is_dead_lettered(
    broker: Callable[..., RunningBroker], receiver: Callable[..., Receiver]
) -> None:
    broken = Answer(200, {"ce-specversion": "1.0", "ce-type": "t"}, b"{}")  # no id, no source
    replier = receiver(answers(broken))
    running = broker([route("t", replier.url)])
    post_event(running.url)
    assert running.router.wait_idle(15)
    assert len(replier.requests) == 3
    (letter,) = running.router.dead_letters
    assert (letter.event["id"], letter.status) == ("e-1", 502)
    assert "knativeerrorcode" not in letter.event.get_attributes()


@pytest.mark.parametrize("answer", [Answer(204), Answer(200), Answer(202)])
def test_empty_2xx_is_success_without_a_reply(
    answer: Answer, broker: Callable[..., RunningBroker], receiver: Callable[..., Receiver]
) -> None:
    quiet = receiver(answers(answer))
    everyone = receiver()
    running = broker([route("t", quiet.url), route("all", everyone.url, event_type="")])
    post_event(running.url)
    assert running.router.wait_idle(15)
    assert len(quiet.requests) == 1 and running.router.dead_letters == []
    assert [r.headers["ce-id"] for r in everyone.requests] == ["e-1"]  # nothing published


def test_reply_is_republished_to_the_same_broker(
    broker: Callable[..., RunningBroker], receiver: Callable[..., Receiver]
) -> None:
    replier = receiver(answers(ce_reply("com.example.reply.v1")))
    downstream = receiver()
    running = broker(
        [
            route("first", replier.url),
            route("second", downstream.url, event_type="com.example.reply.v1"),
        ]
    )
    post_event(running.url)
    assert wait_until(lambda: len(downstream.requests) == 1)
    reply = downstream.requests[0]
    assert reply.headers["ce-source"] == "/reply" and json.loads(reply.body) == {"reply": True}
    assert "ce-knativebrokerttl" not in reply.headers
    assert running.router.dead_letters == []


def test_accepted_202_with_body_is_not_a_reply(
    broker: Callable[..., RunningBroker], receiver: Callable[..., Receiver]
) -> None:
    reply = ce_reply(TYPE)
    accepting = receiver(answers(Answer(202, reply.headers, reply.body)))
    running = broker([route("t", accepting.url)])
    post_event(running.url)
    assert running.router.wait_idle(15)
    assert len(accepting.requests) == 1 and running.router.dead_letters == []


def numbered_reply(received: Received, number: int) -> Answer:
    """Reply with the subscribed type (a loop), a new id each time: r-1, r-2, ..."""
    return ce_reply(TYPE, f"r-{number}")


def test_ttl_ends_a_reply_loop_with_the_original_dead_lettered(
    broker: Callable[..., RunningBroker], receiver: Callable[..., Receiver]
) -> None:
    echo = receiver(numbered_reply)
    sink = receiver()
    running = broker([route("loop", echo.url, dead_letter_url=sink.url)])
    assert post_event(running.url, knativebrokerttl="3") == 202  # stored with TTL 2
    assert wait_until(lambda: len(sink.requests) == 1)
    assert running.router.wait_idle(15)
    assert [r.headers["ce-id"] for r in echo.requests] == ["e-1", "r-1"]  # TTL 2, then 1
    letter = sink.requests[0].headers
    assert letter["ce-id"] == "r-1"  # the event delivered last, not its refused reply r-2
    assert letter["ce-knativeerrordest"] == running.url  # the broker refused to store it
    assert letter["ce-knativeerrorcode"] == "400"
    assert b"knativebrokerttl" in base64.b64decode(letter["ce-knativeerrordata"])
    assert "ce-knativebrokerttl" not in letter


def test_ingress_refuses_an_event_whose_ttl_is_spent(
    broker: Callable[..., RunningBroker], receiver: Callable[..., Receiver]
) -> None:
    subscriber = receiver()
    running = broker([route("t", subscriber.url)])
    event = CloudEvent({"type": TYPE, "source": "/tests", "id": "e-1", "knativebrokerttl": "1"})
    headers, body = to_binary(event)
    answer = requests.post(running.url, headers=headers, data=body, timeout=10)
    assert answer.status_code == 400 and "knativebrokerttl exhausted" in answer.text
    assert running.router.wait_idle(15) and subscriber.requests == []


def test_default_ttl_is_255(
    broker: Callable[..., RunningBroker], receiver: Callable[..., Receiver]
) -> None:
    replier = receiver(answers(ce_reply("com.example.reply.v1")))
    running = broker([route("first", replier.url)])
    seen: list[str] = []
    original = running.router.publish

    def spy(namespace: str, name: str, event: CloudEvent) -> None:
        seen.append(str(event["knativebrokerttl"]))
        original(namespace, name, event)

    running.router.publish = spy  # type: ignore[method-assign]
    post_event(running.url)
    assert wait_until(lambda: len(seen) == 2)
    assert seen == ["255", "254"]


def test_backoff_waits_at_least_the_exponential_delay(
    broker: Callable[..., RunningBroker], receiver: Callable[..., Receiver]
) -> None:
    failing = receiver(answers(Answer(503)))
    spaced = DeliverySpec(retry=2, backoff_policy="exponential", backoff_delay_s=0.05)
    running = broker([route("t", failing.url, delivery=spaced)])
    post_event(running.url)
    assert running.router.wait_idle(15)
    first, second, third = (a.at for a in running.router.attempts.snapshot())
    assert second - first >= 0.1  # delay * 2^1 (a lower bound: load only makes it longer)
    assert third - second >= 0.2  # delay * 2^2
