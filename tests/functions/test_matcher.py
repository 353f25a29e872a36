"""The matcher function over real HTTP against the API server stand-in (official client, no mocks).

The world: the project's CRDs, Phoenix's sample AMTD and Deployment (the stand-in's workload
emulation runs its two pods) in namespace ``demo``; a SecurityEvent per test; the function
in-process (Flask test client) with its own identity ``matcher``, and once as a real process.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient

from amtd.decide.triaging import decide_security_event, record_and_request
from amtd.kube.api import EVENTS, PODS, POLICIES, SECURITY_EVENTS, Cluster
from amtd.model.actionevents import ACTION_REQUESTED, to_request_attributes
from amtd.model.securityeventreaders import read_ref
from support.builders import create_security_event
from support.cloudevents import as_binary, read_reply
from support.functions import load_function_client, serve_function
from support.matching import apiserver_event, decide, post_event
from support.standins import list_pods, open_phoenix_sample
from support.waiting import wait_for

SAMPLE_POLICY = "demo/adaptivemovingtargetdefense-sample"


@pytest.fixture(scope="module")
def matcher() -> FlaskClient:
    """The matcher in-process (its app is stateless; the API connection is reset per test)."""
    return load_function_client("matcher")


@pytest.fixture
def cluster(apiserver: Any, kubeconfig: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    """Phoenix's sample installed (both pods running); the matcher connects as ``matcher``."""
    with open_phoenix_sample(apiserver, kubeconfig, "matcher", monkeypatch) as own:
        yield own


@pytest.fixture
def pods(cluster: Cluster) -> list[dict[str, Any]]:
    """The sample Deployment's two running pods, by name."""
    return list_pods(cluster, "demo", "app=nginx")


def status_of(cluster: Cluster, name: str) -> dict[str, Any]:
    """The SecurityEvent's status as stored."""
    return dict(cluster.get(SECURITY_EVENTS, name).get("status") or {})


def events_about(cluster: Cluster, obj: dict[str, Any]) -> list[dict[str, Any]]:
    """Kubernetes Events in ``default`` about the SecurityEvent (kubectl describe's query)."""
    uid = obj["metadata"]["uid"]
    selector = f"involvedObject.kind=SecurityEvent,involvedObject.uid={uid}"
    return cluster.list(EVENTS, "default", field_selector=selector)


def wait_for_events_about(cluster: Cluster, obj: dict[str, Any]) -> list[dict[str, Any]]:
    """:func:`events_about`, once there is one (the matcher writes it after its reply)."""
    name = obj["metadata"]["name"]
    return wait_for(lambda: events_about(cluster, obj), f"an Event about {name}")


def test_network_attack_quarantines_the_pod(matcher: FlaskClient, cluster: Cluster, pods: Any):
    target = f"demo/{pods[0]['metadata']['name']}"
    obj = create_security_event(cluster, targets=[target], rule_type="network-attack")
    code, attributes, data = decide(matcher, obj)
    assert code == 200
    assert attributes["type"] == ACTION_REQUESTED
    assert attributes["amtdquarantine"] == "true" and "amtddelete" not in attributes
    assert attributes["securityevent"] == obj["metadata"]["name"]
    [step] = data["steps"]
    assert (step["target"], step["action"], step["podUid"]) == (
        target, "quarantine", pods[0]["metadata"]["uid"],
    )  # fmt: skip
    status = status_of(cluster, obj["metadata"]["name"])
    [decision] = status["decisions"]
    assert (decision["policy"], decision["ruleIndex"], decision["score"]) == (SAMPLE_POLICY, 2, 1)
    assert (status["phase"], status["action"], status["observedGeneration"]) == (
        "Decided", "quarantine", obj["metadata"]["generation"],
    )  # fmt: skip


def test_only_a_decision_leaving_a_target_unmatched_is_told_in_an_event(
    matcher: FlaskClient, cluster: Cluster, pods: Any
):
    target = f"demo/{pods[0]['metadata']['name']}"
    matched = create_security_event(cluster, targets=[target], rule_type="network-attack")
    partly = create_security_event(
        cluster, targets=[target, "demo/not-there"], rule_type="network-attack"
    )
    assert decide(matcher, matched)[0] == 200
    assert decide(matcher, partly)[0] == 200
    [event] = wait_for_events_about(cluster, partly)
    assert (event["reason"], event["type"]) == ("Decided", "Normal")
    assert "quarantine by" in event["message"] and "demo/not-there: PodNotFound" in event["message"]
    # one worker writes the Events in order: the matched one's would be there by now
    assert events_about(cluster, matched) == []  # its status and the executor's pod Event tell it


