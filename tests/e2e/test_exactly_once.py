"""Exactly once end to end: a redelivered ``action.requested`` event changes nothing more.

Delivery is at least once (the Broker retries, sources re-send), so the same event arriving
three more times must leave one deletion and one execution record: the step id makes repeats
recognisable (docs/events.md §4).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from amtd.kube.api import SECURITY_EVENTS
from amtd.model.actionevents import SecurityEventRef, make_action_request, to_request_attributes
from amtd.model.securityevents import SecurityEventStatus
from support.builders import SHELL_RULE, create_policy, falco_alert
from support.cloudevents import as_binary
from support.stacks import (
    LiveStack,
    create_workload,
    running_pods,
    wait_for,
    wait_for_executions,
    wait_for_running,
    wait_for_security_event,
)

pytestmark = pytest.mark.e2e
NAMESPACE = "once"
EXECUTOR = "amtd-system/executor-delete"


def rebuild_request(event: dict[str, Any]) -> tuple[str, dict[str, str], bytes]:
    """The matcher's ``action.requested`` event, rebuilt from the recorded decisions."""
    meta, status = event["metadata"], SecurityEventStatus.model_validate(event["status"])
    ref = SecurityEventRef(name=meta["name"], uid=meta["uid"], generation=meta["generation"])
    request = make_action_request(ref, status.decisions, [])
    assert request is not None
    attributes = to_request_attributes(request)
    headers, body = as_binary(attributes, request.model_dump(by_alias=True, mode="json"))
    return attributes["id"], headers, body


def test_same_action_event_three_more_times_has_one_effect(live: LiveStack) -> None:
    pods = create_workload(live.cluster, NAMESPACE, "web")
    create_policy(live.cluster, NAMESPACE, [({"type": SHELL_RULE}, "delete")])
    victim = pods[0]["metadata"]["name"]
    answer = live.post_alert(
        "ingest-falco", json.dumps(falco_alert(NAMESPACE, victim, at=datetime.now(UTC)))
    )
    assert answer.status_code == 201, answer.text
    name = wait_for_security_event(live.cluster, f"{NAMESPACE}/{victim}")["metadata"]["name"]
    event = wait_for_executions(live.cluster, name)
    replaced = wait_for_running(live.cluster, NAMESPACE, "web", 2, excluding=[victim])
    serving = {pod["metadata"]["name"] for pod in replaced}
    event_id, headers, body = rebuild_request(event)

    def delivered() -> list[int | None]:
        return [attempt.status for attempt in live.deliveries(event_id, EXECUTOR)]

    # The original, which the matcher sent with the same id (recorded once its answer is in).
    assert wait_for(delivered, "the original delivery to executor-delete") == [200]
    for _ in range(3):
        assert live.post_to_broker(headers, body).status_code == 202
    wait_for(lambda: len(delivered()) == 4, "the three repeats to reach executor-delete")
    assert live.stack.wait_idle(20)

    assert all(status is not None and 200 <= status < 300 for status in delivered())
    executions = live.cluster.get(SECURITY_EVENTS, name)["status"]["executions"]
    assert executions == event["status"]["executions"]  # still the one record
    deletes = [
        (r.user, r.name)
        for r in live.api_calls()
        if (r.verb, r.resource, r.namespace) == ("delete", "pods", NAMESPACE)
    ]
    assert deletes == [("executor-delete", victim)]
    assert {p["metadata"]["name"] for p in running_pods(live.cluster, NAMESPACE, "web")} == serving
