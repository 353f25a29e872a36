"""Releasing: end a pod's quarantine (``amtd release``), recorded like any other execution.

By default the isolated pod and its NetworkPolicy are deleted (forensics are done; the workload
already runs a replacement). With ``restore`` the original labels come back, the quarantine marks
and the claim are removed (a release mark in their place, :mod:`amtd.act.claiming`) and the
policy is deleted, so the pod serves again. The release is recorded on the SecurityEvent named
by the pod's ``quarantined-by`` annotation, as an Execution with action ``release`` (step id
``<quarantine stepId>/release``), plus Events.

Side effects through a :class:`~amtd.kube.api.Cluster`; 404s are "already done".
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from amtd.act import auditing
from amtd.act.claiming import CLAIMED_BY, RELEASED, encode_released
from amtd.act.quarantine.quarantining import QuarantineRecord, build_restore_patch, read_quarantine
from amtd.kube.api import NETWORK_POLICIES, PODS, SECURITY_EVENTS, Cluster, Resource
from amtd.kube.apierrors import ConflictError, NotFoundError, TransientError
from amtd.model.securityevents import Execution
from amtd.model.targets import Target

LOG = logging.getLogger(__name__)
RELEASER = "amtd-release"
ATTEMPTS = 5


class NotQuarantinedError(Exception):
    """The pod does not exist or carries no (readable) quarantine."""


def read_record(pod: Mapping[str, Any], target: Target) -> QuarantineRecord:
    """The quarantine record of the pod; NotQuarantinedError saying why there is none."""
    try:
        record = read_quarantine(pod)
    except ValueError as error:
        raise NotQuarantinedError(f"pod {target}: {error}") from None
    if record is None:
        raise NotQuarantinedError(f"pod {target} is not quarantined")
    return record


def release_pod(cluster: Cluster, target: Target, restore: bool, now: str) -> Execution:
    """End the quarantine of ``target`` and record it; NotQuarantinedError if there is none."""
    pod = cluster.find(PODS, target.name, target.namespace)
    if pod is None:
        raise NotQuarantinedError(f"pod {target} does not exist")
    record = read_record(pod, target)
    uid = str(pod["metadata"]["uid"])
    if restore:
        restore_labels(cluster, target, pod)
    else:
        delete_quietly(cluster, PODS, target.name, target.namespace, uid)
    delete_quietly(cluster, NETWORK_POLICIES, record.policy_name, target.namespace)
    execution = make_release_execution(record, target, uid, restore, now)
    LOG.info("released %s (%s): %s", target, execution.reason, execution.message)
    if record.security_event:
        record_release(cluster, record.security_event, execution, target)
    return execution


def restore_labels(cluster: Cluster, target: Target, pod: Mapping[str, Any]) -> None:
    """Put the labels back; a concurrent write (409) re-reads the pod and tries again."""
    for _ in range(ATTEMPTS):
        record = read_record(pod, target)
        patch = build_restore_patch(pod, record, (CLAIMED_BY,))
        if record.step_id:  # the mark that makes a replay of that step harmless
            patch["metadata"]["annotations"][RELEASED] = encode_released(pod, record.step_id)
        try:
            cluster.patch(PODS, target.name, patch, target.namespace)
            return
        except ConflictError:
            pod = cluster.get(PODS, target.name, target.namespace)
    raise TransientError(409, "Conflict", f"pod {target} kept changing; try again")


def delete_quietly(
    cluster: Cluster, resource: Resource, name: str, namespace: str, uid: str | None = None
) -> None:
    """Delete an object; already gone is fine."""
    try:
        cluster.delete(resource, name, namespace, uid=uid)
    except NotFoundError:
        LOG.info("%s %s/%s already gone", resource.plural, namespace, name)


def make_release_execution(
    record: QuarantineRecord, target: Target, uid: str, restore: bool, now: str
) -> Execution:
    """The Execution recording a release. Pure."""
    if restore:
        reason = "Restored"
        message = f"labels of pod {target} restored; NetworkPolicy {record.policy_name} deleted"
    else:
        reason = "Released"
        message = f"isolated pod {target} and NetworkPolicy {record.policy_name} deleted"
    return Execution(
        step_id=f"{record.step_id}/release",
        target=str(target),
        action="release",
        result="Succeeded",
        reason=reason,
        message=message,
        executor=RELEASER,
        time=now,
        pod_uid=uid,
    )


def record_release(cluster: Cluster, name: str, execution: Execution, target: Target) -> None:
    """Record the release on the SecurityEvent (status and Events); skipped if it is gone."""
    security_event = cluster.find(SECURITY_EVENTS, name)
    if security_event is None or auditing.record_execution_status(cluster, name, execution) is None:
        LOG.warning("SecurityEvent %s is gone: release of %s not recorded there", name, target)
        return
    auditing.announce_execution(cluster, execution, name, security_event["metadata"].get("uid"))
