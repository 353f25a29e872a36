"""Dead letters end to end over real HTTP: the broker hands them to the real dead-letters function,
which records them in the API stand-in, with and without Knative's error extensions."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent

from amtd_stack.eventing.brokers import TriggerRoute
from amtd_stack.eventing.deliveries import DeliverySpec
from amtd_stack.eventing.filtering import compile_trigger_filter
from amtd_stack.running.kubeclients import find_resource
from support.builders import create_security_event
from support.functions import serve_function
from support.receivers import Answer, Receiver, answers
from support.waiting import wait_until

from .conftest import RunningBroker, StandIn

ADD = "dev.knative.apiserver.resource.add"
SECURITY_EVENT = ("amtd.r6security.com/v1beta1", "SecurityEvent")
QUICK = DeliverySpec(retry=1, backoff_delay_s=0.01, timeout_s=1.0)


@pytest.fixture
def dead_letters_url(stand_in: StandIn) -> Iterator[str]:
    """The dead-letters function as its own process, recording into the stand-in."""
    env = {"KUBECONFIG": str(stand_in.kubeconfig), "AMTD_NAMESPACE": "amtd-system"}
    with serve_function("dead-letters", env) as url:
        yield url


def post_add_event(url: str, obj: dict[str, Any], **extensions: str) -> int:
    """POST the add event an ApiServerSource sends for a cluster-scoped SecurityEvent."""
    name = obj["metadata"]["name"]
    attributes = {
        "type": ADD,
        "source": "https://10.96.0.1:443",
        "id": f"add-{name}",
        "subject": f"/apis/{SECURITY_EVENT[0]}/namespaces//securityevents/{name}",
        "datacontenttype": "application/json",
        "kind": SECURITY_EVENT[1],
        "apiversion": SECURITY_EVENT[0],
        "name": name,
        "namespace": "",
        **extensions,
    }
    headers, body = to_binary(CloudEvent(attributes, json.dumps(obj).encode()))
    return requests.post(url, headers=headers, data=body, timeout=10).status_code


def dead_letter_events(stand_in: StandIn, name: str) -> list[dict[str, Any]]:
    """DeadLetter Events about SecurityEvent ``name`` (kept in ``default``)."""
    events = find_resource(stand_in.client, "v1", "Event")
    listed = stand_in.client.get(events, namespace="default").to_dict()["items"]
    return [
        e for e in listed if e["reason"] == "DeadLetter" and e["involvedObject"]["name"] == name
    ]


def start_matcher_route(
    broker: Callable[..., RunningBroker], subscriber: Receiver, sink_url: str
) -> RunningBroker:
    """A broker whose one Trigger sends SecurityEvent add events to ``subscriber``."""
    spec = {"filters": [{"exact": {"type": ADD, "kind": SECURITY_EVENT[1]}}]}
    only = compile_trigger_filter(spec)
    return broker(
        [TriggerRoute("amtd-system", "t", "default", only, subscriber.url, QUICK, sink_url)]
    )


def test_timed_out_add_event_is_recorded_without_error_extensions(
    stand_in: StandIn,
    dead_letters_url: str,
    broker: Callable[..., RunningBroker],
    receiver: Callable[..., Receiver],
) -> None:
    obj = create_security_event(stand_in.cluster, "sev-timeout")
    running = start_matcher_route(broker, receiver(answers(Answer(stall=True))), dead_letters_url)
    assert post_add_event(running.url, obj) == 202
    assert wait_until(lambda: dead_letter_events(stand_in, "sev-timeout") != [], 20)
    assert running.router.wait_idle(15) and running.router.dead_letters == []  # sink took it
    (event,) = dead_letter_events(stand_in, "sev-timeout")
    assert event["involvedObject"]["uid"] == obj["metadata"]["uid"]
    assert f"{ADD} event add-sev-timeout" in event["message"]
    assert "the broker reported no error" in event["message"]


def test_original_of_a_refused_reply_is_recorded_naming_the_broker(
    stand_in: StandIn,
    dead_letters_url: str,
    broker: Callable[..., RunningBroker],
    receiver: Callable[..., Receiver],
) -> None:
    obj = create_security_event(stand_in.cluster, "sev-reply")
    reply = CloudEvent({"type": "com.example.reply.v1", "source": "/matcher", "id": "reply-1"}, {})
    headers, body = to_binary(reply)
    replier = receiver(answers(Answer(200, {k: str(v) for k, v in headers.items()}, body)))
    running = start_matcher_route(broker, replier, dead_letters_url)
    # the last hop of a loop: stored with TTL 1, so the broker refuses the reply (TTL 0)
    assert post_add_event(running.url, obj, knativebrokerttl="2") == 202
    assert wait_until(lambda: dead_letter_events(stand_in, "sev-reply") != [], 20)
    assert running.router.wait_idle(15) and running.router.dead_letters == []
    (event,) = dead_letter_events(stand_in, "sev-reply")
    assert event["involvedObject"]["uid"] == obj["metadata"]["uid"]
    assert f"{ADD} event add-sev-reply" in event["message"]  # the original, not reply-1
    assert f"was not delivered to {running.url}: HTTP 400" in event["message"]
    assert "knativebrokerttl exhausted" in event["message"]
