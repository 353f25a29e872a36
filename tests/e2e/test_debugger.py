"""KubeArmor → an AMTD rule with Phoenix's ``debugger`` → an ephemeral container on the pod.

The whole chain on the embedded stack: ingest, the ApiServerSource, the matcher's signed step,
the Trigger on ``amtddebugger``, executor-debug, and the record on the SecurityEvent.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from amtd.kube.api import PODS, POLICIES
from support.builders import kubearmor_alert, make_policy
from support.stacks import (
    PKG_POLICY,
    LiveStack,
    create_workload,
    pick,
    wait_for_executions,
    wait_for_security_event,
)

pytestmark = pytest.mark.e2e
NAMESPACE = "debugging"


def test_a_debugger_rule_attaches_an_ephemeral_container(live: LiveStack) -> None:
    pod, _ = create_workload(live.cluster, NAMESPACE, "web")
    name = pod["metadata"]["name"]
    policy = make_policy(NAMESPACE, [({"type": PKG_POLICY}, "debugger")])
    debugger = {"name": "inspect", "image": "busybox:1.36", "terminal": True}
    policy["spec"]["strategy"][0]["action"] = {"debugger": debugger}
    live.cluster.create(POLICIES, policy, NAMESPACE)

    alert = kubearmor_alert(NAMESPACE, name, at=datetime.now(UTC))
    answer = live.post_alert("ingest-kubearmor", json.dumps(alert))
    assert answer.status_code == 201, answer.text
    event = wait_for_security_event(live.cluster, f"{NAMESPACE}/{name}")
    event = wait_for_executions(live.cluster, event["metadata"]["name"])

    (execution,) = event["status"]["executions"]
    expected = ("debugger", "Succeeded", "DebugContainerAttached", "executor-debug")
    assert pick(execution, "action", "result", "reason", "executor") == expected
    found = live.cluster.get(PODS, name, NAMESPACE)
    (container,) = found["spec"]["ephemeralContainers"]
    assert container["name"].startswith("inspect-") and container["name"] in execution["message"]
    assert pick(container, "image", "stdin", "tty", "targetContainerName") == (
        "busybox:1.36", True, True, "nginx")  # fmt: skip
    assert found["status"]["phase"] == "Running"  # inspected, not moved
