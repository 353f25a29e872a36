"""KubeArmor → quarantine, then ``amtd release`` (delete) and ``amtd release --restore``.

A quarantined pod keeps running, isolated by a deny-all NetworkPolicy, with its labels moved
into an annotation, so its ReplicaSet lets go and starts a clean replacement. Releasing deletes
the pod and the policy; restoring gives the labels back. Both are recorded on the SecurityEvent.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from amtd.act.quarantine.quarantining import QUARANTINE_LABEL, QUARANTINED_LABELS
from amtd.kube.api import NETWORK_POLICIES, PODS, SECURITY_EVENTS
from support.builders import create_policy, kubearmor_alert
from support.stacks import (
    PKG_POLICY,
    LiveStack,
    create_workload,
    is_gone,
    pick,
    wait_for_executions,
    wait_for_running,
    wait_for_security_event,
    wait_past_creation_second,
)

pytestmark = pytest.mark.e2e
NAMESPACE = "quarantine"


def quarantine(live: LiveStack, pod: str) -> tuple[dict[str, Any], str]:
    """Send a KubeArmor alert about ``pod``; its SecurityEvent and policy name once isolated."""
    answer = live.post_alert(
        "ingest-kubearmor", json.dumps(kubearmor_alert(NAMESPACE, pod, at=datetime.now(UTC)))
    )
    assert answer.status_code == 201, answer.text
    event = wait_for_security_event(live.cluster, f"{NAMESPACE}/{pod}")
    event = wait_for_executions(live.cluster, event["metadata"]["name"])
    (execution,) = event["status"]["executions"]
    expected = ("quarantine", "Succeeded", "PodQuarantined")
    assert pick(execution, "action", "result", "reason") == expected
    return event, quarantine_name(live, pod)


def quarantine_name(live: LiveStack, pod: str) -> str:
    """The pod's quarantine label: also the name of its NetworkPolicy."""
    return str(live.cluster.get(PODS, pod, NAMESPACE)["metadata"]["labels"][QUARANTINE_LABEL])


def assert_isolated(live: LiveStack, pod: str, policy: str, labels: dict[str, str]) -> None:
    """Deny-all policy selecting only this pod; labels moved; the pod still Running."""
    network_policy = live.cluster.get(NETWORK_POLICIES, policy, NAMESPACE)
    assert network_policy["spec"]["podSelector"] == {"matchLabels": {QUARANTINE_LABEL: policy}}
    assert sorted(network_policy["spec"]["policyTypes"]) == ["Egress", "Ingress"]
    assert not network_policy["spec"].get("ingress") and not network_policy["spec"].get("egress")
    found = live.cluster.get(PODS, pod, NAMESPACE)
    assert found["metadata"]["labels"] == {QUARANTINE_LABEL: policy}
    assert json.loads(found["metadata"]["annotations"][QUARANTINED_LABELS]) == labels
    assert found["status"]["phase"] == "Running" and not found["metadata"].get("deletionTimestamp")


def release_records(live: LiveStack, name: str) -> list[tuple[Any, ...]]:
    """(result, reason) of the release executions on a SecurityEvent."""
    executions = live.cluster.get(SECURITY_EVENTS, name)["status"]["executions"]
    return [pick(e, "result", "reason") for e in executions if e["action"] == "release"]


def release(live: LiveStack, pod: str, *options: str) -> str:
    """``amtd release NAMESPACE/POD [options]``; its output. The NetworkPolicy must be gone."""
    policy = quarantine_name(live, pod)
    told = live.amtd("release", f"{NAMESPACE}/{pod}", *options).stdout
    assert live.cluster.find(NETWORK_POLICIES, policy, NAMESPACE) is None
    return told


def test_quarantine_isolates_then_release_deletes_and_restore_gives_labels_back(
    live: LiveStack,
) -> None:
    pods = create_workload(live.cluster, NAMESPACE, "web")
    rule = {"type": PKG_POLICY, "source": "KubeArmorIntegrator"}
    create_policy(live.cluster, NAMESPACE, [(rule, "quarantine")])
    wait_past_creation_second(pods)  # so replacements are newer than the restored pod
    released, restored = (pod["metadata"]["name"] for pod in pods)
    original = {pod["metadata"]["name"]: pod["metadata"]["labels"] for pod in pods}

    events = {}
    for pod in (released, restored):
        events[pod], policy = quarantine(live, pod)
        assert_isolated(live, pod, policy, original[pod])
    wait_for_running(live.cluster, NAMESPACE, "web", 2, excluding=[released, restored])

    assert release(live, released).startswith("Released:")
    assert is_gone(live.cluster, NAMESPACE, released)
    name = events[released]["metadata"]["name"]
    assert release_records(live, name) == [("Succeeded", "Released")]

    assert release(live, restored, "--restore").startswith("Restored:")
    assert live.cluster.get(PODS, restored, NAMESPACE)["metadata"]["labels"] == original[restored]
    name = events[restored]["metadata"]["name"]
    assert release_records(live, name) == [("Succeeded", "Restored")]
    # Adopted again by its ReplicaSet, it serves; the surplus (newest) replacement goes.
    serving = wait_for_running(live.cluster, NAMESPACE, "web", 2)
    assert restored in {pod["metadata"]["name"] for pod in serving}
