"""The timer function against the API server stand-in, driven by PingSource CloudEvents.

Schedules are chosen so no test waits on the clock: a bare Go duration ``1ns`` is due as soon as
the pod exists (its creationTimestamp has whole seconds), ``0 0 1 1 *`` is not due for months.
The lastRun rule itself (newest event wins) is covered with fixed times in test_timer_timing.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient

from amtd.kube.api import PODS, SECURITY_EVENTS, Cluster
from amtd.schedule.timing import DESCRIPTION, ENABLED_ANNOTATION, SCHEDULE_ANNOTATION
from support.cloudevents import as_binary, as_structured
from support.fixtures import client_fixture, world_fixture
from support.ingesting import PING, security_events
from support.standins import create_pod

USER = "timer"


timer = client_fixture("timer")
cluster = world_fixture(USER, ("shop", "other"))


def annotated(schedule: str, enabled: str = "true") -> dict[str, str]:
    """The time-based-trigger annotations."""
    return {ENABLED_ANNOTATION: enabled, SCHEDULE_ANNOTATION: schedule}


def ping(client: FlaskClient, structured: bool = False) -> Any:
    """Deliver one PingSource event as the broker does."""
    encode = as_structured if structured else as_binary
    headers, body = encode(PING, {"task": "timer"})
    return client.post("/", data=body, headers=headers)


def counts(response: Any) -> dict[str, int]:
    """The X-Amtd-Result header as a dict."""
    header = response.headers.get("X-Amtd-Result", "")
    return {
        key: int(value) for key, value in (item.split("=") for item in header.split(",") if item)
    }


def test_a_due_pod_gets_one_upstream_event(timer: FlaskClient, cluster: Cluster) -> None:
    pod = create_pod(cluster, "shop", "cart-1", annotated("1ns"))
    response = ping(timer)
    assert response.status_code == 204 and response.get_data() == b""
    assert counts(response) == {"created": 1}
    (event,) = security_events(cluster)
    created = datetime.fromisoformat(pod["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
    assert event["metadata"]["name"] == f"tb-cart-1-{int(created.timestamp())}"
    assert event["spec"] == {
        "targets": ["shop/cart-1"],
        "rule": {"type": "timed", "threatLevel": "info", "source": "TimeBasedTrigger"},
        "description": DESCRIPTION,
    }


def test_structured_pings_work_too(timer: FlaskClient, cluster: Cluster) -> None:
    create_pod(cluster, "shop", "cart-1", annotated("1ns"))
    assert ping(timer, structured=True).status_code == 204
    assert len(security_events(cluster)) == 1


def test_pods_not_due_or_not_enabled_get_nothing(timer: FlaskClient, cluster: Cluster) -> None:
    create_pod(cluster, "shop", "yearly", annotated("0 0 1 1 *"))
    create_pod(cluster, "shop", "daily", annotated("@daily"))
    create_pod(cluster, "shop", "off", annotated("1ns", enabled="false"))
    create_pod(cluster, "shop", "plain")
    create_pod(cluster, "shop", "schedule-only", {SCHEDULE_ANNOTATION: "1ns"})
    response = ping(timer)
    assert response.status_code == 204
    assert counts(response) == {"disabled": 1, "waiting": 2}
    assert security_events(cluster) == []


def test_an_immediate_second_ping_does_not_duplicate(timer: FlaskClient, cluster: Cluster) -> None:
    create_pod(cluster, "shop", "cart-1", annotated("@every 1h"))
    create_pod(cluster, "shop", "cart-2", annotated("1ns"))
    assert counts(ping(timer)) == {"created": 1, "waiting": 1}
    second = counts(ping(timer))
    assert second.get("waiting") == 1 and second.get("created", 0) + second.get("existing", 0) == 1
    names = [event["metadata"]["name"] for event in security_events(cluster)]
    assert len(names) == len(set(names)) and all(name.startswith("tb-cart-2-") for name in names)


def test_invalid_annotations_are_reported_and_do_not_block_others(
    timer: FlaskClient, cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    create_pod(cluster, "shop", "bad-bool", annotated("1ns", enabled="yes"))
    create_pod(cluster, "shop", "bad-schedule", annotated("every minute"))
    create_pod(cluster, "shop", "no-schedule", {ENABLED_ANNOTATION: "true"})
    create_pod(cluster, "shop", "good", annotated("1ns"))
    response = ping(timer)
    assert response.status_code == 204
    assert counts(response) == {"created": 1, "invalid": 3}
    assert [event["spec"]["targets"] for event in security_events(cluster)] == [["shop/good"]]
    warned = " ".join(record.getMessage() for record in caplog.records)
    assert "shop/bad-bool" in warned and "shop/bad-schedule" in warned


def test_terminating_pods_are_skipped(timer: FlaskClient, cluster: Cluster) -> None:
    create_pod(cluster, "shop", "leaving", annotated("1ns"), finalizers=["example.com/hold"])
    cluster.delete(PODS, "leaving", "shop")
    assert cluster.get(PODS, "leaving", "shop")["metadata"].get("deletionTimestamp")
    response = ping(timer)
    assert counts(response) == {"terminating": 1}
    assert security_events(cluster) == []


def test_same_pod_name_in_two_namespaces_gets_two_events(
    timer: FlaskClient, cluster: Cluster
) -> None:
    create_pod(cluster, "shop", "twin", annotated("1ns"))
    create_pod(cluster, "other", "twin", annotated("1ns"))
    assert counts(ping(timer)) == {"created": 2}
    targets = sorted(event["spec"]["targets"][0] for event in security_events(cluster))
    assert targets == ["other/twin", "shop/twin"]


def test_a_name_clash_with_another_pods_event_is_not_taken_as_done(
    timer: FlaskClient, cluster: Cluster
) -> None:
    pod = create_pod(cluster, "shop", "twin", annotated("1ns"))
    created = datetime.fromisoformat(pod["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
    squatter = {
        "apiVersion": "amtd.r6security.com/v1beta1", "kind": "SecurityEvent",
        "metadata": {"name": f"tb-twin-{int(created.astimezone(UTC).timestamp())}"},
        "spec": {"targets": ["elsewhere/twin"], "rule": {"type": "x"}, "description": ""},
    }  # fmt: skip
    cluster.create(SECURITY_EVENTS, squatter)
    assert counts(ping(timer)) == {"created": 1}
    ours = [e for e in security_events(cluster) if e["spec"]["targets"] == ["shop/twin"]]
    assert len(ours) == 1 and ours[0]["metadata"]["name"].startswith("tb-twin-")


def test_other_requests_are_refused(timer: FlaskClient, cluster: Cluster) -> None:
    create_pod(cluster, "shop", "cart-1", annotated("1ns"))
    not_ce = timer.post("/", json={"task": "timer"})
    assert not_ce.status_code == 400 and not_ce.get_json()["error"] == "NotACloudEvent"
    headers, body = as_binary({**PING, "type": "com.example.other"}, {})
    other = timer.post("/", data=body, headers=headers)
    assert other.status_code == 400 and other.get_json()["error"] == "UnsupportedEventType"
    assert timer.get("/").status_code == 405
    assert security_events(cluster) == []


def test_api_failure_is_503_so_the_broker_retries(
    timer: FlaskClient, cluster: Cluster, apiserver: Any
) -> None:
    create_pod(cluster, "shop", "cart-1", annotated("1ns"))
    apiserver.inject_faults(1.0, statuses=(500,), match=lambda r: r.user == USER)
    response = ping(timer)
    assert response.status_code == 503
    apiserver.clear_faults()
    assert counts(ping(timer)) == {"created": 1}


def test_health_probes(timer: FlaskClient, cluster: Cluster) -> None:
    assert timer.get("/health/liveness").status_code == 200
    assert timer.get("/health/readiness").status_code == 200
