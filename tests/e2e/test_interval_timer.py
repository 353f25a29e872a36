"""Interval timer → interval-timer SecurityEvent → delete: the Deployment replaces the pod.

The pod template carries Phoenix's interval-timer annotations with a window of one to two seconds
after the pod starts; a policy rule for ``{type: interval-timer}`` deletes the pod.
"""

from __future__ import annotations

import pytest

from support.builders import create_policy
from support.stacks import (
    LiveStack,
    create_workload,
    is_gone,
    ping_until_triggered,
    wait_for,
    wait_for_executions,
    wait_for_running,
)
from support.standins import NAMESPACES

pytestmark = pytest.mark.e2e
NAMESPACE = "interval"
ANNOTATIONS = {
    "interval-timer.amtd.r6security.com/enabled": "true",
    "interval-timer.amtd.r6security.com/config": "1s-2s",
}


def test_an_interval_timer_refreshes_the_pod(live: LiveStack) -> None:
    (pod,) = create_workload(
        live.cluster, NAMESPACE, "spinner", replicas=1, annotations=ANNOTATIONS
    )
    create_policy(live.cluster, NAMESPACE, [({"type": "interval-timer"}, "delete")])
    name = pod["metadata"]["name"]
    target = f"{NAMESPACE}/{name}"
    try:
        event = ping_until_triggered(live, target, "an interval-timer")
        assert event["metadata"]["name"].startswith(f"interval-timer-{name}-")
        assert event["spec"]["rule"] == {
            "type": "interval-timer", "threatLevel": "info", "source": "IntervalTimerTrigger",
        }  # fmt: skip
        status = wait_for_executions(live.cluster, event["metadata"]["name"])["status"]
        assert (status["phase"], status["action"]) == ("Completed", "delete")
        wait_for(lambda: is_gone(live.cluster, NAMESPACE, name), f"pod {target} to be deleted")
        wait_for_running(live.cluster, NAMESPACE, "spinner", 1, excluding=[name])
    finally:  # the minutely ping would go on refreshing its pods while other tests run
        live.cluster.delete(NAMESPACES, NAMESPACE)
