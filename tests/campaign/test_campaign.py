"""The bad-input campaign: hypothesis against every function's HTTP entry point.

Every input is answered 4xx with a JSON ``{"error", "detail"}`` naming the problem, or handled
(2xx) — never a 5xx, never a crash; a 2xx with a body to a broker-facing function is a
CloudEvent. Then what the attack must not have achieved: no pod touched outside the defended
namespace, no policy reaching across namespaces. The counts per entry point are printed at the
end of the run (``campaign: matcher tried=N 5xx=0``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from amtd.kube.api import NETWORK_POLICIES, PODS, POLICIES, SECURITY_EVENTS
from amtd.kube.apierrors import InvalidError
from amtd.model.securityevents import SecurityEventStatus
from support.builders import SHELL_RULE, create_policy, create_security_event
from support.cloudevents import as_binary

from .conftest import World, record_answer
from .strategies import (
    Request,
    action_requests,
    apiserver_events,
    dead_letters,
    falco_requests,
    garbage,
    kubearmor_requests,
    pings,
)

CAMPAIGN = settings(
    max_examples=200, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)  # fmt: skip
BROKER_FACING = {"matcher", "executor-delete", "executor-quarantine", "dead-letters", "timer",
                 "sweeper"}  # fmt: skip
SEQUENCE = itertools.count()


def targets_of(world: World) -> list[str]:
    """The real pods, as targets."""
    pods = [*world.shop_pods, *world.protected_pods]
    return [f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in pods]


def requests_for(entry: str, world: World) -> st.SearchStrategy[Request]:
    """Hostile requests for one entry point (its own formats, then garbage)."""
    real = targets_of(world)
    own: dict[str, Callable[[], st.SearchStrategy[Request]]] = {
        "ingest-falco": lambda: falco_requests(real),
        "ingest-kubearmor": lambda: kubearmor_requests(real),
        "timer": lambda: pings("amtd-timer"),
        "sweeper": lambda: pings("amtd-sweeper"),
        "matcher": lambda: apiserver_events(world.event_names),
        "executor-delete": lambda: action_requests(world.event_names, world.event_uids, real),
        "executor-quarantine": lambda: action_requests(world.event_names, world.event_uids, real),
        "dead-letters": lambda: dead_letters(world.event_names),
    }
    return st.one_of(own[entry](), own[entry](), own[entry](), garbage())


def check_answer(entry: str, response: Any) -> None:
    """Never 5xx; errors name the problem; broker-facing 2xx bodies are CloudEvents."""
    record_answer(entry, response.status_code)
    text = response.get_data(as_text=True)[:500]
    assert response.status_code < 500, f"{entry}: {response.status_code} {text}"
    if response.status_code >= 400:
        document = response.get_json(silent=True)
        assert isinstance(document, dict), f"{entry}: {response.status_code} not JSON: {text}"
        assert document.get("error") and isinstance(document.get("detail"), str), text
    elif entry in BROKER_FACING and response.get_data():
        assert "ce-specversion" in response.headers, text  # case-insensitive


@pytest.mark.parametrize("entry", sorted(BROKER_FACING | {"ingest-falco", "ingest-kubearmor"}))
@CAMPAIGN
@given(data=st.data())
def test_every_input_is_answered_4xx_or_handled(world: World, entry: str, data: Any) -> None:
    request = data.draw(requests_for(entry, world))
    response = world.clients[entry].open(
        request.path, method=request.method, headers=request.headers, data=request.body
    )
    check_answer(entry, response)


@pytest.mark.parametrize("entry", sorted(BROKER_FACING))
@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (
            "application/cloudevents+json",
            b"\x80{}",
        ),  # not UTF-8 (was a 500: found by this campaign)
        ("application/cloudevents+json", b"\x00\x00\x00{"),  # looks like UTF-32, truncated
        ("application/cloudevents+json", b'{"specversion": "1.0", "id": '),  # truncated
    ],
)
def test_undecodable_cloudevents_are_a_400(
    world: World, entry: str, content_type: str, body: bytes
) -> None:
    response = world.clients[entry].post("/", data=body, headers={"Content-Type": content_type})
    check_answer(entry, response)
    assert response.status_code == 400


def pod_label_sets() -> st.SearchStrategy[dict[str, str]]:
    """podSelectors an attacker's policy might try: everything, the victim's labels, junk."""
    keys = st.sampled_from(["app", "mtdSecured", "pod-template-hash", "x"])
    values = st.sampled_from(["cart", "true", "coredns", ""])
    return st.just({}) | st.dictionaries(keys, values, max_size=3)


@CAMPAIGN
@given(
    selector=pod_label_sets(),
    rule=st.dictionaries(st.sampled_from(["type", "threatLevel", "source"]),
                         st.sampled_from(["default", "Terminal shell in container", "", "x"]),
                         max_size=3),
    action=st.sampled_from(["delete", "quarantine", "disable"]),
    victim=st.sampled_from(["shop", "kube-system"]),
)  # fmt: skip
def test_a_policy_never_reaches_across_namespaces(
    world: World, selector: dict[str, str], rule: dict[str, str], action: str, victim: str
) -> None:
    number = next(SEQUENCE)
    try:
        create_policy(world.cluster, "attacker", [(rule, action)], name=f"reach-{number}",
                      pod_selector=selector)  # fmt: skip
    except InvalidError:
        assume(False)  # the CRD refused it: it can reach nothing
    pods = world.shop_pods if victim == "shop" else world.protected_pods
    target = f"{victim}/{pods[0]['metadata']['name']}"
    created = create_security_event(world.cluster, f"reach-{number}", targets=[target],
                                    rule_type=SHELL_RULE)  # fmt: skip
    name = created["metadata"]["name"]
    try:
        response = world.clients["matcher"].post("/", **added_event(world, name))
        check_answer("matcher (cross-namespace policies)", response)
        status = SecurityEventStatus.model_validate(
            world.cluster.get(SECURITY_EVENTS, name).get("status") or {}
        )
        for decision in status.decisions:
            assert not (decision.policy or "").startswith("attacker/"), decision
    finally:
        world.cluster.delete(POLICIES, f"reach-{number}", "attacker")


def added_event(world: World, name: str) -> dict[str, Any]:
    """The ApiServerSource ``add`` event for a SecurityEvent, as request arguments."""
    obj = world.cluster.get(SECURITY_EVENTS, name)
    attributes = {"type": "dev.knative.apiserver.resource.add", "source": "https://10.96.0.1",
                  "id": f"add-{name}", "datacontenttype": "application/json",
                  "kind": "SecurityEvent", "name": name}  # fmt: skip
    headers, body = as_binary(attributes, obj)
    return {"headers": headers, "data": body}


def test_nothing_outside_the_defended_namespace_was_touched(world: World) -> None:
    for pod in world.protected_pods:
        meta = pod["metadata"]
        now = world.cluster.get(PODS, meta["name"], meta["namespace"])
        assert now["metadata"]["uid"] == meta["uid"]
        assert now["metadata"].get("labels") == meta.get("labels")
    for namespace in ("kube-system", "amtd-system", "attacker", "default"):
        assert world.cluster.list(NETWORK_POLICIES, namespace) == []
    writes = [
        record for record in world.server.requests
        if record.user == "campaign" and record.resource in ("pods", "networkpolicies")
        and record.verb in ("delete", "patch", "create", "update") and record.status < 300
    ]  # fmt: skip
    assert {record.namespace for record in writes} <= {"shop"}
