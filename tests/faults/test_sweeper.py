"""The sweeper function against the API stand-in, with a recording sink as its K_SINK.

No ApiServerSource runs here: every SecurityEvent is one the normal path missed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from flask.testing import FlaskClient

from amtd.decide.triaging import triage_security_event
from amtd.kube.api import EVENTS, SECURITY_EVENTS, Cluster
from amtd.model.actionevents import ACTION_REQUESTED, make_action_request, to_request_attributes
from amtd.model.securityeventreaders import read_ref
from amtd.model.securityevents import SecurityEventStatus
from amtd.model.statuses import record_decisions
from support.builders import create_security_event
from support.cloudevents import as_binary
from support.executors import make_decision
from support.functions import ROOT, load_function_client
from support.receivers import SinkReceiver
from support.signing import MATCHER_KEY
from support.standins import Stand, deploy_defended_workload, list_pods

PING = {"type": "dev.knative.sources.ping", "id": "ping-1", "datacontenttype": "application/json",
        "source": "/apis/v1/namespaces/amtd-system/pingsources/amtd-sweeper"}  # fmt: skip
LONG_AGO = "2020-01-01T00:00:00Z"
NOW = "2026-11-26T12:00:00Z"


@pytest.fixture
def stand(stand: Stand) -> Stand:
    """The shared stand-in plus a shop Deployment (2 pods) covered by a delete-everything policy."""
    deploy_defended_workload(stand.cluster, "shop", "cart", 2, "delete")
    return stand


@pytest.fixture
def sweeper(
    stand: Stand, sink: SinkReceiver, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FlaskClient]:
    """The sweeper in-process as ServiceAccount ``sweeper``, no grace, the test sink bound."""
    monkeypatch.setenv("K_SINK", sink.url)
    monkeypatch.setenv("SWEEP_GRACE_SECONDS", "0")
    with stand.connect_functions("sweeper", monkeypatch):
        yield load_function_client("sweeper")


def first_pod(stand: Stand) -> list[dict[str, Any]]:
    """The first cart pod by name, as the ``pods`` of a SecurityEvent the source missed."""
    return list_pods(stand.cluster, "shop")[:1]


def ping(client: FlaskClient) -> Any:
    """One PingSource event, as the Broker delivers it."""
    headers, body = as_binary(PING, {"task": "sweep"})
    return client.post("/", headers=headers, data=body)


def counts(response: Any) -> dict[str, int]:
    """The sweep's counts from ``X-Amtd-Result``."""
    pairs = (item.split("=") for item in response.headers["X-Amtd-Result"].split())
    return {key: int(value) for key, value in pairs}


def granted_to_sweeper() -> set[tuple[str, str, str, str]]:
    """(group, resource, subresource, verb) that knative/rbac/sweeper.yaml grants."""
    granted = set()
    for doc in yaml.safe_load_all((ROOT / "knative" / "rbac" / "sweeper.yaml").read_text()):
        for rule in doc.get("rules", []) if doc["kind"] in ("Role", "ClusterRole") else []:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    plural, _, sub = resource.partition("/")
                    granted |= {(group, plural, sub, verb) for verb in rule["verbs"]}
    return granted


def write_old_decisions(cluster: Cluster, name: str, outcome: str) -> None:
    """Record a decision made long ago (Unmatched: nothing left to execute)."""
    ref = read_ref(cluster.get(SECURITY_EVENTS, name))
    target = cluster.get(SECURITY_EVENTS, name)["spec"]["targets"][0]
    decision = make_decision(ref, target, "", "delete", {}).model_copy(
        update={"outcome": outcome, "decided_at": LONG_AGO, "action": None}
    )

    def decide(current: dict[str, Any]) -> dict[str, Any] | None:
        status = SecurityEventStatus.model_validate(current.get("status") or {})
        return record_decisions(status, ref.generation, [decision], [])

    cluster.mutate_status(SECURITY_EVENTS, name, decide)


def decided_events(cluster: Cluster, name: str) -> list[dict[str, Any]]:
    """The matcher-style ``Decided`` Events about a SecurityEvent."""
    events = cluster.list(EVENTS, "default")
    return [e for e in events if e["involvedObject"]["name"] == name and e["reason"] == "Decided"]


def decide_as_matcher(stand: Stand, name: str) -> None:
    """What the matcher does with the sweeper's announcement: decide, sign and record."""
    triage = triage_security_event(
        stand.cluster, name, may_replay=True, now=NOW, signer=MATCHER_KEY
    )
    assert triage.outcome == "Decided"


def test_a_missed_event_is_announced_to_the_matcher_never_decided_by_the_sweeper(
    stand: Stand, sweeper: FlaskClient, sink: SinkReceiver
) -> None:
    create_security_event(stand.cluster, "falco-missed-1", pods=first_pod(stand))
    answer = ping(sweeper)
    assert answer.status_code == 204, answer.get_data(as_text=True)
    assert counts(answer)["decided"] == 1 and counts(answer)["published"] == 0
    assert "status" not in stand.cluster.get(SECURITY_EVENTS, "falco-missed-1")  # no key here
    (event,) = sink.received()
    assert event["type"] == "dev.knative.apiserver.ref.add" and event["source"] == "/amtd/sweeper"
    assert (event["kind"], event.get_data()["name"]) == ("SecurityEvent", "falco-missed-1")
    assert decided_events(stand.cluster, "falco-missed-1") == []
    calls = stand.calls_by("sweeper")
    assert calls <= granted_to_sweeper()
    assert ("amtd.r6security.com", "securityevents", "", "list") in calls


