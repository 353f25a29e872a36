"""Performing a quarantine: deny-all NetworkPolicy first (409 = exists), then move the labels.

The order is retry-safe: a retried step finds the policy there and the labels moved or not.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from amtd.act.actions import ExecutableAction, Pod
from amtd.act.quarantine import quarantining
from amtd.act.verdicts import StepVerdict
from amtd.kube.api import NETWORK_POLICIES, PODS, Cluster, ConflictError
from amtd.model.actionevents import ActionStep

LOG = logging.getLogger(__name__)


def describe_quarantine(step: ActionStep, pod: Pod) -> str:
    """What quarantining the pod does."""
    meta = pod["metadata"]
    name = quarantining.make_quarantine_name(meta["namespace"], meta["name"], meta["uid"])
    return quarantining.describe_quarantine(pod, name)


def quarantine_pod(
    cluster: Cluster, step: ActionStep, pod: Pod, security_event: str, env: Mapping[str, str]
) -> StepVerdict:
    """Isolate the pod: deny-all NetworkPolicy first (409 = exists), then move its labels.

    The record says so when nobody declared that NetworkPolicy is enforced in this cluster.
    """
    meta = pod["metadata"]
    name = quarantining.make_quarantine_name(meta["namespace"], meta["name"], meta["uid"])
    by = quarantining.make_quarantined_by(security_event, step.step_id)
    try:
        cluster.create(NETWORK_POLICIES, quarantining.build_network_policy(pod, name, by),
                       meta["namespace"])  # fmt: skip
        LOG.info("created NetworkPolicy %s/%s", meta["namespace"], name)
    except ConflictError:
        LOG.info("NetworkPolicy %s/%s exists already (earlier attempt)", meta["namespace"], name)
    patch = quarantining.build_quarantine_patch(pod, name, by)
    if patch is not None:
        cluster.patch(PODS, meta["name"], patch, meta["namespace"])
    message = quarantining.describe_quarantine(pod, name)
    if not quarantining.is_isolation_enforced(env):
        message = f"{message}; {quarantining.UNENFORCED_CAVEAT}"
    return StepVerdict("Succeeded", "PodQuarantined", message)


def judge_gone_pod(target: str) -> StepVerdict:
    """A pod that is gone or terminating: there is nothing left to isolate."""
    return StepVerdict(
        "Skipped", "PodNotFound", f"pod {target} no longer exists: nothing to isolate"
    )


QUARANTINE = ExecutableAction("quarantine", quarantine_pod, describe_quarantine, judge_gone_pod)