def test_threat_level_rule_in_structured_reference_mode(
    matcher: FlaskClient, cluster: Cluster, pods: Any
):
    target = f"demo/{pods[1]['metadata']['name']}"
    obj = create_security_event(cluster, targets=[target], rule={"threatLevel": "medium"})
    code, attributes, _ = decide(matcher, obj, mode="ref", structured=True)
    assert code == 200 and attributes["amtdquarantine"] == "true"
    [decision] = status_of(cluster, obj["metadata"]["name"])["decisions"]
    assert (decision["ruleIndex"], decision["score"], decision["rule"]) == (
        4, 1, {"threatLevel": "medium"},
    )  # fmt: skip


def test_more_exact_rule_wins(matcher: FlaskClient, cluster: Cluster, pods: Any):
    rule = {"type": "filesystem-corruption", "threatLevel": "medium", "source": "falco"}
    obj = create_security_event(cluster, pods=pods[:1], rule=rule)
    code, _, data = decide(matcher, obj, mode="ref")
    assert code == 200 and data["steps"][0]["ruleIndex"] == 3
    [decision] = status_of(cluster, obj["metadata"]["name"])["decisions"]
    assert (decision["ruleIndex"], decision["score"], decision["reason"]) == (3, 3, "BestMatch")


def test_fallback_disable_is_recorded_not_requested(
    matcher: FlaskClient, cluster: Cluster, pods: Any
):
    obj = create_security_event(cluster, pods=pods[:1], rule_type="odd")
    code, _, _ = decide(matcher, obj)
    assert code == 204
    status = status_of(cluster, obj["metadata"]["name"])
    [decision] = status["decisions"]
    assert (decision["action"], decision["ruleIndex"], decision["reason"]) == (
        "disable", 0, "FallbackRule",
    )  # fmt: skip
    [execution] = status["executions"]
    assert (execution["result"], execution["reason"], execution["executor"]) == (
        "Skipped", "ActionDisabled", "matcher",
    )  # fmt: skip
    assert status["phase"] == "Completed"


def test_pod_without_covering_policy_is_unmatched(matcher: FlaskClient, cluster: Cluster):
    pod = {"metadata": {"name": "lonely"}, "spec": {"containers": [{"name": "a", "image": "x"}]}}
    cluster.create(PODS, pod, "shop")
    obj = create_security_event(cluster, targets=["shop/lonely"], rule_type="network-attack")
    code, _, _ = decide(matcher, obj)
    assert code == 204
    status = status_of(cluster, obj["metadata"]["name"])
    [decision] = status["decisions"]
    assert (decision["outcome"], decision["reason"]) == ("Unmatched", "NoPolicyCovers")
    assert status["phase"] == "Unmatched"
    [event] = wait_for_events_about(cluster, obj)
    assert (event["reason"], event["type"]) == ("Unmatched", "Warning")
    assert "NoPolicyCovers" in event["message"]


def test_missing_pod_is_recorded(matcher: FlaskClient, cluster: Cluster):
    obj = create_security_event(cluster, targets=["demo/not-there"], rule_type="network-attack")
    code, _, _ = decide(matcher, obj)
    assert code == 204
    [decision] = status_of(cluster, obj["metadata"]["name"])["decisions"]
    assert (decision["outcome"], decision["target"]) == ("PodNotFound", "demo/not-there")


def test_invalid_target_does_not_stop_the_others(matcher: FlaskClient, cluster: Cluster, pods: Any):
    bad = f"{'n' * 64}/pod"  # passes the CRD's pattern; a namespace has at most 63 characters
    good = f"demo/{pods[0]['metadata']['name']}"
    obj = create_security_event(cluster, targets=[bad, good], rule_type="network-attack")
    code, _, data = decide(matcher, obj)
    assert code == 200 and [step["target"] for step in data["steps"]] == [good]
    invalid, matched = status_of(cluster, obj["metadata"]["name"])["decisions"]
    assert (invalid["outcome"], invalid["target"]) == ("InvalidTarget", bad)
    assert "longer than 63" in invalid["reason"]
    assert matched["outcome"] == "Matched"


