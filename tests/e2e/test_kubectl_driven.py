"""kubectl-driven: a user applies Phoenix's sample workload, a policy and a SecurityEvent.

The SecurityEvent has upstream's sample shape (docs/phoenix.md), written by hand as Phoenix users
do, with its target pointed at a real pod; ``kubectl get securityevents`` then shows the printer
columns with the outcome.
"""

from __future__ import annotations

import re

import pytest
import yaml

from support.builders import SHELL_RULE
from support.functions import ROOT
from support.stacks import (
    KUBECTL,
    LiveStack,
    create_workload,
    is_gone,
    wait_for,
    wait_for_executions,
    wait_for_running,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed (needed to drive it)"),
]
EXAMPLES = ROOT / "examples" / "demo"
NAMESPACE = "demo"
COLUMNS = ["NAME", "TARGET", "TYPE", "LEVEL", "SOURCE", "PHASE", "ACTION", "AGE"]


def sample_security_event(name: str, target: str) -> str:
    """Upstream's SecurityEvent sample, retargeted."""
    return yaml.safe_dump(
        {
            "apiVersion": "amtd.r6security.com/v1beta1",
            "kind": "SecurityEvent",
            "metadata": {"name": name},
            "spec": {
                "targets": [target],
                "rule": {"type": SHELL_RULE, "threatLevel": "Notice", "source": "FalcoIntegrator"},
                "description": "09:12:44.318220471: Notice A shell was spawned in a container with "
                "an attached terminal (user=root k8s.ns=demo shell=sh parent=runc terminal=34816)",
            },
        }
    )


def table_row(live: LiveStack, name: str) -> dict[str, str] | None:
    """The row of ``kubectl get securityevents`` for ``name``, by column header."""
    lines = live.kubectl("get", "securityevents").stdout.splitlines()
    header = re.split(r"\s{2,}", lines[0].strip())
    assert header == COLUMNS
    rows = [dict(zip(header, re.split(r"\s{2,}", line.strip()), strict=True)) for line in lines[1:]]
    return next((row for row in rows if row["NAME"] == name), None)


def test_kubectl_applied_sample_security_event_moves_the_pod(live: LiveStack) -> None:
    live.kubectl("apply", "-f", str(EXAMPLES / "workload.yaml"))
    live.kubectl("apply", "-f", str(EXAMPLES / "policy.yaml"))
    pods = wait_for_running(live.cluster, NAMESPACE, "nginx", 2)
    victim = pods[0]["metadata"]["name"]
    name = f"falco-{victim}-1741943564"

    applied = live.kubectl("apply", "-f", "-", stdin=sample_security_event(name, f"demo/{victim}"))

    assert f"securityevent.amtd.r6security.com/{name} created" in applied.stdout
    wait_for(lambda: is_gone(live.cluster, NAMESPACE, victim), f"pod demo/{victim} to go")
    wait_for_running(live.cluster, NAMESPACE, "nginx", 2, excluding=[victim])

    def completed_row() -> dict[str, str] | None:
        row = table_row(live, name)
        return row if row and row["PHASE"] == "Completed" else None

    row = wait_for(completed_row, f"kubectl get securityevents to show {name} Completed")
    assert {key: row[key] for key in COLUMNS[1:7]} == {
        "TARGET": f"demo/{victim}",
        "TYPE": SHELL_RULE,
        "LEVEL": "Notice",
        "SOURCE": "FalcoIntegrator",
        "PHASE": "Completed",
        "ACTION": "delete",
    }


V01_POLICY = """\
apiVersion: amtd.r6security.com/v1beta1
kind: AdaptiveMovingTargetDefense
metadata:
  name: v01-policy
  namespace: legacy
spec:
  podSelector: {mtdSecured: "true"}
  strategy:
    - rule: {type: Terminal shell in container, source: FalcoIntegrator}
      action: delete
"""


def test_phoenix_v01_string_action_is_applied_and_acted_on(live: LiveStack) -> None:
    victim = create_workload(live.cluster, "legacy", "nginx")[0]["metadata"]["name"]
    live.kubectl("apply", "-f", "-", stdin=V01_POLICY)
    stored = live.kubectl("get", "amtd", "v01-policy", "-n", "legacy", "-o", "yaml").stdout
    assert yaml.safe_load(stored)["spec"]["strategy"][0]["action"] == "delete"
    name = f"falco-{victim}-1741943565"

    live.kubectl("apply", "-f", "-", stdin=sample_security_event(name, f"legacy/{victim}"))

    wait_for(lambda: is_gone(live.cluster, "legacy", victim), f"pod legacy/{victim} to go")
    executions = wait_for_executions(live.cluster, name)["status"]["executions"]
    assert [(e["action"], e["result"]) for e in executions] == [("delete", "Succeeded")]


def test_string_action_outside_v01_is_refused_by_the_api_server(live: LiveStack) -> None:
    live.kubectl("create", "namespace", "legacy-refused")
    refused = V01_POLICY.replace("legacy", "legacy-refused").replace(
        "action: delete", "action: debugger"
    )
    with pytest.raises(AssertionError) as refusal:
        live.kubectl("apply", "-f", "-", stdin=refused)
    assert "action in body should match '^(delete|quarantine|disable)$'" in str(refusal.value)
