"""Claims and quarantine labels are amtd's alone: forged ones neither protect nor fake a record.

Both executors over real HTTP against the API stand-in (official client): a claim copied from a
pod template or forged later stops nothing; a quarantine label set by anyone else is replaced,
and success is recorded only once the NetworkPolicy read back selects the pod as read back.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from amtd.act.claiming import CLAIMED_BY, Claim, encode_claim
from amtd.act.quarantine.quarantining import (
    QUARANTINE_LABEL,
    QUARANTINED_LABELS,
    make_quarantine_name,
)
from amtd.kube.api import NETWORK_POLICIES, PODS
from support.executors import create_decided_event, only_execution, post_event, read_status
from support.functions import load_function_client
from support.standins import Stand, create_deployment
from support.waiting import run_together

USER = "executors"
TEMPLATE_CLAIM = encode_claim(Claim("sev-anything", "sev-uid/1/shop/web", "a-guessed-uid"))


@pytest.fixture
def clients(stand: Stand, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, FlaskClient]]:
    with stand.connect_functions(USER, monkeypatch):
        yield {action: load_function_client(f"executors/{action}")
               for action in ("delete", "quarantine")}  # fmt: skip


def patch_pod(stand: Stand, pod: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """Write the pod's metadata as its owner (or an attacker) would."""
    name, namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]
    return stand.cluster.patch(PODS, name, {"metadata": meta}, namespace)


def isolating_policies(stand: Stand, pod: dict[str, Any]) -> list[dict[str, Any]]:
    """The NetworkPolicies whose selector matches the pod's current labels."""
    meta = stand.cluster.get(PODS, pod["metadata"]["name"], "shop")["metadata"]
    labels = meta.get("labels") or {}
    return [
        policy
        for policy in stand.cluster.list(NETWORK_POLICIES, "shop")
        if policy["spec"]["podSelector"].get("matchLabels", {}).items() <= labels.items()
        and not policy["spec"]["podSelector"].get("matchExpressions")
    ]


@pytest.mark.parametrize(
    "value",
    [TEMPLATE_CLAIM, "sev-uid/1/shop/web", "any text", encode_claim(Claim("x", "y", "z"))],
)
@pytest.mark.parametrize("action", ["delete", "quarantine"])
def test_a_claim_in_the_pod_template_makes_no_pod_immune(
    stand: Stand, clients: dict[str, FlaskClient], action: str, value: str
) -> None:
    pod, _ = create_deployment(stand.cluster, "shop", "web", annotations={CLAIMED_BY: value})
    assert pod["metadata"]["annotations"][CLAIMED_BY] == value  # every pod carries it
    request = create_decided_event(stand.cluster, "sev-t", [pod], action)

    execution = only_execution(post_event(clients[action], request))

    expected = {"delete": "PodDeleted", "quarantine": "PodQuarantined"}[action]
    assert (execution["result"], execution["reason"]) == ("Succeeded", expected)
    current = stand.cluster.find(PODS, pod["metadata"]["name"], "shop")
    if action == "delete":
        assert current is None
    else:
        assert current is not None
        claim = json.loads(current["metadata"]["annotations"][CLAIMED_BY])
        assert claim == {"securityEvent": "sev-t", "stepId": request.steps[0].step_id,
                         "podUid": pod["metadata"]["uid"]}  # fmt: skip
        assert len(isolating_policies(stand, pod)) == 1