def test_status_update_is_not_decided_again(
    matcher: FlaskClient, cluster: Cluster, pods: Any, apiserver: Any
):
    obj = create_security_event(cluster, pods=pods[:1], rule_type="x")
    assert decide(matcher, obj)[0] == 204
    decided = cluster.get(SECURITY_EVENTS, obj["metadata"]["name"])  # what the update announces
    assert status_of(cluster, obj["metadata"]["name"])["decisions"][0]["outcome"] == "Matched"
    apiserver.clear_requests()
    assert decide(matcher, decided, verb="update")[0] == 204
    assert decide(matcher, decided, verb="update", mode="ref")[0] == 204
    writes = [r for r in apiserver.requests if r.verb in ("update", "patch", "create")]
    assert writes == []


def test_redelivered_add_repeats_the_same_event(
    matcher: FlaskClient, cluster: Cluster, pods: Any, apiserver: Any
):
    obj = create_security_event(cluster, pods=pods[:1], rule_type="network-attack")
    _, first, first_data = decide(matcher, obj)  # matched: no Event written after the reply
    apiserver.clear_requests()
    code, again, again_data = decide(matcher, obj, mode="ref")
    assert code == 200 and again["id"] == first["id"] and again_data == first_data
    assert [r.verb for r in apiserver.requests if r.verb != "get"] == []


def test_lost_reply_to_the_deciding_update_is_repeated(
    matcher: FlaskClient, cluster: Cluster, pods: Any
):
    """An update that announced an undecided generation is redelivered: its reply comes again."""
    obj = create_security_event(cluster, pods=pods[:1], rule_type="network-attack")
    _, first, _ = decide(matcher, obj, verb="update")
    _, again, _ = decide(matcher, obj, verb="update")
    assert first["id"] == again["id"]


def test_multi_target_event_carries_both_flags(
    matcher: FlaskClient, cluster: Cluster, pods: Any, apiserver: Any
):
    shop_policy = {
        "metadata": {"name": "shop-defence"},
        "spec": {
            "podSelector": {},
            "strategy": [{"rule": {"type": "network-attack"}, "action": {"delete": {}}}],
        },
    }
    cluster.create(POLICIES, shop_policy, "shop")
    pod = {"metadata": {"name": "cart"}, "spec": {"containers": [{"name": "a", "image": "x"}]}}
    cluster.create(PODS, pod, "shop")
    targets = [f"demo/{pod['metadata']['name']}" for pod in pods] + ["shop/cart"]
    obj = create_security_event(cluster, targets=targets, rule_type="network-attack")
    apiserver.clear_requests()
    code, attributes, data = decide(matcher, obj)
    assert code == 200
    assert (attributes["amtddelete"], attributes["amtdquarantine"]) == ("true", "true")
    actions = {step["target"]: step["action"] for step in data["steps"]}
    assert actions == {targets[0]: "quarantine", targets[1]: "quarantine", "shop/cart": "delete"}
    lists = [r.namespace for r in apiserver.requests if r.resource == POLICIES.plural
             and r.namespace]  # fmt: skip  # (the cluster-wide calls: the AMTD watch starting)
    assert sorted(lists) == ["demo", "shop"]  # once per namespace, not per target


def test_delete_and_other_kinds_are_ignored(matcher: FlaskClient, cluster: Cluster, pods: Any):
    obj = create_security_event(cluster, targets=["demo/x"], rule_type="network-attack")
    assert decide(matcher, obj, verb="delete")[0] == 204
    assert decide(matcher, pods[0])[0] == 204  # a Pod, not a SecurityEvent
    assert "status" not in cluster.get(SECURITY_EVENTS, obj["metadata"]["name"])


def test_gone_security_event_is_done(matcher: FlaskClient, cluster: Cluster):
    obj = create_security_event(cluster, targets=["demo/x"], rule_type="network-attack")
    cluster.delete(SECURITY_EVENTS, obj["metadata"]["name"])
    assert decide(matcher, obj)[0] == 204


