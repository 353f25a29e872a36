"""Pure parts of the executors: guards, claims, quarantine names and patches, audit records."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amtd.act.auditing import build_event, build_step_events, make_execution
from amtd.act.claiming import CLAIMED_BY, build_claim_patch, is_claimed_by_other
from amtd.act.guarding import check_dry_run, check_namespace, check_pod, read_protected_namespaces
from amtd.act.quarantine.quarantining import (
    QUARANTINE_LABEL,
    QUARANTINED_BY,
    QUARANTINED_LABELS,
    build_network_policy,
    build_quarantine_patch,
    build_restore_patch,
    make_quarantine_name,
    read_quarantine,
)
from amtd.act.registry import ACTIONS
from amtd.act.verdicts import StepVerdict
from amtd.model.actionevents import ActionStep
from amtd.model.targets import DNS1123_LABEL

RS_OWNER = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "rs-uid"}


def make_step(**changes: Any) -> ActionStep:
    fields: dict[str, Any] = {
        "stepId": "sev-uid/1/shop/web-1-abcde",
        "target": "shop/web-1-abcde",
        "podUid": "pod-uid",
        "action": "delete",
        "policy": "shop/policy",
        "ruleIndex": 0,
    }
    return ActionStep.model_validate({**fields, **changes})


def make_pod(**meta: Any) -> dict[str, Any]:
    metadata = {
        "name": "web-1-abcde",
        "namespace": "shop",
        "uid": "pod-uid",
        "resourceVersion": "7",
        "labels": {"app": "web", "pod-template-hash": "1"},
        "annotations": {"app": "kept", "team": "blue"},
        "ownerReferences": [{**RS_OWNER, "controller": True}],
    }
    return {"metadata": {**metadata, **meta}}


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386 merge patch, to apply the patches the executors send."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge(result.get(key), value)
    return result


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, {"kube-system", "kube-public", "kube-node-lease", "knative-serving",
              "knative-eventing", "amtd-system"}),
        ({"AMTD_NAMESPACE": "mtd"}, {"kube-system", "kube-public", "kube-node-lease",
                                      "knative-serving", "knative-eventing", "mtd"}),
        ({"PROTECTED_NAMESPACES": " shop, ,db "}, {"shop", "db", "amtd-system"}),
        ({"PROTECTED_NAMESPACES": ""}, {"kube-system", "kube-public", "kube-node-lease",
                                        "knative-serving", "knative-eventing", "amtd-system"}),
    ],
)  # fmt: skip
def test_protected_namespaces(env: dict[str, str], expected: set[str]) -> None:
    assert read_protected_namespaces(env) == expected


def test_namespace_guard() -> None:
    protected = frozenset({"kube-system"})
    assert check_namespace("shop", protected) is None
    assert check_namespace("kube-system", protected) == StepVerdict(
        "Skipped", "ProtectedNamespace", "namespace kube-system is protected"
    )


@pytest.mark.parametrize(
    ("step", "pod", "reason"),
    [
        (make_step(), make_pod(), None),
        (make_step(), make_pod(deletionTimestamp="2026-01-01T00:00:00Z"), "PodAlreadyGone"),
        (make_step(action="quarantine"), make_pod(deletionTimestamp="x"), "PodNotFound"),
        (make_step(), make_pod(uid="other-uid"), "PodReplaced"),
        (make_step(podUid=""), make_pod(uid="other-uid"), None),
        (make_step(), make_pod(annotations={CLAIMED_BY: "another/step"}), "AlreadyClaimed"),
        (make_step(), make_pod(ownerReferences=[]), "StandalonePod"),
        (make_step(), make_pod(ownerReferences=[RS_OWNER]), "StandalonePod"),
        (make_step(allowStandalonePods=True), make_pod(ownerReferences=[]), None),
        # a retry of the step that claimed the pod goes on, though the pod is orphaned by now
        (make_step(), make_pod(ownerReferences=[],
                               annotations={CLAIMED_BY: "sev-uid/1/shop/web-1-abcde"}), None),
    ],
)  # fmt: skip
def test_pod_guards(step: ActionStep, pod: dict[str, Any], reason: str | None) -> None:
    verdict = check_pod(step, pod, ACTIONS[step.action])
    assert (verdict.reason if verdict else None) == reason


def test_missing_pod_is_success_for_delete_only() -> None:
    assert ACTIONS["delete"].judge_gone("a/b").result == "Succeeded"
    assert ACTIONS["quarantine"].judge_gone("a/b") == StepVerdict(
        "Skipped", "PodNotFound", "pod a/b no longer exists: nothing to isolate"
    )


def test_dry_run_guard_says_what_would_happen() -> None:
    assert check_dry_run(make_step(), "delete pod x") is None
    verdict = check_dry_run(make_step(dryRun=True), "delete pod x")
    assert verdict == StepVerdict("DryRun", "DryRun", "dry run: would delete pod x")


def test_claims() -> None:
    pod = make_pod()
    patch = build_claim_patch(pod, "step-a")
    assert patch == {"metadata": {"resourceVersion": "7", "annotations": {CLAIMED_BY: "step-a"}}}
    claimed = merge(pod, patch)
    assert build_claim_patch(claimed, "step-a") is None
    assert is_claimed_by_other(claimed, "step-b")
    assert not is_claimed_by_other(claimed, "step-a")
    assert not is_claimed_by_other(pod, "step-b")


@given(
    namespace=st.from_regex(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", fullmatch=True),
    name=st.from_regex(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?", fullmatch=True),
    uid=st.uuids().map(str),
)
def test_quarantine_names_are_valid_for_any_name_length(
    namespace: str, name: str, uid: str
) -> None:
    value = make_quarantine_name(namespace, name, uid)
    assert len(value) <= 63
    assert DNS1123_LABEL.match(value)


def test_quarantine_names_are_readable_and_unique_per_incarnation() -> None:
    short = make_quarantine_name("shop", "web-1-abcde", "uid-1")
    assert short.startswith("amtd-q-web-1-abcde-")
    assert make_quarantine_name("shop", "web-1-abcde", "uid-2") != short
    assert make_quarantine_name("other", "web-1-abcde", "uid-1") != short
    long_ns = "customer-portal-staging"
    long_pod = "customer-portal-frontend-5f7b9c8d6-qwv8z"  # Phoenix's label would be 71 characters
    assert len(make_quarantine_name(long_ns, long_pod, "u")) <= 63


def test_network_policy_denies_everything_and_is_owned_by_the_pod() -> None:
    policy = build_network_policy(make_pod(), "amtd-q-web", "sev/step")
    assert policy["spec"] == {
        "podSelector": {"matchLabels": {QUARANTINE_LABEL: "amtd-q-web"}},
        "policyTypes": ["Ingress", "Egress"],
    }
    assert policy["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Pod", "name": "web-1-abcde", "uid": "pod-uid"}
    ]
    assert policy["metadata"]["namespace"] == "shop"


def test_quarantine_and_restore_round_trip() -> None:
    pod = make_pod()
    patch = build_quarantine_patch(pod, "amtd-q-web", "sev/sev-uid/1/shop/web")
    assert patch is not None
    quarantined = merge(pod, patch)
    meta = quarantined["metadata"]
    assert meta["labels"] == {QUARANTINE_LABEL: "amtd-q-web"}
    assert meta["annotations"]["app"] == "kept"  # an existing annotation is never clobbered
    assert json.loads(meta["annotations"][QUARANTINED_LABELS]) == pod["metadata"]["labels"]
    assert build_quarantine_patch(quarantined, "amtd-q-web", "sev/x") is None
    record = read_quarantine(quarantined)
    assert record is not None
    assert (record.security_event, record.step_id) == ("sev", "sev-uid/1/shop/web")
    restored = merge(quarantined, build_restore_patch(quarantined, record, (CLAIMED_BY,)))
    assert restored["metadata"]["labels"] == pod["metadata"]["labels"]
    assert restored["metadata"]["annotations"] == pod["metadata"]["annotations"]


def test_unreadable_quarantine_annotations_are_reported() -> None:
    pod = make_pod(labels={QUARANTINE_LABEL: "q"}, annotations={QUARANTINED_LABELS: "{nope"})
    with pytest.raises(ValueError, match="is not JSON"):
        read_quarantine(pod)
    pod = make_pod(labels={QUARANTINE_LABEL: "q"}, annotations={QUARANTINED_LABELS: '{"a": 1}'})
    with pytest.raises(ValueError, match="not a map of strings"):
        read_quarantine(pod)
    assert read_quarantine(make_pod()) is None
    bare = read_quarantine(make_pod(labels={QUARANTINE_LABEL: "q"}, annotations={}))
    assert bare is not None
    assert (bare.policy_name, bare.labels, bare.security_event) == ("q", {}, "")
    assert QUARANTINED_BY not in make_pod()["metadata"]["annotations"]


def test_events_have_stable_names_and_the_right_type() -> None:
    skipped = make_execution(
        make_step(), StepVerdict("Skipped", "StandalonePod", "why"), "executor-delete", "T"
    )
    done = make_execution(make_step(), StepVerdict("Succeeded", "PodDeleted", "ok"), "x", "T")
    pod = {"apiVersion": "v1", "kind": "Pod", "name": "p" * 253, "namespace": "shop"}
    first = build_event(pod, skipped, "shop")
    assert first["metadata"]["name"] == build_event(pod, skipped, "shop")["metadata"]["name"]
    assert len(first["metadata"]["name"]) <= 253
    assert (first["type"], first["reason"]) == ("Warning", "StandalonePod")
    assert first["message"] == "delete Skipped: why"
    assert build_event(pod, done, "shop")["type"] == "Normal"
    security_event = {"kind": "SecurityEvent", "name": "sev", "uid": "u"}
    on_pod, on_event = build_step_events(done, pod, security_event, "shop")
    assert on_pod["metadata"]["namespace"] == "shop"
    assert on_event["metadata"]["namespace"] == "default"
    assert on_pod["metadata"]["name"] != on_event["metadata"]["name"]
