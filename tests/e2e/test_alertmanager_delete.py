"""Alertmanager → webhook notification → SecurityEvent → pod deleted, on the embedded stack.

A notification as Alertmanager's webhook receiver posts it, with the bearer token its
``http_config.authorization`` sends: the firing alert about a pod acts, the resolved one in the
same notification does not, and Alertmanager's re-send of the firing alert is a duplicate.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from amtd.kube.api import PODS
from support.builders import alertmanager_alert, alertmanager_notification, create_policy
from support.stacks import (
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
NAMESPACE = "alertmanager"
RULE = "crypto-miner-detected"


def test_a_firing_alert_deletes_its_pod_and_a_resolved_one_does_nothing(live: LiveStack) -> None:
    pods = create_workload(live.cluster, NAMESPACE, "web")
    create_policy(live.cluster, NAMESPACE, [({"type": RULE}, "delete")])
    deleted, kept = (pod["metadata"]["name"] for pod in pods)
    body = json.dumps(alertmanager_notification(
        alertmanager_alert(NAMESPACE, deleted, at=datetime.now(UTC), priority="critical"),
        alertmanager_alert(NAMESPACE, kept, at=datetime.now(UTC), status="resolved"),
    ))  # fmt: skip

    answer = live.post_alert("ingest-alertmanager", body)

    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [pick(result, "label", "result") for result in results] == [
        ("alerts[0]", "created"), ("alerts[1]", "ignored"),
    ]  # fmt: skip
    (event,) = security_events_for(live.cluster, f"{NAMESPACE}/{deleted}")
    assert event["metadata"]["name"] == results[0]["name"]
    assert pick(event["spec"]["rule"], "type", "threatLevel", "source") == (
        RULE, "critical", "PrometheusIntegrator",
    )  # fmt: skip
    status = wait_for_executions(live.cluster, results[0]["name"])["status"]
    assert status["phase"] == "Completed"
    (execution,) = status["executions"]
    assert pick(execution, "target", "action", "result") == (
        f"{NAMESPACE}/{deleted}", "delete", "Succeeded",
    )  # fmt: skip
    wait_for(lambda: is_gone(live.cluster, NAMESPACE, deleted), f"pod {deleted} to go")
    resend = live.post_alert("ingest-alertmanager", body)  # the next repeat_interval
    assert [item["result"] for item in resend.json()["results"]] == ["duplicate", "ignored"]
    assert live.cluster.get(PODS, kept, NAMESPACE)["metadata"]["uid"] == pods[1]["metadata"]["uid"]
    wait_for_running(live.cluster, NAMESPACE, "web", 2, excluding=[deleted])
    assert live.stack.wait_idle(20)
    assert security_events_for(live.cluster, f"{NAMESPACE}/{kept}") == []
    assert len(security_events_for(live.cluster, f"{NAMESPACE}/{deleted}")) == 1
