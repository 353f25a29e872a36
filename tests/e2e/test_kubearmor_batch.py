"""KubeArmor → NDJSON batch, as Fluent Bit's ``json_lines`` sends it, answered per line.

Two policy alerts about two pods become two SecurityEvents and two different actions (delete
and quarantine); a non-policy alert in the same batch is ignored and creates nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from amtd.act.quarantine.quarantining import QUARANTINE_LABEL
from amtd.kube.api import PODS
from support.builders import create_policy, kubearmor_alert
from support.stacks import (
    PKG_POLICY,
    LiveStack,
    create_workload,
    is_gone,
    pick,
    security_events_for,
    wait_for,
    wait_for_executions,
    wait_for_running,
)

pytestmark = pytest.mark.e2e
NAMESPACE = "kubearmor"
WRITE_POLICY = "audit-etc-passwd-write"
COUNTS = {"created": 2, "duplicate": 0, "ignored": 1, "rejected": 0, "failed": 0}


def ndjson_batch(deleted: str, isolated: str) -> str:
    """Two policy alerts and a SystemEvent, one JSON object per line."""
    system_event = kubearmor_alert(NAMESPACE, deleted, at=datetime.now(UTC), Type="SystemEvent")
    del system_event["PolicyName"]
    alerts = [
        kubearmor_alert(NAMESPACE, deleted, at=datetime.now(UTC)),
        kubearmor_alert(NAMESPACE, isolated, at=datetime.now(UTC), PolicyName=WRITE_POLICY),
        system_event,
    ]
    return "".join(json.dumps(alert) + "\n" for alert in alerts)


def assert_security_event(pod: str, policy: str, result: dict[str, Any], live: LiveStack) -> None:
    """Exactly one SecurityEvent about the pod, named in the answer, with KubeArmor's rule."""
    (event,) = security_events_for(live.cluster, f"{NAMESPACE}/{pod}")
    assert event["metadata"]["name"] == result["name"]
    rule = pick(event["spec"]["rule"], "type", "threatLevel", "source")
    assert rule == (policy, "1", "KubeArmorIntegrator")
    assert event["spec"]["description"].startswith("package manager execution blocked")


def recorded_action(live: LiveStack, name: str) -> tuple[str, tuple[Any, ...]]:
    """(target, (action, result)) of the SecurityEvent's one execution, once Completed."""
    status = wait_for_executions(live.cluster, name)["status"]
    assert status["phase"] == "Completed"
    (execution,) = status["executions"]
    return execution["target"], pick(execution, "action", "result")


def test_ndjson_batch_creates_one_security_event_per_policy_alert_and_both_act(
    live: LiveStack,
) -> None:
    pods = create_workload(live.cluster, NAMESPACE, "web")
    rules = [({"type": PKG_POLICY}, "delete"), ({"type": WRITE_POLICY}, "quarantine")]
    create_policy(live.cluster, NAMESPACE, rules)
    deleted, isolated = (pod["metadata"]["name"] for pod in pods)

    answer = live.post_alert(
        "ingest-kubearmor", ndjson_batch(deleted, isolated), "application/x-ndjson"
    )

    assert answer.status_code == 200, answer.text
    assert answer.json()["counts"] == COUNTS
    results = answer.json()["results"]
    labelled = [pick(result, "label", "result") for result in results]
    assert labelled == [("line 1", "created"), ("line 2", "created"), ("line 3", "ignored")]
    assert "SystemEvent" in results[2]["reason"]
    assert_security_event(deleted, PKG_POLICY, results[0], live)
    assert_security_event(isolated, WRITE_POLICY, results[1], live)
    assert dict(recorded_action(live, result["name"]) for result in results[:2]) == {
        f"{NAMESPACE}/{deleted}": ("delete", "Succeeded"),
        f"{NAMESPACE}/{isolated}": ("quarantine", "Succeeded"),
    }
    wait_for(lambda: is_gone(live.cluster, NAMESPACE, deleted), f"pod {deleted} to go")
    kept = live.cluster.get(PODS, isolated, NAMESPACE)
    assert QUARANTINE_LABEL in kept["metadata"]["labels"] and kept["status"]["phase"] == "Running"
    wait_for_running(live.cluster, NAMESPACE, "web", 2, excluding=[deleted, isolated])
    assert live.stack.wait_idle(20)
    assert len(security_events_for(live.cluster, f"{NAMESPACE}/{deleted}")) == 1
