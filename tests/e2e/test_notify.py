"""Falco → delete → action.completed → notify → a webhook receiver, on its own embedded stack.

The stack's Secret amtd-notify points the notify function at a loopback receiver (generic
webhook), through the func.yaml ``{{ secret:amtd-notify:... }}`` references as on a cluster; the
Trigger notify-completed delivers the executor's reply. The receiver must get one notification
naming the pod, the alert's rule, the policy, the action and the result.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from amtd_stack.running.stack import Stack
from support.builders import SHELL_RULE, create_policy, falco_alert
from support.functions import ROOT
from support.receivers import Answer, Receiver, answers
from support.stacks import (
    INGESTERS,
    LiveStack,
    create_workload,
    is_gone,
    wait_for,
    wait_for_executions,
    wait_for_security_event,
)
from support.standins import connect

pytestmark = pytest.mark.e2e
HOOK_PATH = "/hooks/amtd-e2e"
TOKEN = "notify-e2e-token"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    """The generic webhook's stand-in."""
    own = Receiver(answers(Answer(200)))
    yield own
    own.stop()


@pytest.fixture(scope="module")
def notifying(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[LiveStack]:
    """A stack whose notify Secret names the receiver."""
    token = secrets.token_urlsafe(24)
    overrides = {name: {"INGEST_TOKEN": token} for name in INGESTERS}
    notify = {"kind": "webhook", "url": receiver.url + HOOK_PATH, "token": TOKEN}
    state_dir = tmp_path_factory.mktemp("e2e-notify")
    with Stack(ROOT, state_dir, env_overrides=overrides, notify=notify) as stack:
        yield LiveStack(stack, connect(stack.kubeconfig), token)


def test_a_deleted_pod_is_notified_with_pod_rule_policy_action_and_result(
    notifying: LiveStack, receiver: Receiver
) -> None:
    live, namespace = notifying, "notified"
    victim = create_workload(live.cluster, namespace, "web")[0]["metadata"]["name"]
    create_policy(live.cluster, namespace, [({"type": SHELL_RULE}, "delete")], name="shop-guard")
    alert = falco_alert(namespace, victim, at=datetime.now(UTC))
    answer = live.post_alert("ingest-falco", json.dumps(alert))
    assert answer.status_code == 201, answer.text

    name = wait_for_security_event(live.cluster, f"{namespace}/{victim}")["metadata"]["name"]
    wait_for(lambda: is_gone(live.cluster, namespace, victim), f"pod {victim} to be deleted")
    execution = wait_for_executions(live.cluster, name)["status"]["executions"][0]
    [got] = wait_for(lambda: receiver.requests, "the notification")

    assert got.path == HOOK_PATH
    assert got.headers["authorization"] == f"Bearer {TOKEN}"
    body = json.loads(got.body)
    [fields] = body["notifications"]
    assert (fields["namespace"], fields["pod"]) == (namespace, victim)
    assert (fields["rule"], fields["policy"], fields["ruleIndex"]) == (
        SHELL_RULE, f"{namespace}/shop-guard", "0",
    )  # fmt: skip
    assert (fields["action"], fields["result"], fields["reason"]) == (
        "delete", execution["result"], execution["reason"],
    )  # fmt: skip
    assert execution["result"] == "Succeeded"
    assert fields["securityEvent"] == name
    assert body["id"] == got.headers["idempotency-key"]
    assert victim in body["text"] and SHELL_RULE in body["text"]
    # notify posts before it answers: the Broker logs the attempt a moment after the post
    [attempt] = wait_for(
        lambda: [a for a in live.stack.attempts if a.subscriber == "amtd-system/notify-completed"],
        "the Broker's delivery to notify",
    )
    assert attempt.status == 204


def test_a_dead_letter_is_notified_through_the_broker(
    notifying: LiveStack, receiver: Receiver
) -> None:
    # An unsigned action.requested: executor-delete refuses it (403, final), the Broker
    # dead-letters it, dead-letters records and announces it, notify reads the Event back.
    event_id = f"forged-{secrets.token_hex(4)}"
    step = {"stepId": f"u/1/demo/{event_id}", "target": f"demo/{event_id}", "podUid": "p",
            "action": "delete", "parameters": {}, "policy": "demo/p", "ruleIndex": 0,
            "dryRun": False, "allowStandalonePods": False}  # fmt: skip
    data = {"securityEvent": {"name": event_id, "uid": "u", "generation": 1}, "steps": [step]}
    headers = {
        "Content-Type": "application/json", "ce-specversion": "1.0", "ce-id": event_id,
        "ce-source": "/amtd/matcher", "ce-type": "com.r6security.amtd.action.requested.v1",
        "ce-securityevent": event_id, "ce-amtddelete": "true",
    }  # fmt: skip
    assert notifying.post_to_broker(headers, json.dumps(data).encode()).status_code == 202

    def dead_letter_notified() -> list[dict[str, object]]:
        bodies = [json.loads(request.body) for request in receiver.requests]
        return [b for b in bodies if b["type"] == "com.r6security.amtd.deadletter.recorded.v1"
                and event_id in str(b["text"])]  # fmt: skip

    [body] = wait_for(dead_letter_notified, "the dead letter's notification")
    [fields] = body["notifications"]
    assert (fields["namespace"], fields["kind"], fields["involved"]) == (
        "amtd-system", "Broker", "default",
    )  # fmt: skip
    assert "HTTP 403" in str(fields["message"]) and "unverified" in str(fields["message"])
    assert body["id"] == f"amtd-system/{fields['name']}"
