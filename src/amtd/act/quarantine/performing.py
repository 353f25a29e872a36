"""Performing a quarantine: deny-all NetworkPolicy first, then move the labels, then verify.

The order is retry-safe: a retried step finds the policy there and the labels moved or not.
Neither the label nor the policy is trusted as found: the label gets our value, the policy our
spec, and both are read back before success is recorded (else the step is recorded Failed).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from amtd.act.actions import ExecutableAction, Pod
from amtd.act.quarantine import quarantining
from amtd.act.verdicts import StepVerdict
from amtd.kube.api import NETWORK_POLICIES, PODS, Cluster
from amtd.kube.apierrors import ConflictError
from amtd.model.actionevents import ActionStep
from amtd.model.objects import Object

LOG = logging.getLogger(__name__)


def describe_quarantine(step: ActionStep, pod: Pod) -> str:
    """What quarantining the pod does."""
    meta = pod["metadata"]
    name = quarantining.make_quarantine_name(meta["namespace"], meta["name"], meta["uid"])
    return quarantining.describe_quarantine(pod, name)


def quarantine_pod(
    cluster: Cluster, step: ActionStep, pod: Pod, security_event: str, env: Mapping[str, str]
) -> StepVerdict:
    """Isolate the pod: our deny-all NetworkPolicy, then our label; success only once verified.

    The record says so when nobody declared that NetworkPolicy is enforced in this cluster.
    """
    meta = pod["metadata"]
    name = quarantining.make_quarantine_name(meta["namespace"], meta["name"], meta["uid"])
    by = quarantining.make_quarantined_by(security_event, step.step_id)
    ensure_policy(cluster, quarantining.build_network_policy(pod, name, by))
    patch = quarantining.build_quarantine_patch(pod, name, by)
    if patch is not None:
        cluster.patch(PODS, meta["name"], patch, meta["namespace"])
    problem = verify_isolation(cluster, meta["namespace"], meta["name"], name)
    if problem:
        LOG.warning("quarantine of %s not verified: %s", step.target, problem)
        return StepVerdict("Failed", "QuarantineNotVerified", f"isolation not verified: {problem}")
    message = quarantining.describe_quarantine(pod, name)
    if not quarantining.is_isolation_enforced(env):
        message = f"{message}; {quarantining.UNENFORCED_CAVEAT}"
    return StepVerdict("Succeeded", "PodQuarantined", message)


def ensure_policy(cluster: Cluster, policy: Object) -> None:
    """Create the policy; one of that name already there (an earlier attempt's, or anyone's) is
    given our spec unless it has it (ConflictError if it changes meanwhile: the step re-reads)."""
    meta = policy["metadata"]
    try:
        cluster.create(NETWORK_POLICIES, policy, meta["namespace"])
        LOG.info("created NetworkPolicy %s/%s", meta["namespace"], meta["name"])
        return
    except ConflictError:
        existing = cluster.get(NETWORK_POLICIES, meta["name"], meta["namespace"])
    if not quarantining.check_policy(existing, meta["name"]):
        LOG.info("NetworkPolicy %s/%s exists already (earlier attempt)", meta["namespace"],
                 meta["name"])  # fmt: skip
        return
    LOG.warning("NetworkPolicy %s/%s was not ours as found: replaced", meta["namespace"],
                meta["name"])  # fmt: skip
    version = existing["metadata"].get("resourceVersion")
    cluster.replace(NETWORK_POLICIES, {**policy, "metadata": {**meta, "resourceVersion": version}})


def verify_isolation(cluster: Cluster, namespace: str, pod_name: str, name: str) -> str:
    """Read the policy and the pod back: what keeps the one from isolating the other ("": none).

    A pod gone by now raises NotFoundError (judged like any missing pod).
    """
    policy = cluster.find(NETWORK_POLICIES, name, namespace)
    pod = cluster.get(PODS, pod_name, namespace)
    return quarantining.check_isolation(policy, pod, name)


def judge_gone_pod(target: str) -> StepVerdict:
    """A pod that is gone or terminating: there is nothing left to isolate."""
    return StepVerdict(
        "Skipped", "PodNotFound", f"pod {target} no longer exists: nothing to isolate"
    )


QUARANTINE = ExecutableAction(
    "quarantine", quarantine_pod, describe_quarantine, judge_gone_pod, acts_on_quarantined=True
)
