"""executor-quarantine against the API stand-in: isolation, bounded names, retries, guards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from amtd.act.claiming import Claim, encode_claim
from amtd.act.quarantine.quarantining import (
    ENFORCED_VARIABLE,
    UNENFORCED_CAVEAT,
    build_network_policy,
    make_quarantine_name,
    make_quarantined_by,
)
from amtd.kube.api import NETWORK_POLICIES, PODS
from amtd.model.targets import DNS1123_LABEL
from support.cloudevents import read_reply
from support.executors import (
    create_decided_event,
    only_execution,
    post_event,
    read_status,
    wait_for_events_about,
)
from support.functions import load_function_client
from support.standins import Stand, create_deployment, create_namespace, create_pod, wait_for_pods

USER = "executor-quarantine"
LABEL = "amtd.r6security.com/quarantine"
MOVED = "amtd.r6security.com/quarantined-labels"


@pytest.fixture
def client(stand: Stand, monkeypatch: pytest.MonkeyPatch) -> Iterator[FlaskClient]:
    with stand.connect_functions(USER, monkeypatch):
        yield load_function_client("executors/quarantine")


def policies_of(stand: Stand, namespace: str) -> list[dict[str, Any]]:
    """NetworkPolicies in a namespace."""
    return stand.cluster.list(NETWORK_POLICIES, namespace)


def annotate(stand: Stand, pod: dict[str, Any], annotations: dict[str, str]) -> dict[str, Any]:
    """Add annotations to a pod (as a user or another tool would)."""
    meta = pod["metadata"]
    patch = {"metadata": {"annotations": annotations}}
    return stand.cluster.patch(PODS, meta["name"], patch, meta["namespace"])


def test_isolates_the_pod_which_keeps_running_while_a_replacement_starts(
    stand: Stand, client: FlaskClient
) -> None:
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    pod = annotate(stand, pod, {"app": "an annotation named like a label", "team": "blue"})
    original_labels = dict(pod["metadata"]["labels"])
    request = create_decided_event(stand.cluster, "sev-q", [pod], "quarantine")

    execution = only_execution(post_event(client, request))

    assert (execution["result"], execution["reason"]) == ("Succeeded", "PodQuarantined")
    meta = stand.cluster.get(PODS, pod["metadata"]["name"], "shop")["metadata"]
    value = meta["labels"][LABEL]
    assert meta["labels"] == {LABEL: value}
    assert json.loads(meta["annotations"][MOVED]) == original_labels
    assert meta["annotations"]["app"] == "an annotation named like a label"  # never clobbered
    assert meta["annotations"]["team"] == "blue"
    assert meta["annotations"]["amtd.r6security.com/quarantined-by"] == (
        f"sev-q/{request.steps[0].step_id}"
    )
    (policy,) = policies_of(stand, "shop")
    assert policy["metadata"]["name"] == value
    assert policy["spec"]["podSelector"] == {"matchLabels": {LABEL: value}}
    assert sorted(policy["spec"]["policyTypes"]) == ["Egress", "Ingress"]
    assert "ingress" not in policy["spec"]
    assert "egress" not in policy["spec"]
    (owner,) = policy["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"]) == ("Pod", pod["metadata"]["uid"])
    assert not owner.get("controller")
    replacements = wait_for_pods(stand.cluster, "shop", "app=web", 2)
    assert pod["metadata"]["name"] not in {item["metadata"]["name"] for item in replacements}
    isolated = stand.cluster.get(PODS, pod["metadata"]["name"], "shop")
    assert isolated["status"]["phase"] == "Running"
    assert read_status(stand.cluster, "sev-q").phase == "Completed"
    (on_pod,) = wait_for_events_about(stand.cluster, "shop", pod["metadata"]["name"])
    assert on_pod["reason"] == "PodQuarantined"


@pytest.mark.parametrize(
    ("declared", "caveat"), [(None, True), ("false", True), ("TRUE", False), ("true", False)]
)
def test_the_record_says_when_isolation_is_not_confirmed(
    stand: Stand,
    client: FlaskClient,
    monkeypatch: pytest.MonkeyPatch,
    declared: str | None,
    caveat: bool,
) -> None:
    if declared is None:
        monkeypatch.delenv(ENFORCED_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(ENFORCED_VARIABLE, declared)
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    request = create_decided_event(stand.cluster, "sev-cni", [pod], "quarantine")

    execution = only_execution(post_event(client, request))

    assert execution["reason"] == "PodQuarantined"
    (recorded,) = read_status(stand.cluster, "sev-cni").executions
    assert recorded.message == execution["message"]
    assert (UNENFORCED_CAVEAT in recorded.message) is caveat
    assert len(policies_of(stand, "shop")) == 1  # isolated either way


def test_long_names_give_valid_bounded_names(stand: Stand, client: FlaskClient) -> None:
    namespace, name = "n" * 55 + "-shop", "p" * 50 + "-frontend.v2"
    assert (len(namespace), len(name)) == (60, 62)
    create_namespace(stand.cluster, namespace)
    pod = create_pod(stand.cluster, namespace, name, labels={"app": name})
    request = create_decided_event(
        stand.cluster, "sev-long", [pod], "quarantine", allow_standalone_pods=True
    )

    execution = only_execution(post_event(client, request))

    assert execution["reason"] == "PodQuarantined"
    (policy,) = policies_of(stand, namespace)
    value = stand.cluster.get(PODS, name, namespace)["metadata"]["labels"][LABEL]
    assert policy["metadata"]["name"] == value
    assert len(value) <= 63
    assert DNS1123_LABEL.match(value)


def test_a_duplicate_has_one_effect_and_one_record(stand: Stand, client: FlaskClient) -> None:
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    request = create_decided_event(stand.cluster, "sev-dup", [pod], "quarantine")

    executions = [only_execution(post_event(client, request)) for _ in range(3)]

    assert {item["reason"] for item in executions} == {"PodQuarantined"}
    creates = [
        record
        for record in stand.server.requests
        if record.resource == "networkpolicies" and record.verb == "create"
    ]
    assert [record.status for record in creates] == [201]
    assert len(policies_of(stand, "shop")) == 1
    assert len(read_status(stand.cluster, "sev-dup").executions) == 1
    assert len(wait_for_events_about(stand.cluster, "shop", pod["metadata"]["name"])) == 1


def test_a_retry_after_a_partial_attempt_completes(stand: Stand, client: FlaskClient) -> None:
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    request = create_decided_event(stand.cluster, "sev-retry", [pod], "quarantine")
    meta = pod["metadata"]
    # A first attempt got as far as claiming the pod and creating the policy, then died.
    step_id = request.steps[0].step_id
    claim = encode_claim(Claim("sev-retry", step_id, meta["uid"]))
    pod = annotate(stand, pod, {"amtd.r6security.com/claimed-by": claim})
    name = make_quarantine_name("shop", meta["name"], meta["uid"])
    stand.cluster.create(
        NETWORK_POLICIES,
        build_network_policy(pod, name, make_quarantined_by("sev-retry", step_id)),
        "shop",
    )

    execution = only_execution(post_event(client, request))

    assert execution["reason"] == "PodQuarantined"
    assert stand.cluster.get(PODS, meta["name"], "shop")["metadata"]["labels"] == {LABEL: name}
    assert len(policies_of(stand, "shop")) == 1


def test_a_pod_gone_before_isolation_is_skipped(stand: Stand, client: FlaskClient) -> None:
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    request = create_decided_event(stand.cluster, "sev-gone", [pod], "quarantine")
    stand.cluster.delete(PODS, pod["metadata"]["name"], "shop")

    execution = only_execution(post_event(client, request))

    assert (execution["result"], execution["reason"]) == ("Skipped", "PodNotFound")
    assert policies_of(stand, "shop") == []


def test_dry_run_changes_nothing(stand: Stand, client: FlaskClient) -> None:
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    request = create_decided_event(stand.cluster, "sev-dry", [pod], "quarantine", dry_run=True)

    execution = only_execution(post_event(client, request))

    assert execution["result"] == "DryRun"
    assert execution["message"].startswith(
        f"dry run: would isolate pod shop/{pod['metadata']['name']}"
    )
    assert "app, mtdSecured, pod-template-hash" in execution["message"]
    assert policies_of(stand, "shop") == []
    labels = stand.cluster.get(PODS, pod["metadata"]["name"], "shop")["metadata"]["labels"]
    assert labels == pod["metadata"]["labels"]


def test_standalone_and_protected_pods_are_skipped(stand: Stand, client: FlaskClient) -> None:
    lone = create_pod(stand.cluster, "shop", "lone", labels={"app": "lone"})
    system_pod, _ = create_deployment(stand.cluster, "kube-system", "dns")
    request = create_decided_event(stand.cluster, "sev-skip", [lone, system_pod], "quarantine")

    reply = post_event(client, request)

    _, data = read_reply(reply.headers, reply.data)
    reasons = {item["target"]: item["reason"] for item in data["executions"]}
    assert reasons == {
        "shop/lone": "StandalonePod",
        f"kube-system/{system_pod['metadata']['name']}": "ProtectedNamespace",
    }
    assert policies_of(stand, "shop") == []
    assert policies_of(stand, "kube-system") == []
    assert len(read_status(stand.cluster, "sev-skip").executions) == 2
