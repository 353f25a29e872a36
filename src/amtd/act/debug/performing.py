"""Performing ``debugger`` and ``customAction``: one ephemeral container added, once, verified.

The container's name comes from the step id (:mod:`~amtd.act.debug.attaching`), so the step is
retry-safe: a container of that name already on the pod with our spec is this step's, done; one
with another spec is someone else's, and the step is recorded Failed rather than trusting it.
The patch is conditional on the claimed pod's resourceVersion (a 409 re-reads and re-guards),
and the pod the API server answers with must carry the container before success is recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from amtd.act.actions import ExecutableAction, Pod
from amtd.act.debug import attaching
from amtd.act.verdicts import StepVerdict
from amtd.kube.api import PODS, Cluster
from amtd.model.actionevents import ActionStep

LOG = logging.getLogger(__name__)


def describe_attach(step: ActionStep, pod: Pod) -> str:
    """What the step does to the pod."""
    return attaching.describe_attach(pod, attaching.build_container(step, pod))


def attach_container(
    cluster: Cluster, step: ActionStep, pod: Pod, security_event: str, env: Mapping[str, str]
) -> StepVerdict:
    """Add the step's ephemeral container to the claimed pod, unless it is there already."""
    container = attaching.build_container(step, pod)
    privilege = attaching.find_privilege(container)
    if privilege and not attaching.is_privilege_allowed(env):
        message = f"{privilege} needs AMTD_DEBUG_ALLOW_PRIVILEGED=true on the executor"
        return StepVerdict("Failed", "PrivilegeNotAllowed", message)
    found = attaching.find_container(pod, container["name"])
    if found is None:
        meta = pod["metadata"]
        patch = attaching.build_attach_patch(pod, container)
        pod = cluster.patch(PODS, meta["name"], patch, meta["namespace"], kind="strategic",
                            sub="ephemeralcontainers")  # fmt: skip
        found = attaching.find_container(pod, container["name"])
    return judge_attached(step, pod, container, found)


def judge_attached(
    step: ActionStep, pod: Pod, container: Mapping[str, object], found: Mapping[str, object] | None
) -> StepVerdict:
    """Succeeded only if the pod carries the container with the spec we asked for."""
    if found is None:
        message = f"pod {step.target} does not show container {container['name']} after the patch"
        return StepVerdict("Failed", "ContainerNotAttached", message)
    if not attaching.is_same_container(found, container):
        LOG.warning("pod %s: ephemeral container %s exists with another spec", step.target,
                    container["name"])  # fmt: skip
        message = f"pod {step.target} has an ephemeral container {container['name']} not ours"
        return StepVerdict("Failed", "ContainerNameTaken", message)
    message = attaching.describe_attach(pod, container).replace("attach ", "attached ", 1)
    return StepVerdict("Succeeded", "DebugContainerAttached", message)


def judge_gone_pod(target: str) -> StepVerdict:
    """A pod that is gone or terminating: there is nothing left to inspect."""
    return StepVerdict(
        "Skipped", "PodNotFound", f"pod {target} no longer exists: nothing to attach to"
    )


DEBUGGER = ExecutableAction("debugger", attach_container, describe_attach, judge_gone_pod)
CUSTOM_ACTION = ExecutableAction("customAction", attach_container, describe_attach, judge_gone_pod)
