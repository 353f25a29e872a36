"""Performing a delete: exactly this incarnation of the pod (uid precondition), once."""

from __future__ import annotations

from collections.abc import Mapping

from amtd.act.actions import ExecutableAction, Pod
from amtd.act.verdicts import StepVerdict
from amtd.kube.api import PODS, Cluster
from amtd.model.actionevents import ActionStep


def describe_delete(step: ActionStep, pod: Pod) -> str:
    """What deleting the pod does."""
    meta = pod["metadata"]
    grace = step.parameters.get("gracePeriodSeconds")
    suffix = f" with a grace period of {grace} s" if grace is not None else ""
    return f"delete pod {meta['namespace']}/{meta['name']} (uid {meta['uid']}){suffix}"


def delete_pod(
    cluster: Cluster, step: ActionStep, pod: Pod, security_event: str, env: Mapping[str, str]
) -> StepVerdict:
    """Delete exactly this incarnation of the pod (uid precondition); its workload replaces it."""
    meta = pod["metadata"]
    grace = step.parameters.get("gracePeriodSeconds")
    cluster.delete(PODS, meta["name"], meta["namespace"], uid=meta["uid"],
                   grace_period_seconds=grace)  # fmt: skip
    message = f"deleted pod {meta['namespace']}/{meta['name']} (uid {meta['uid']})"
    return StepVerdict("Succeeded", "PodDeleted", message)


def judge_gone_pod(target: str) -> StepVerdict:
    """A pod that is gone or terminating: the delete's goal is met already."""
    return StepVerdict("Succeeded", "PodAlreadyGone", f"pod {target} is already gone")


DELETE = ExecutableAction("delete", delete_pod, describe_delete, judge_gone_pod)
