"""Auditing: the record of what an executor did, on the SecurityEvent and as Kubernetes Events.

Each step ends with one :class:`Execution` in the SecurityEvent's status (conflict-safe: two
executors may write at once; a step that already has one is never recorded twice) and a core/v1
Event on the pod and on the SecurityEvent, so ``kubectl describe`` shows it. Event names derive
from the step, so a retried write is a 409 ("already recorded"), not a second Event.

The builders are pure; :func:`record_execution_status` and :func:`publish_events` are the side
effects and take a :class:`~amtd.kubeapi.Cluster`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from amtd import API_VERSION
from amtd.actionevents import ActionStep
from amtd.guarding import Verdict
from amtd.kubeapi import EVENTS, SECURITY_EVENTS, ApiError, Cluster, ConflictError, NotFoundError
from amtd.securityevents import KIND, Execution, SecurityEventStatus
from amtd.statuses import find_execution, record_execution

LOG = logging.getLogger(__name__)
SECURITY_EVENT_NAMESPACE = "default"  # SecurityEvents are cluster-scoped; Events need a namespace
MAX_MESSAGE_LENGTH = 1024
MAX_EVENT_NAME_STEM = 200

Object = dict[str, Any]


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with a ``Z``, as Kubernetes writes timestamps."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_execution(step: ActionStep, verdict: Verdict, executor: str, now: str) -> Execution:
    """A step's Execution record from its verdict. Pure."""
    return Execution(
        step_id=step.step_id,
        target=step.target,
        action=step.action,
        result=verdict.result,
        reason=verdict.reason,
        message=verdict.message,
        executor=executor,
        time=now,
        pod_uid=step.pod_uid or None,
    )


def pod_reference(namespace: str, name: str, uid: str | None) -> Object:
    """``involvedObject`` for a pod."""
    reference: Object = {"apiVersion": "v1", "kind": "Pod", "namespace": namespace, "name": name}
    return {**reference, "uid": uid} if uid else reference


def security_event_reference(name: str, uid: str | None) -> Object:
    """``involvedObject`` for a (cluster-scoped) SecurityEvent."""
    reference: Object = {"apiVersion": API_VERSION, "kind": KIND, "name": name}
    return {**reference, "uid": uid} if uid else reference


def build_event(involved: Mapping[str, Any], execution: Execution, namespace: str) -> Object:
    """A core/v1 Event telling what happened to ``involved``; its name is stable per step. Pure."""
    seed = f"{involved.get('uid', '')}/{execution.step_id}/{execution.action}"
    digest = hashlib.sha256(seed.encode()).hexdigest()[:16]
    stem = str(involved["name"])[:MAX_EVENT_NAME_STEM].rstrip(".-")
    warning = execution.result in ("Skipped", "Failed")
    message = f"{execution.action} {execution.result}: {execution.message}"
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{stem}.{digest}", "namespace": namespace},
        "involvedObject": dict(involved),
        "reason": execution.reason,
        "message": message[:MAX_MESSAGE_LENGTH],
        "type": "Warning" if warning else "Normal",
        "action": execution.action,
        "source": {"component": execution.executor},
        "reportingComponent": execution.executor,
        "reportingInstance": execution.executor,
        "firstTimestamp": execution.time,
        "lastTimestamp": execution.time,
        "count": 1,
    }


def build_step_events(
    execution: Execution, pod: Object, security_event: Object, namespace: str
) -> list[Object]:
    """The Events for one execution: on the pod (its namespace) and on the SecurityEvent. Pure."""
    return [
        build_event(pod, execution, namespace),
        build_event(security_event, execution, SECURITY_EVENT_NAMESPACE),
    ]


def record_execution_status(cluster: Cluster, name: str, execution: Execution) -> Execution | None:
    """Record the step's execution unless one is there; returns the one recorded (None: gone).

    A duplicate racing with the first attempt gets the first attempt's record back.
    """
    recorded: list[Execution] = []

    def mutate(current: Object) -> Object | None:
        status = SecurityEventStatus.model_validate(current.get("status") or {})
        recorded[:] = [find_execution(status, execution.step_id) or execution]
        return record_execution(status, execution)

    try:
        cluster.mutate_status(SECURITY_EVENTS, name, mutate)
    except NotFoundError:
        LOG.warning(
            "SecurityEvent %s is gone: execution of %s not recorded", name, execution.step_id
        )
        return None
    return recorded[0]


def publish_events(cluster: Cluster, events: Iterable[Object]) -> None:
    """Create the Events, best effort: an Event that cannot be written is logged, never fatal."""
    for event in events:
        namespace = event["metadata"]["namespace"]
        try:
            cluster.create(EVENTS, event, namespace)
        except ConflictError:
            continue  # written by an earlier attempt of the same step
        except ApiError as error:
            LOG.warning("could not write Event %s/%s: %s", namespace, event["reason"], error)