@pytest.mark.parametrize(
    ("headers", "body", "error"),
    [
        ({"Content-Type": "application/json"}, b'{"hello": 1}', "NotACloudEvent"),
        (*as_binary({"type": "dev.knative.apiserver.resource.add", "source": "s", "id": "1",
                     "datacontenttype": "application/json"}, [1, 2]), "DataNotAnObject"),
        (*as_binary({"type": "dev.knative.apiserver.ref.add", "source": "s", "id": "1",
                     "datacontenttype": "application/json"}, {"kind": "SecurityEvent"}),
         "MissingName"),
        (*as_binary({"type": "dev.knative.apiserver.ref.add", "source": "s", "id": "1",
                     "datacontenttype": "application/json"},
                    {"kind": "SecurityEvent", "name": "../../pods"}), "InvalidName"),
        (*as_binary({"type": "com.example.other", "source": "s", "id": "1",
                     "datacontenttype": "application/json"}, {}), "UnsupportedEventType"),
    ],
)  # fmt: skip
def test_malformed_events_are_400_with_a_reason(
    matcher: FlaskClient, headers: dict[str, str], body: bytes, error: str
):
    response = matcher.post("/", headers=headers, data=body)
    assert response.status_code == 400
    assert response.get_json()["error"] == error and response.get_json()["detail"]


@pytest.mark.parametrize("structured", [False, True])
def test_an_unencodable_string_anywhere_is_400_before_anything_is_read(
    matcher: FlaskClient, cluster: Cluster, apiserver: Any, structured: bool
):
    obj = create_security_event(cluster, targets=["demo/x"], rule_type="network-attack")
    attributes, data = apiserver_event(obj)
    labelled = {**data, "metadata": {**data["metadata"], "labels": {"k": "v\ud800"}}}
    response = post_event(matcher, attributes, labelled, structured=structured)
    assert response.status_code == 400
    body = response.get_json()
    assert body == {"error": "InvalidUnicode", "detail": "data.metadata.labels.k: is not valid "
                    "Unicode (a lone surrogate: cannot be encoded as UTF-8)"}  # fmt: skip
    assert not [r for r in apiserver.requests if r.user == "matcher"]
    assert status_of(cluster, obj["metadata"]["name"]) == {}


def test_api_failure_is_503(matcher: FlaskClient, cluster: Cluster, apiserver: Any):
    obj = create_security_event(cluster, targets=["demo/x"], rule_type="network-attack")
    apiserver.inject_faults(1.0, statuses=(503,), match=lambda record: record.user == "matcher")
    try:
        response = post_event(matcher, *apiserver_event(obj))
    finally:
        apiserver.clear_faults()
    assert response.status_code == 503
    assert response.get_json()["error"] == "ApiUnavailable"


def test_health_probes(matcher: FlaskClient, cluster: Cluster):
    assert matcher.get("/health/liveness").status_code == 200
    assert matcher.get("/health/readiness").status_code == 200


def test_real_process_decides_and_reports_api_down(cluster: Cluster, pods: Any, apiserver: Any):
    obj = create_security_event(cluster, pods=pods[:1], rule_type="network-attack")
    with serve_function("matcher", {"KUBECONFIG": os.environ["KUBECONFIG"]}) as url:
        headers, body = as_binary(*apiserver_event(obj))
        response = requests.post(url, headers=headers, data=body, timeout=30)
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/json"
        attributes, data = read_reply(response.headers, response.content)
        assert attributes["type"] == ACTION_REQUESTED and data["steps"][0]["action"] == "quarantine"
        apiserver.stop()
        again = requests.post(url, headers=headers, data=body, timeout=60)
        assert again.status_code == 503, again.text
        assert json.loads(again.text)["error"] == "ApiUnavailable"


def test_a_concurrent_decision_recorded_first_is_adopted(
    matcher: FlaskClient, cluster: Cluster, pods: Any
):
    """Two matchers decide one generation; the second to write uses the first one's record."""
    target = f"demo/{pods[0]['metadata']['name']}"
    obj = create_security_event(  # a target left unmatched: the decision has an Event
        cluster, targets=[target, "demo/not-there"], rule_type="network-attack"
    )
    ref = read_ref(obj)
    ours = decide_security_event(cluster, obj, ref, now="2000-01-01T00:00:00Z")
    _, first, _ = decide(matcher, obj)  # the other matcher wins the race
    triage = record_and_request(cluster, ref, *ours, now="2000-01-01T00:00:00Z")
    assert triage.outcome == "DecidedElsewhere" and triage.request is not None
    assert to_request_attributes(triage.request)["id"] == first["id"]
    assert triage.decisions[0].decided_at != "2000-01-01T00:00:00Z"  # theirs, not ours
    decision = status_of(cluster, obj["metadata"]["name"])["decisions"][0]
    assert decision["decidedAt"] != "2000-01-01T00:00:00Z"
    assert len(wait_for_events_about(cluster, obj)) == 1


