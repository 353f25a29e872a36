"""The timer's interval trigger against the API server stand-in, driven by PingSource events.

Windows are a few seconds long, so a test waits at most that long: the expected due time is
computed with the pure function (no key: the function under test has none either) and the test
pings just before and after it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient

from amtd.kube.api import SECURITY_EVENTS, Cluster
from amtd.model.targets import Target
from amtd.schedule.intervals import (
    INTERVAL_CONFIG_ANNOTATION,
    INTERVAL_ENABLED_ANNOTATION,
    make_interval_security_event_name,
    parse_interval_config,
    pick_due_time,
)
from amtd.schedule.timing import ENABLED_ANNOTATION, SCHEDULE_ANNOTATION
from support.cloudevents import as_binary
from support.fixtures import client_fixture, world_fixture
from support.ingesting import PING, security_events
from support.standins import create_pod

USER = "timer"
RULE = {"type": "interval-timer", "threatLevel": "info", "source": "IntervalTimerTrigger"}


timer = client_fixture("timer")
cluster = world_fixture(USER, ("shop", "other"))


def interval(config: str, enabled: str = "true") -> dict[str, str]:
    """The interval-timer annotations."""
    return {INTERVAL_ENABLED_ANNOTATION: enabled, INTERVAL_CONFIG_ANNOTATION: config}


def ping(client: FlaskClient) -> dict[str, int]:
    """Deliver one PingSource event; the X-Amtd-Result counts (204 asserted)."""
    headers, body = as_binary(PING, {"task": "timer"})
    response = client.post("/", data=body, headers=headers)
    assert response.status_code == 204, response.get_data(as_text=True)
    header = response.headers.get("X-Amtd-Result", "")
    return {key: int(value) for key, value in (i.split("=") for i in header.split(",") if i)}


def due_time(pod: dict[str, Any], config: str) -> datetime:
    """When the pod's first window fires (no key, as the function runs here)."""
    metadata = pod["metadata"]
    created = datetime.fromisoformat(metadata["creationTimestamp"].replace("Z", "+00:00"))
    return pick_due_time(parse_interval_config(config), metadata["uid"], created, b"")


def sleep_until(moment: datetime) -> None:
    """Wait for the wall clock to pass the moment."""
    time.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds() + 0.05))


def expected_name(pod: dict[str, Any], due_at: datetime) -> str:
    """The event name the function must choose for this window."""
    target = Target(pod["metadata"]["namespace"], pod["metadata"]["name"])
    return make_interval_security_event_name(target, pod["metadata"]["uid"], due_at, b"")


def test_a_pod_is_refreshed_once_at_its_windows_point(timer: FlaskClient, cluster: Cluster) -> None:
    pod = create_pod(cluster, "shop", "cart-1", interval("2s-4s"))
    due_at = due_time(pod, "2s-4s")
    if datetime.now(UTC) < due_at:
        assert ping(timer) == {"waiting": 1} and security_events(cluster) == []
    sleep_until(due_at)
    assert ping(timer) == {"created": 1}
    (event,) = security_events(cluster)
    assert event["metadata"]["name"] == expected_name(pod, due_at)
    assert event["spec"] == {
        "targets": ["shop/cart-1"],
        "rule": RULE,
        "description": "Interval-based timer trigger (interval: 2s-4s) for pod shop/cart-1",
    }
    assert ping(timer) == {"waiting": 1}  # the next window starts at the event: at least 2 s away
    assert len(security_events(cluster)) == 1


def test_a_retry_that_missed_the_event_finds_it_by_name(
    timer: FlaskClient, cluster: Cluster
) -> None:
    pod = create_pod(cluster, "shop", "cart-1", interval("1s-2s"))
    due_at = due_time(pod, "1s-2s")
    # what another timer replica created for this window (listed without our source, so the
    # function still sees the window open, as a replica reading a stale list would)
    cluster.create(SECURITY_EVENTS, security_event(expected_name(pod, due_at), "shop/cart-1"))
    sleep_until(due_at)
    assert ping(timer) == {"existing": 1}
    assert len(security_events(cluster)) == 1


def test_an_event_about_another_pod_under_the_name_blocks_and_is_logged(
    timer: FlaskClient, cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    pod = create_pod(cluster, "shop", "cart-1", interval("1s-2s"))
    due_at = due_time(pod, "1s-2s")
    cluster.create(SECURITY_EVENTS, security_event(expected_name(pod, due_at), "other/victim"))
    sleep_until(due_at)
    assert ping(timer) == {"blocked": 1}
    assert "not refreshed" in " ".join(record.getMessage() for record in caplog.records)


def security_event(name: str, target: str) -> dict[str, Any]:
    """A SecurityEvent that is not the interval timer's."""
    return {
        "apiVersion": "amtd.r6security.com/v1beta1", "kind": "SecurityEvent",
        "metadata": {"name": name},
        "spec": {"targets": [target], "rule": {"type": "x"}, "description": ""},
    }  # fmt: skip


def test_bad_configs_are_skipped_with_a_reason_and_do_not_block_others(
    timer: FlaskClient, cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    create_pod(cluster, "shop", "reversed", interval("45m-30m"))
    create_pod(cluster, "shop", "go-style", interval("1h30m-2h"))
    create_pod(cluster, "shop", "yes", interval("1s-1s", enabled="yes"))
    create_pod(cluster, "shop", "off", interval("1s-1s", enabled="false"))
    create_pod(cluster, "shop", "no-config", {INTERVAL_ENABLED_ANNOTATION: "true"})
    good = create_pod(cluster, "shop", "good", interval("1s-1s"))
    sleep_until(due_time(good, "1s-1s"))
    assert ping(timer) == {"created": 1, "disabled": 1, "invalid": 4}
    assert [event["spec"]["targets"] for event in security_events(cluster)] == [["shop/good"]]
    warned = " ".join(record.getMessage() for record in caplog.records)
    assert all(f"shop/{name}" in warned for name in ("reversed", "go-style", "yes", "no-config"))
    assert "larger than the maximum" in warned


def test_both_timers_on_one_pod_each_create_their_own_event(
    timer: FlaskClient, cluster: Cluster
) -> None:
    both = {**interval("1s-1s"), ENABLED_ANNOTATION: "true", SCHEDULE_ANNOTATION: "1ns"}
    pod = create_pod(cluster, "shop", "cart-1", both)
    sleep_until(due_time(pod, "1s-1s"))
    assert ping(timer) == {"created": 2}
    rules = sorted(event["spec"]["rule"]["source"] for event in security_events(cluster))
    assert rules == ["IntervalTimerTrigger", "TimeBasedTrigger"]


def test_same_pod_name_in_two_namespaces_gets_two_events(
    timer: FlaskClient, cluster: Cluster
) -> None:
    pods = [
        create_pod(cluster, namespace, "twin", interval("1s-1s")) for namespace in ("shop", "other")
    ]
    sleep_until(max(due_time(pod, "1s-1s") for pod in pods))
    assert ping(timer) == {"created": 2}
    targets = sorted(event["spec"]["targets"][0] for event in security_events(cluster))
    assert targets == ["other/twin", "shop/twin"]
