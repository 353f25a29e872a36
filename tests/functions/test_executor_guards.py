"""Pure parts of the executors: guards, claims, quarantine names and patches, audit records."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amtd.act.auditing import build_event, build_step_events, make_execution
from amtd.act.claiming import (
    CLAIMED_BY,
    Claim,
    build_claim_patch,
    encode_claim,
    is_claim_standing,
    read_claim,
)
from amtd.act.guarding import (
    check_dry_run,
    check_pod,
    check_protected_namespace,
    read_protected_namespaces,
)
from amtd.act.quarantine.quarantining import (
    QUARANTINE_LABEL,
    QUARANTINED_BY,
    QUARANTINED_LABELS,
    build_network_policy,
    build_quarantine_patch,
    build_restore_patch,
    check_isolation,
    check_policy,
    make_quarantine_name,
    read_quarantine,
)
from amtd.act.registry import ACTIONS
from amtd.act.verdicts import StepVerdict
from amtd.model.actionevents import ActionStep
from amtd.model.targets import DNS1123_LABEL

OWN_CLAIM = json.dumps(
    {"securityEvent": "sev", "stepId": "sev-uid/1/shop/web-1-abcde", "podUid": "pod-uid"}
)
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
        ({"PROTECTED_NAMESPACES": " shop, ,db "}, {"kube-system", "kube-public",
                                                   "kube-node-lease", "knative-serving",
                                                   "knative-eventing", "shop", "db",
                                                   "amtd-system"}),
        ({"PROTECTED_NAMESPACES": ""}, {"kube-system", "kube-public", "kube-node-lease",
                                        "knative-serving", "knative-eventing", "amtd-system"}),
        ({"PROTECTED_NAMESPACES": "shop,db", "AMTD_PROTECTED_NAMESPACES_REPLACE": "true"},
         {"shop", "db", "amtd-system"}),
        ({"PROTECTED_NAMESPACES": "shop", "AMTD_PROTECTED_NAMESPACES_REPLACE": " TRUE ",
          "AMTD_NAMESPACE": "mtd"}, {"shop", "mtd"}),
        ({"AMTD_PROTECTED_NAMESPACES_REPLACE": "true"}, {"amtd-system"}),
        ({"PROTECTED_NAMESPACES": "shop", "AMTD_PROTECTED_NAMESPACES_REPLACE": "yes"},
         {"kube-system", "kube-public", "kube-node-lease", "knative-serving",
          "knative-eventing", "shop", "amtd-system"}),
    ],
)  # fmt: skip
def test_protected_namespaces(env: dict[str, str], expected: set[str]) -> None:
    assert read_protected_namespaces(env) == expected


def test_namespace_guard() -> None:
    protected = frozenset({"kube-system"})
    assert check_protected_namespace("shop", protected) is None
    assert check_protected_namespace("kube-system", protected) == StepVerdict(
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
        # a claim annotation no caller found standing is no claim
        (make_step(), make_pod(annotations={CLAIMED_BY: "another/step"}), None),
        (make_step(), make_pod(ownerReferences=[]), "StandalonePod"),
        (make_step(), make_pod(ownerReferences=[RS_OWNER]), "StandalonePod"),
        (make_step(allowStandalonePods=True), make_pod(ownerReferences=[]), None),
        # a retry of the step that claimed the pod goes on, though the pod is orphaned by now
        (make_step(), make_pod(ownerReferences=[],
                               annotations={CLAIMED_BY: OWN_CLAIM}), None),
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


def test_a_standing_claim_of_another_step_stops_this_one() -> None:
    other = Claim("sev-other", "other-uid/1/shop/web-1-abcde", "pod-uid")
    verdict = check_pod(make_step(), make_pod(), ACTIONS["delete"], other)
    assert verdict is not None
    assert (verdict.result, verdict.reason) == ("Skipped", "AlreadyClaimed")
    assert "other-uid/1/shop/web-1-abcde" in verdict.message
    assert "sev-other" in verdict.message
    own = read_claim(make_pod(annotations={CLAIMED_BY: OWN_CLAIM}))
    assert check_pod(make_step(), make_pod(annotations={CLAIMED_BY: OWN_CLAIM}),
                     ACTIONS["delete"], own) is None  # fmt: skip


def test_claims_name_the_security_event_the_step_and_the_pod_uid() -> None:
    pod = make_pod()
    patch = build_claim_patch(pod, "step-a", "sev-a")
    value = json.dumps({"podUid": "pod-uid", "securityEvent": "sev-a", "stepId": "step-a"},
                       sort_keys=True, separators=(",", ":"))  # fmt: skip
    assert patch == {"metadata": {"resourceVersion": "7", "annotations": {CLAIMED_BY: value}}}
    claimed = merge(pod, patch)
    assert read_claim(claimed) == Claim("sev-a", "step-a", "pod-uid")
    assert build_claim_patch(claimed, "step-a", "sev-a") is None  # a retry writes nothing
    assert build_claim_patch(claimed, "step-b", "sev-b") is not None  # the caller judged it
    # the same annotation on another incarnation (a template's copy) is not this step's claim
    assert build_claim_patch(merge(claimed, {"metadata": {"uid": "new-uid"}}), "step-a", "sev-a")


@pytest.mark.parametrize(
    "value",
    ["step-a", "", "null", "[1]", '{"stepId": "s", "podUid": "p"}',
     '{"stepId": "s", "podUid": "p", "securityEvent": 3}',
     '{"stepId": "s", "podUid": "p", "securityEvent": "../../api/v1/pods"}',
     '{"stepId": "s", "podUid": "p", "securityEvent": "' + "a" * 254 + '"}'],
)  # fmt: skip
def test_anything_but_a_claim_shape_is_no_claim(value: str) -> None:
    assert read_claim(make_pod(annotations={CLAIMED_BY: value})) is None


def decided_event(**decision: Any) -> dict[str, Any]:
    """A SecurityEvent whose status decided one quarantine step, as the matcher writes it."""
    fields = {"target": "shop/web-1-abcde", "outcome": "Matched", "stepId": "other/1/shop/w",
              "podUid": "pod-uid", "action": "quarantine", "reason": "BestMatch"}  # fmt: skip
    return {"metadata": {"name": "sev-other"}, "status": {"decisions": [{**fields, **decision}]}}


def with_execution(event: dict[str, Any], result: str) -> dict[str, Any]:
    execution = {"stepId": "other/1/shop/w", "target": "shop/web-1-abcde",
                 "action": "quarantine", "result": result, "reason": "r", "message": "m",
                 "executor": "x", "time": "T"}  # fmt: skip
    return {**event, "status": {**event["status"], "executions": [execution]}}


@pytest.mark.parametrize(
    ("security_event", "pod_uid", "standing"),
    [
        (decided_event(), "pod-uid", True),  # in flight
        (with_execution(decided_event(), "Succeeded"), "pod-uid", True),  # done: e.g. quarantined
        (with_execution(decided_event(), "Failed"), "pod-uid", False),  # ended without effect
        (with_execution(decided_event(), "Skipped"), "pod-uid", False),
        (decided_event(), "new-uid", False),  # the claim names another incarnation
        (decided_event(podUid="new-uid"), "pod-uid", False),
        (decided_event(target="shop/other"), "pod-uid", False),
        (decided_event(stepId="another"), "pod-uid", False),
        (decided_event(action=None, outcome="Unmatched"), "pod-uid", False),
        ({"metadata": {"name": "sev-other"}, "status": {"decisions": "nope"}}, "pod-uid", False),
        ({"metadata": {"name": "sev-other"}}, "pod-uid", False),
        (None, "pod-uid", False),  # the SecurityEvent it names does not exist
    ],
)
def test_a_claim_stands_only_when_its_security_event_backs_it(
    security_event: dict[str, Any] | None, pod_uid: str, standing: bool
) -> None:
    claim = Claim("sev-other", "other/1/shop/w", pod_uid)
    pod = make_pod(annotations={CLAIMED_BY: encode_claim(claim)})
    assert is_claim_standing(claim, pod, security_event) is standing


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


QNAME = make_quarantine_name("shop", "web-1-abcde", "pod-uid")


def test_quarantine_and_restore_round_trip() -> None:
    pod = make_pod()
    patch = build_quarantine_patch(pod, QNAME, "sev/sev-uid/1/shop/web")
    assert patch is not None
    quarantined = merge(pod, patch)
    meta = quarantined["metadata"]
    assert meta["labels"] == {QUARANTINE_LABEL: QNAME}
    assert meta["annotations"]["app"] == "kept"  # an existing annotation is never clobbered
    assert json.loads(meta["annotations"][QUARANTINED_LABELS]) == pod["metadata"]["labels"]
    assert build_quarantine_patch(quarantined, QNAME, "sev/x") is None
    record = read_quarantine(quarantined)
    assert record is not None
    assert (record.security_event, record.step_id) == ("sev", "sev-uid/1/shop/web")
    restored = merge(quarantined, build_restore_patch(quarantined, record, (CLAIMED_BY,)))
    assert restored["metadata"]["labels"] == pod["metadata"]["labels"]
    assert restored["metadata"]["annotations"] == pod["metadata"]["annotations"]


def test_a_foreign_quarantine_label_is_overwritten_and_not_kept() -> None:
    pod = make_pod(labels={"app": "web", QUARANTINE_LABEL: "true"})
    patch = build_quarantine_patch(pod, QNAME, "sev/step")
    assert patch is not None
    quarantined = merge(pod, patch)
    assert quarantined["metadata"]["labels"] == {QUARANTINE_LABEL: QNAME}
    assert json.loads(quarantined["metadata"]["annotations"][QUARANTINED_LABELS]) == {"app": "web"}
    # a retry of the step after someone changed the label keeps what the first attempt saved
    tampered = merge(quarantined, {"metadata": {"labels": {QUARANTINE_LABEL: "x", "new": "1"}}})
    again = merge(tampered, build_quarantine_patch(tampered, QNAME, "sev/step"))
    assert again["metadata"]["labels"] == {QUARANTINE_LABEL: QNAME}
    saved = json.loads(again["metadata"]["annotations"][QUARANTINED_LABELS])
    assert saved == {"app": "web", "new": "1"}


def test_isolation_is_checked_on_what_was_read_back() -> None:
    pod = make_pod(labels={QUARANTINE_LABEL: QNAME})
    policy = build_network_policy(pod, QNAME, "sev/step")
    assert check_isolation(policy, pod, QNAME) == ""
    assert "is gone" in check_isolation(None, pod, QNAME)
    assert "'other'" in check_isolation(policy, make_pod(labels={QUARANTINE_LABEL: "other"}), QNAME)
    widened = merge(policy, {"spec": {"podSelector": {"matchLabels": {"app": "web"}}}})
    assert "selects" in check_isolation(widened, pod, QNAME)
    opened = merge(policy, {"spec": {"ingress": [{}]}})
    assert "does not deny all traffic" in check_isolation(opened, pod, QNAME)
    ingress_only = merge(policy, {"spec": {"policyTypes": ["Ingress"]}})
    assert "does not deny all traffic" in check_policy(ingress_only, QNAME)


def test_unreadable_quarantine_annotations_are_reported() -> None:
    labels = {QUARANTINE_LABEL: QNAME}
    pod = make_pod(labels=labels, annotations={QUARANTINED_LABELS: "{nope"})
    with pytest.raises(ValueError, match="is not JSON"):
        read_quarantine(pod)
    pod = make_pod(labels=labels, annotations={QUARANTINED_LABELS: '{"a": 1}'})
    with pytest.raises(ValueError, match="not a map of strings"):
        read_quarantine(pod)
    with pytest.raises(ValueError, match="not set by amtd"):  # its policy may be anyone's
        read_quarantine(make_pod(labels={QUARANTINE_LABEL: "someones-policy"}))
    assert read_quarantine(make_pod()) is None
    bare = read_quarantine(make_pod(labels=labels, annotations={}))
    assert bare is not None
    assert (bare.policy_name, bare.labels, bare.security_event) == (QNAME, {}, "")
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
    assert build_step_events(done, pod, security_event, "shop") == [build_event(pod, done, "shop")]
    on_pod, on_event = build_step_events(skipped, pod, security_event, "shop")
    assert on_pod["metadata"]["namespace"] == "shop"
    assert on_event["metadata"]["namespace"] == "default"
    assert on_pod["metadata"]["name"] != on_event["metadata"]["name"]