def test_a_decision_for_an_outdated_spec_is_not_written(cluster: Cluster, pods: Any):
    target = f"demo/{pods[0]['metadata']['name']}"
    obj = create_security_event(  # a target left unmatched: the decision has an Event
        cluster, targets=[target, "demo/not-there"], rule_type="network-attack"
    )
    ref = read_ref(obj)
    ours = decide_security_event(cluster, obj, ref, now="2000-01-01T00:00:00Z")
    patch = {"spec": {"rule": {"type": "filesystem-corruption"}}}
    cluster.patch(SECURITY_EVENTS, obj["metadata"]["name"], patch)  # generation 2 now
    triage = record_and_request(cluster, ref, *ours, now="2000-01-01T00:00:00Z")
    assert (triage.outcome, triage.request) == ("Superseded", None)
    assert "status" not in cluster.get(SECURITY_EVENTS, obj["metadata"]["name"])


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_describe_shows_the_decision(
    matcher: FlaskClient, cluster: Cluster, pods: Any, kubeconfig: Path
):
    target = f"demo/{pods[0]['metadata']['name']}"
    obj = create_security_event(
        cluster, targets=[target, "demo/not-there"], rule_type="network-attack"
    )
    assert decide(matcher, obj)[0] == 200
    wait_for_events_about(cluster, obj)
    command = ["kubectl", "--kubeconfig", str(kubeconfig), "describe", "securityevent"]
    shown = subprocess.run(
        [*command, obj["metadata"]["name"]], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    status, events = shown.split("Status:", 1)[1].split("Events:", 1)
    assert "Decisions:" in status and SAMPLE_POLICY in status and target in status
    assert "Decided" in events and "amtd-matcher" in events and "quarantine by" in events


def create_shop_pods(cluster: Cluster, count: int) -> list[str]:
    """``count`` pods in ``shop`` under a delete-everything policy; their targets."""
    policy = {
        "metadata": {"name": "shop-defence"},
        "spec": {"podSelector": {}, "strategy": [{"rule": {}, "action": {"delete": {}}}]},
    }
    cluster.create(POLICIES, policy, "shop")
    spec = {"containers": [{"name": "a", "image": "x"}]}
    for number in range(count):
        cluster.create(PODS, {"metadata": {"name": f"cart-{number:03d}"}, "spec": spec}, "shop")
    return [f"shop/cart-{number:03d}" for number in range(count)]


def test_many_targets_are_split_and_the_rest_published(
    matcher: FlaskClient, cluster: Cluster, sink: Any, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("K_SINK", sink.url)
    targets = create_shop_pods(cluster, 120)
    obj = create_security_event(cluster, targets=targets, rule_type="network-attack")

    code, attributes, data = decide(matcher, obj)

    assert code == 200
    published = sink.received()
    parts = [data["steps"], *(event.get_data()["steps"] for event in published)]
    assert [len(part) for part in parts] == [50, 50, 20]
    assert sorted(step["target"] for part in parts for step in part) == sorted(targets)
    ids = [attributes["id"], *(event["id"] for event in published)]
    assert len(set(ids)) == 3 and all(event["type"] == ACTION_REQUESTED for event in published)
    code, again, _ = decide(matcher, obj)  # a redelivered add: the same three events again
    assert (code, [again["id"], *(event["id"] for event in sink.received()[2:])]) == (200, ids)


def test_a_split_request_the_sink_refuses_is_503(
    matcher: FlaskClient, cluster: Cluster, sink: Any, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("K_SINK", sink.url)
    sink.status = 500
    obj = create_security_event(cluster, targets=create_shop_pods(cluster, 60))
    code, _, body = decide(matcher, obj)
    assert (code, body["error"]) == (503, "SinkUnavailable")
    sink.status = 202
    code, _, data = decide(matcher, obj)  # the Broker's retry: decided already, re-requested
    assert code == 200 and len(data["steps"]) + len(sink.received()[0].get_data()["steps"]) == 60
