"""Performing a delete: exactly this incarnation of the pod (uid precondition), once.

The delete is also conditional on the pod's resourceVersion as the executor read and judged it:
a delete leaves no claim on the pod (:mod:`amtd.act.claiming`), so this precondition is what
makes a claim, label or any other write since then a 409, after which the executor reads the pod
again and judges it anew.

With ``eviction: true`` the pod is evicted instead (policy/v1 ``Eviction``, same uid
precondition), so the API server honours its PodDisruptionBudget. A budget that allows no
disruption now answers 429: the step is left open and the request answered 503, so the Broker
retries it later (and after its retries the sweeper re-requests it); each blocked attempt is a
Warning Event ``EvictionBlocked`` on the pod naming the budget. It is never forced: there is no
fallback to a plain delete.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from amtd.act.actions import ExecutableAction, Pod
from amtd.act.auditing import publish_events
from amtd.act.verdicts import StepVerdict
from amtd.kube.api import PODS, Cluster
from amtd.kube.apierrors import ConflictError, TransientError
from amtd.kube.events import make_kube_event, refer_to_pod
from amtd.kube.retrying import is_outcome_unknown
from amtd.model.actionevents import ActionStep
from amtd.model.objects import Object
from amtd.model.timestamps import format_now

LOG = logging.getLogger(__name__)
BUDGET_EXHAUSTED = 429  # the eviction subresource's answer when a disruption budget forbids it
EXECUTOR = "executor-delete"


def is_eviction(step: ActionStep) -> bool:
    """Whether the policy asked for eviction semantics (``delete: {eviction: true}``)."""
    return step.parameters.get("eviction") is True


def describe_delete(step: ActionStep, pod: Pod) -> str:
    """What deleting (or evicting) the pod does."""
    meta = pod["metadata"]
    grace = step.parameters.get("gracePeriodSeconds")
    suffix = f" with a grace period of {grace} s" if grace is not None else ""
    verb = "evict" if is_eviction(step) else "delete"
    return f"{verb} pod {meta['namespace']}/{meta['name']} (uid {meta['uid']}){suffix}"


def delete_pod(
    cluster: Cluster, step: ActionStep, pod: Pod, security_event: str, env: Mapping[str, str]
) -> StepVerdict:
    """Delete exactly this incarnation of the pod (uid precondition); its workload replaces it."""
    if is_eviction(step):
        return evict_pod(cluster, step, pod, security_event)
    meta = pod["metadata"]
    grace = step.parameters.get("gracePeriodSeconds")
    try:
        cluster.delete(
            PODS, meta["name"], meta["namespace"], uid=meta["uid"], grace_period_seconds=grace,
            resource_version=meta["resourceVersion"],
        )  # fmt: skip
    except TransientError as error:
        if not is_outcome_unknown(error.status):
            raise
        return read_back_outcome(cluster, pod, "deleted", "PodDeleted", error)
    message = f"deleted pod {meta['namespace']}/{meta['name']} (uid {meta['uid']})"
    return StepVerdict("Succeeded", "PodDeleted", message)


def read_back_outcome(
    cluster: Cluster, pod: Pod, verb: str, reason: str, error: TransientError
) -> StepVerdict:  # fmt: skip
    """The verdict of a delete (or eviction) whose outcome is unknown (no answer, or a 5xx that
    may come after the write), read back from the pod.

    The call was conditional on the uid and resourceVersion just judged, so for anyone else to
    have removed a pod now gone or terminating, others must have changed it and then deleted it
    in the milliseconds between judgement and read-back: it is recorded as this step's own, its
    message saying the answer was lost. A pod still at that version was not touched:
    TransientError, the Broker's retry does it. Any other version: ConflictError, the executor
    reads and judges it again.
    """
    meta = pod["metadata"]
    found = cluster.find(PODS, meta["name"], meta["namespace"])
    shown = f"pod {meta['namespace']}/{meta['name']} (uid {meta['uid']})"
    now = (found or {}).get("metadata") or {}
    if found is None or now.get("uid") != meta["uid"] or now.get("deletionTimestamp"):
        LOG.warning("%s: no clear answer (%s); the pod is gone: %s", shown, error, verb)
        message = f"{verb} {shown}; the API server's answer was lost, the pod is gone or going"
        return StepVerdict("Succeeded", reason, message)
    if now.get("resourceVersion") == meta["resourceVersion"]:
        raise error
    raise ConflictError(409, "Conflict", f"{shown} changed while its {verb} went unanswered")


def build_eviction(pod: Pod, grace: int | None) -> Object:
    """The policy/v1 Eviction of exactly this incarnation of the pod."""
    meta = pod["metadata"]
    options: Object = {
        "preconditions": {"uid": meta["uid"], "resourceVersion": meta["resourceVersion"]}
    }
    if grace is not None:
        options["gracePeriodSeconds"] = grace
    return {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
        "deleteOptions": options,
    }


def evict_pod(cluster: Cluster, step: ActionStep, pod: Pod, security_event: str) -> StepVerdict:
    """Evict the pod; a budget that forbids it leaves the step open (TransientError, 503)."""
    meta = pod["metadata"]
    eviction = build_eviction(pod, step.parameters.get("gracePeriodSeconds"))
    try:
        cluster.create(PODS, eviction, meta["namespace"], sub="eviction")
    except TransientError as error:
        if is_outcome_unknown(error.status):
            return read_back_outcome(cluster, pod, "evicted", "PodEvicted", error)
        if error.status != BUDGET_EXHAUSTED:
            raise
        message = f"eviction of pod {step.target} blocked: {error.message}"
        LOG.warning("%s; retried later, never forced", message)
        publish_events(cluster, [build_blocked_event(step, pod, security_event, message)])
        raise TransientError(error.status, "EvictionBlocked", f"{message}; retried later") from None
    message = f"evicted pod {meta['namespace']}/{meta['name']} (uid {meta['uid']})"
    return StepVerdict("Succeeded", "PodEvicted", message)


def build_blocked_event(step: ActionStep, pod: Pod, security_event: str, message: str) -> Object:
    """The Warning Event on the pod saying its budget kept it (one per step: repeats are 409)."""
    meta = pod["metadata"]
    return make_kube_event(
        refer_to_pod(meta["namespace"], meta["name"], meta["uid"]), namespace=meta["namespace"],
        reason="EvictionBlocked", message=f"{message} (SecurityEvent {security_event})",
        key=f"{meta['uid']}/{step.step_id}/EvictionBlocked", component=EXECUTOR,
        now=format_now(), event_type="Warning", action="delete",
    )  # fmt: skip


def judge_gone_pod(target: str) -> StepVerdict:
    """A pod that is gone or terminating: the delete's goal is met already."""
    return StepVerdict("Succeeded", "PodAlreadyGone", f"pod {target} is already gone")


DELETE = ExecutableAction("delete", delete_pod, describe_delete, judge_gone_pod, leaves_claim=False)
