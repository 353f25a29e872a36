"""Security end to end: no token no event, a storm is one event, system pods are never touched."""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from amtd.kube.api import PODS
from amtd_stack.apiserver import RequestRecord
from support.builders import SHELL_RULE, create_policy, falco_alert, kubearmor_alert
from support.stacks import (
    INGESTERS,
    LiveStack,
    create_workload,
    falcosidekick_cloudevent,
    pick,
    security_events_for,
    wait_for,
    wait_for_executions,
    wait_for_security_event,
)

pytestmark = pytest.mark.e2e
STORM = 200


def refused_alerts(live: LiveStack, namespace: str, pod: str) -> list[int]:
    """Every way of sending an alert without the right token; the answers."""
    bodies = {
        "ingest-falco": json.dumps(falco_alert(namespace, pod, at=datetime.now(UTC))),
        "ingest-kubearmor": json.dumps(kubearmor_alert(namespace, pod, at=datetime.now(UTC))),
    }
    answers = [
        live.post_alert(function, body, authorization=authorization)
        for authorization in ("", "Bearer wrong-token", f"Basic {live.token}", "Bearer ")
        for function, body in bodies.items()
    ]
    assert all(a.headers.get("WWW-Authenticate", "").startswith("Bearer") for a in answers)
    return [a.status_code for a in answers]


def test_alerts_without_the_right_token_create_nothing(live: LiveStack) -> None:
    namespace = "security-auth"
    (pod,) = create_workload(live.cluster, namespace, "web", replicas=1)
    create_policy(live.cluster, namespace, [({"type": SHELL_RULE}, "delete")])
    name = pod["metadata"]["name"]
    seen = len(live.api_calls())

    assert refused_alerts(live, namespace, name) == [401] * 8
    headers, body = falcosidekick_cloudevent(
        falco_alert(namespace, name, at=datetime.now(UTC), uuid="forged-1"), "wrong"
    )
    assert live.post_to_broker(headers, body).status_code == 202  # the Broker accepts anything
    refused = wait_for(
        lambda: live.deliveries("forged-1", "amtd-system/ingest-falco-cloudevents"),
        "the forged CloudEvent to reach ingest-falco",
    )
    assert [(a.status, a.final) for a in refused] == [(401, True)]  # a 4xx is not retried
    assert live.stack.wait_idle(20)

    assert security_events_for(live.cluster, f"{namespace}/{name}") == []
    assert [r for r in live.api_calls(seen) if r.user in INGESTERS] == []  # no API call at all
    assert live.cluster.get(PODS, name, namespace)["metadata"]["uid"] == pod["metadata"]["uid"]


def test_a_storm_of_identical_alerts_makes_one_security_event(live: LiveStack) -> None:
    namespace = "security-storm"
    (pod,) = create_workload(live.cluster, namespace, "web", replicas=1)
    target = f"{namespace}/{pod['metadata']['name']}"
    alert = json.dumps(falco_alert(namespace, pod["metadata"]["name"], at=datetime.now(UTC)))

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda _: live.post_alert("ingest-falco", alert), range(STORM)))

    assert Counter(a.status_code for a in answers) == {201: 1, 200: STORM - 1}
    assert Counter(a.json()["result"] for a in answers) == {"created": 1, "duplicate": STORM - 1}
    assert len({a.json()["name"] for a in answers}) == 1
    assert live.stack.wait_idle(20)
    (event,) = security_events_for(live.cluster, target)
    assert event["metadata"]["name"] == answers[0].json()["name"]


def test_alert_in_a_protected_namespace_is_recorded_but_the_pod_is_not_touched(
    live: LiveStack,
) -> None:
    namespace = "kube-system"
    (pod,) = create_workload(live.cluster, namespace, "dns", replicas=1)
    create_policy(live.cluster, namespace, [({"type": SHELL_RULE}, "delete")])
    name = pod["metadata"]["name"]
    seen = len(live.api_calls())

    answer = live.post_alert(
        "ingest-falco", json.dumps(falco_alert(namespace, name, at=datetime.now(UTC)))
    )

    assert answer.status_code == 201, answer.text
    event = wait_for_security_event(live.cluster, f"{namespace}/{name}")
    status = wait_for_executions(live.cluster, event["metadata"]["name"])["status"]
    (execution,) = status["executions"]
    expected = ("delete", "Skipped", "ProtectedNamespace")
    assert pick(execution, "action", "result", "reason") == expected
    assert live.stack.wait_idle(20)
    kept = live.cluster.get(PODS, name, namespace)
    assert kept["metadata"]["uid"] == pod["metadata"]["uid"]
    assert not kept["metadata"].get("deletionTimestamp")
    assert kept["metadata"]["labels"] == pod["metadata"]["labels"]
    touched = [(r.user, r.verb) for r in live.api_calls(seen) if is_pod_write(r, namespace)]
    assert touched == []


def is_pod_write(record: RequestRecord, namespace: str) -> bool:
    """A request that changes a pod in ``namespace``."""
    reads = ("get", "list", "watch")
    return (record.resource, record.namespace) == ("pods", namespace) and record.verb not in reads