@pytest.mark.parametrize("forged_index", [0, 1, 2])
@pytest.mark.parametrize("action", ["delete", "quarantine"])
def test_a_forged_claim_naming_the_pod_uid_but_no_real_step_is_no_claim(
    stand: Stand, clients: dict[str, FlaskClient], action: str, forged_index: int
) -> None:
    pod, other = create_deployment(stand.cluster, "shop", "web")
    unrelated = create_decided_event(stand.cluster, "sev-other", [other], "quarantine")
    uid = pod["metadata"]["uid"]
    forged = [
        Claim("sev-missing", "sev-missing-uid/1/shop/web", uid),  # no such SecurityEvent
        Claim("sev-other", "invented-step", uid),  # a real one, a step it never decided
        Claim("sev-other", unrelated.steps[0].step_id, uid),  # a real step, for another pod
    ][forged_index]
    patch_pod(stand, pod, {"annotations": {CLAIMED_BY: encode_claim(forged)}})
    request = create_decided_event(stand.cluster, "sev-me", [pod], action)

    execution = only_execution(post_event(clients[action], request))

    expected = {"delete": "PodDeleted", "quarantine": "PodQuarantined"}[action]
    assert (execution["result"], execution["reason"]) == ("Succeeded", expected)
    if action == "quarantine":
        assert len(isolating_policies(stand, pod)) == 1
    else:
        assert stand.cluster.find(PODS, pod["metadata"]["name"], "shop") is None


def test_a_real_claim_still_stops_a_second_step(
    stand: Stand, clients: dict[str, FlaskClient]
) -> None:
    pod, _ = create_deployment(stand.cluster, "shop", "web", annotations={CLAIMED_BY: "x"})
    quarantine = create_decided_event(stand.cluster, "sev-first", [pod], "quarantine")
    delete = create_decided_event(stand.cluster, "sev-later", [pod], "delete")

    assert only_execution(post_event(clients["quarantine"], quarantine))["reason"] == (
        "PodQuarantined"
    )
    skipped = only_execution(post_event(clients["delete"], delete))

    assert (skipped["result"], skipped["reason"]) == ("Skipped", "AlreadyClaimed")
    assert quarantine.steps[0].step_id in skipped["message"]
    assert stand.cluster.find(PODS, pod["metadata"]["name"], "shop") is not None


def test_a_claim_of_a_step_that_failed_stops_nothing(
    stand: Stand, clients: dict[str, FlaskClient]
) -> None:
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    quarantine = create_decided_event(stand.cluster, "sev-first", [pod], "quarantine")
    stand.server.inject_faults(1.0, statuses=(403,), match=lambda record: (
        record.user == USER and record.resource == "networkpolicies"))  # fmt: skip
    failed = only_execution(post_event(clients["quarantine"], quarantine))
    stand.server.clear_faults()
    assert (failed["result"], failed["reason"]) == ("Failed", "ApiRejected")
    delete = create_decided_event(stand.cluster, "sev-later", [pod], "delete")

    execution = only_execution(post_event(clients["delete"], delete))

    assert (execution["result"], execution["reason"]) == ("Succeeded", "PodDeleted")


@pytest.mark.parametrize("round_", range(3))
def test_two_steps_racing_on_a_pod_with_a_template_claim_have_one_effect(
    stand: Stand, clients: dict[str, FlaskClient], round_: int
) -> None:
    annotations = {CLAIMED_BY: TEMPLATE_CLAIM}
    pod, _ = create_deployment(stand.cluster, "shop", f"web{round_}", annotations=annotations)
    delete = create_decided_event(stand.cluster, "sev-d", [pod], "delete")
    quarantine = create_decided_event(stand.cluster, "sev-q", [pod], "quarantine")

    replies = run_together([lambda: post_event(clients["delete"], delete),
                            lambda: post_event(clients["quarantine"], quarantine)])  # fmt: skip

    deleted, isolated = (only_execution(reply) for reply in replies)
    acted = [item for item in (deleted, isolated) if item["result"] == "Succeeded"]
    assert len(acted) == 1, (deleted, isolated)
    other = isolated if acted[0] is deleted else deleted
    assert other["reason"] in ("AlreadyClaimed", "PodNotFound")
    current = stand.cluster.find(PODS, pod["metadata"]["name"], "shop")
    assert (current is None) is (acted[0] is deleted)