def test_a_sweep_rerequests_unexecuted_steps_with_the_matchers_signatures(
    stand: Stand, sweeper: FlaskClient, sink: SinkReceiver
) -> None:
    created = create_security_event(stand.cluster, "falco-missed-2", pods=first_pod(stand))
    decide_as_matcher(stand, "falco-missed-2")
    before = stand.cluster.get(SECURITY_EVENTS, "falco-missed-2")["status"]
    again = ping(sweeper)
    assert again.status_code == 204
    assert (counts(again)["decided"], counts(again)["rerequested"]) == (0, 1)
    assert stand.cluster.get(SECURITY_EVENTS, "falco-missed-2")["status"] == before
    (event,) = sink.received()
    status = SecurityEventStatus.model_validate(before)
    expected = make_action_request(read_ref(created), status.decisions, status.executions)
    assert expected is not None and event["type"] == ACTION_REQUESTED
    assert event["id"] == to_request_attributes(expected)["id"]  # the matcher's id: deduplicated
    assert event["amtddelete"] == "true"
    (step,) = event.get_data()["steps"]
    assert step["signature"] == before["decisions"][0]["signature"]  # replayed, never minted


def test_young_events_are_left_to_the_normal_path(
    stand: Stand, sweeper: FlaskClient, sink: SinkReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWEEP_GRACE_SECONDS", "3600")
    create_security_event(stand.cluster, "falco-young", pods=first_pod(stand))
    answer = ping(sweeper)
    assert answer.status_code == 204 and counts(answer)["decided"] == 0
    assert "status" not in stand.cluster.get(SECURITY_EVENTS, "falco-young")
    assert sink.received() == []


def test_handled_events_past_retention_are_deleted(
    stand: Stand, sweeper: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWEEP_RETENTION_SECONDS", "3600")
    create_security_event(stand.cluster, "falco-old", targets=["shop/gone-pod"])
    write_old_decisions(stand.cluster, "falco-old", "PodNotFound")
    create_security_event(stand.cluster, "falco-recent", targets=["shop/gone-pod"])
    answer = ping(sweeper)
    assert answer.status_code == 204
    assert (counts(answer)["deleted"], counts(answer)["decided"]) == (1, 1)
    assert stand.cluster.find(SECURITY_EVENTS, "falco-old") is None
    assert stand.cluster.find(SECURITY_EVENTS, "falco-recent") is not None  # undecided: kept


def test_a_run_is_bounded_and_the_rest_is_deferred(
    stand: Stand, sweeper: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWEEP_MAX_EVENTS", "1")
    for index in range(3):
        create_security_event(stand.cluster, f"falco-backlog-{index}", pods=first_pod(stand))
    first = counts(ping(sweeper))
    assert (first["decided"], first["deferred"]) == (1, 2)
    second = counts(ping(sweeper))  # the oldest first: the decided one waits for executors
    assert second["decided"] + second["rerequested"] == 1 and second["deferred"] == 2


def test_a_failing_sink_answers_503_and_the_next_sweep_rerequests(
    stand: Stand, sweeper: FlaskClient, sink: SinkReceiver
) -> None:
    create_security_event(stand.cluster, "falco-unsent", pods=first_pod(stand))
    sink.status = 500
    failed = ping(sweeper)
    assert failed.status_code == 503
    assert failed.get_json()["error"] == "SweepIncomplete"
    assert counts(failed)["decided"] == 0 and counts(failed)["failed"] == 1
    sink.status = 202
    retried = ping(sweeper)
    assert retried.status_code == 204 and counts(retried)["decided"] == 1
    assert len(sink.received()) == 1


def test_an_unreachable_api_server_is_a_retried_503(stand: Stand, sweeper: FlaskClient) -> None:
    stand.server.inject_faults(rate=1.0, statuses=(503,))
    try:
        answer = ping(sweeper)
    finally:
        stand.server.clear_faults()
    assert answer.status_code == 503 and answer.get_json()["error"] == "ApiUnavailable"


@pytest.mark.parametrize(
    ("method", "headers", "status", "error"),
    [
        ("GET", {}, 405, "MethodNotAllowed"),
        ("POST", {"Content-Type": "application/json"}, 400, "NotACloudEvent"),
        ("POST", as_binary({**PING, "type": "com.example.other"}, {})[0], 400,
         "UnsupportedEventType"),
        ("POST", {"ce-specversion": "1.0", "ce-type": PING["type"]}, 400, "InvalidField"),
    ],
)  # fmt: skip
def test_anything_but_a_ping_is_refused(
    sweeper: FlaskClient, method: str, headers: dict[str, str], status: int, error: str
) -> None:
    answer = sweeper.open("/", method=method, headers=headers, data=b"{}")
    assert answer.status_code == status
    assert answer.get_json()["error"] == error


def test_without_a_sink_the_sweep_is_not_configured(
    stand: Stand, sweeper: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_security_event(stand.cluster, "falco-no-sink", pods=first_pod(stand))
    monkeypatch.delenv("K_SINK")
    answer = ping(sweeper)
    assert answer.status_code == 503 and answer.get_json()["error"] == "NotConfigured"
    assert "K_SINK" in answer.get_json()["detail"]
    assert "status" not in stand.cluster.get(SECURITY_EVENTS, "falco-no-sink")