@pytest.mark.parametrize("value", ["true", "someones-policy", ""])
def test_a_foreign_quarantine_label_is_overwritten_and_the_policy_selects_the_pod(
    stand: Stand, clients: dict[str, FlaskClient], value: str
) -> None:
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    original = dict(pod["metadata"]["labels"])
    pod = patch_pod(stand, pod, {"labels": {QUARANTINE_LABEL: value}})
    request = create_decided_event(stand.cluster, "sev-label", [pod], "quarantine")

    execution = only_execution(post_event(clients["quarantine"], request))

    assert (execution["result"], execution["reason"]) == ("Succeeded", "PodQuarantined")
    meta = stand.cluster.get(PODS, pod["metadata"]["name"], "shop")["metadata"]
    ours = meta["labels"][QUARANTINE_LABEL]
    assert ours != value
    assert meta["labels"] == {QUARANTINE_LABEL: ours}
    assert json.loads(meta["annotations"][QUARANTINED_LABELS]) == original  # foreign one dropped
    (policy,) = isolating_policies(stand, pod)
    assert policy["metadata"]["name"] == ours


def test_a_policy_squatting_on_our_name_is_given_our_spec(
    stand: Stand, clients: dict[str, FlaskClient]
) -> None:
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    request = create_decided_event(stand.cluster, "sev-squat", [pod], "quarantine")
    name = quarantine_name(pod)
    squatter = {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"podSelector": {"matchLabels": {QUARANTINE_LABEL: name}},
                 "policyTypes": ["Ingress", "Egress"], "ingress": [{}], "egress": [{}]},
    }  # fmt: skip
    stand.cluster.create(NETWORK_POLICIES, squatter, "shop")  # allows everything

    execution = only_execution(post_event(clients["quarantine"], request))

    assert (execution["result"], execution["reason"]) == ("Succeeded", "PodQuarantined")
    spec = stand.cluster.get(NETWORK_POLICIES, name, "shop")["spec"]
    assert (spec.get("ingress"), spec.get("egress")) == (None, None)


def quarantine_name(pod: dict[str, Any]) -> str:
    """The name (and label value) a quarantine of this pod uses."""
    meta = pod["metadata"]
    return make_quarantine_name(meta["namespace"], meta["name"], meta["uid"])


def tamper_once_quarantined(stand: Stand, pod: dict[str, Any], tamper: Callable[[], Any]) -> None:
    """On a thread: as soon as the executor has labelled the pod, ``tamper`` (once)."""

    def watch() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = stand.cluster.find(PODS, pod["metadata"]["name"], "shop")
            if found and (found["metadata"].get("labels") or {}).get(QUARANTINE_LABEL):
                tamper()
                return
            time.sleep(0.01)

    threading.Thread(target=watch, daemon=True).start()


@pytest.mark.parametrize("tampered", ["policy-selector", "policy-opened", "policy-gone", "label"])
def test_tampering_between_write_and_verify_is_never_recorded_as_success(
    stand: Stand, clients: dict[str, FlaskClient], tampered: str
) -> None:
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    request = create_decided_event(stand.cluster, "sev-tamper", [pod], "quarantine")
    name = quarantine_name(pod)
    tamper = {
        "policy-selector": lambda: stand.cluster.patch(
            NETWORK_POLICIES, name, {"spec": {"podSelector": {"matchLabels": {"x": "y"}}}}, "shop"
        ),
        "policy-opened": lambda: stand.cluster.patch(
            NETWORK_POLICIES, name, {"spec": {"ingress": [{}]}}, "shop"
        ),
        "policy-gone": lambda: stand.cluster.delete(NETWORK_POLICIES, name, "shop"),
        "label": lambda: patch_pod(stand, pod, {"labels": {QUARANTINE_LABEL: "other"}}),
    }[tampered]
    # the executor's read-back of the policy is held back long enough for the tamper to land
    stand.server.inject_faults(1.0, statuses=(), latency_s=1.0, match=lambda record: (
        record.user == USER and record.resource == "networkpolicies"
        and record.verb == "get"))  # fmt: skip
    tamper_once_quarantined(stand, pod, tamper)

    execution = only_execution(post_event(clients["quarantine"], request))

    assert (execution["result"], execution["reason"]) == ("Failed", "QuarantineNotVerified")
    (recorded,) = read_status(stand.cluster, "sev-tamper").executions
    assert recorded.result == "Failed"
    assert "isolation not verified" in recorded.message
