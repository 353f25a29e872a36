"""Scenarios for the executor and release tests: decided SecurityEvents and their events.

They run on a :class:`support.standins.Stand`. A SecurityEvent is created (``support.builders``)
with the matcher's decisions already in its status, as the matcher leaves it, and the matching
``action.requested`` event is built from them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flask.testing import FlaskClient

from amtd.decide.deciding import make_step_id
from amtd.decide.signing import sign_decisions
from amtd.kube import api as kubeapi
from amtd.kube.api import SECURITY_EVENTS, Cluster
from amtd.model.actionevents import (
    ACTION_COMPLETED,
    ActionRequest,
    ActionStep,
    SecurityEventRef,
    to_request_attributes,
)
from amtd.model.securityevents import Decision, SecurityEventStatus
from amtd.model.statuses import record_decisions
from amtd.model.targets import parse_target
from support.builders import create_security_event
from support.cloudevents import as_binary, as_structured, read_reply
from support.signing import MATCHER_KEY
from support.waiting import wait_for

NOW = "2026-11-26T12:00:00Z"


def create_decided_event(
    cluster: Cluster, name: str, pods: Sequence[Mapping[str, Any]], action: str,
    **options: Any,
) -> ActionRequest:  # fmt: skip
    """A SecurityEvent targeting ``pods``, decided (status, signed) as the matcher leaves it.

    ``options``: ``parameters``, ``dry_run``, ``allow_standalone_pods``, ``targets`` (override
    the target texts, e.g. for pods that do not exist).
    """
    targets = options.get("targets") or [
        f"{pod['metadata']['namespace']}/{pod['metadata']['name']}" for pod in pods
    ]
    created = create_security_event(cluster, name, targets=targets, description="executor test")
    ref = refer_to_created(created)
    uids = [pod["metadata"]["uid"] for pod in pods] or [""] * len(targets)
    decisions = [
        make_decision(ref, text, uid, action, options)
        for text, uid in zip(targets, uids, strict=True)
    ]
    return record_signed_decisions(cluster, ref, decisions)


def refer_to_created(created: Mapping[str, Any]) -> SecurityEventRef:
    """The reference to a SecurityEvent just created (its name, uid and generation)."""
    meta = created["metadata"]
    return SecurityEventRef(name=meta["name"], uid=meta["uid"], generation=meta["generation"])


def record_signed_decisions(
    cluster: Cluster, ref: SecurityEventRef, decisions: list[Decision]
) -> ActionRequest:
    """Sign ``decisions`` and record them in the status as the matcher does; their request."""
    signed = sign_decisions(MATCHER_KEY, ref, decisions)

    def decide(current: dict[str, Any]) -> dict[str, Any] | None:
        status = SecurityEventStatus.model_validate(current.get("status") or {})
        return record_decisions(status, ref.generation, signed, [])

    cluster.mutate_status(SECURITY_EVENTS, ref.name, decide)
    steps = [ActionStep.from_decision(decision) for decision in signed]
    return ActionRequest(security_event=ref, steps=steps)


def make_decision(
    ref: SecurityEventRef, target: str, uid: str, action: str, options: Mapping[str, Any]
) -> Decision:
    """A Matched decision for one target."""
    return Decision(
        target=target,
        outcome="Matched",
        step_id=make_step_id(ref.uid, ref.generation, parse_target(target)),
        pod_uid=uid,
        policy=f"{parse_target(target).namespace}/policy",
        rule_index=0,
        rule={"type": "test"},
        score=1,
        action=action,
        parameters=options.get("parameters", {}),
        dry_run=options.get("dry_run", False),
        allow_standalone_pods=options.get("allow_standalone_pods", False),
        reason="BestMatch",
        decided_at=NOW,
    )


def event_of(request: ActionRequest, structured: bool = False) -> tuple[dict[str, str], bytes]:
    """The HTTP headers and body of the request's ``action.requested`` CloudEvent."""
    data = request.model_dump(by_alias=True, mode="json")
    encode = as_structured if structured else as_binary
    return encode(to_request_attributes(request), data)


def post_event(client: FlaskClient, request: ActionRequest, structured: bool = False) -> Any:
    """POST the request's event to an in-process function; returns the Flask response."""
    headers, body = event_of(request, structured)
    return client.post("/", headers=headers, data=body)


def only_execution(reply: Any) -> dict[str, Any]:
    """The single execution of an ``action.completed`` reply (which answers 200)."""
    assert reply.status_code == 200, reply.data
    _, data = read_reply(reply.headers, reply.data)
    (execution,) = data["executions"]
    return dict(execution)


def read_status(cluster: Cluster, name: str) -> SecurityEventStatus:
    """The SecurityEvent's current status."""
    found = cluster.get(SECURITY_EVENTS, name)
    return SecurityEventStatus.model_validate(found.get("status") or {})


def list_events_about(cluster: Cluster, namespace: str, name: str) -> list[dict[str, Any]]:
    """core/v1 Events in ``namespace`` whose involvedObject is named ``name``."""
    events = cluster.list(kubeapi.EVENTS, namespace)
    return [event for event in events if event["involvedObject"].get("name") == name]


def wait_for_events_about(
    cluster: Cluster, namespace: str, name: str, count: int = 1
) -> list[dict[str, Any]]:
    """:func:`list_events_about`, once there are ``count`` (executors write them after replying)."""

    def enough() -> list[dict[str, Any]] | None:
        events = list_events_about(cluster, namespace, name)
        return events if len(events) >= count else None

    return wait_for(enough, f"{count} Events about {namespace}/{name}")


NOW = "2026-12-03T13:00:00Z"


def completed_event(
    cluster: Cluster, name: str, result: str = "Succeeded", record: bool = True
) -> tuple[dict[str, str], dict[str, Any]]:
    """A decided delete on ``demo/<name>-pod``, its Execution recorded (unless ``record`` is
    False) as executor-delete records it; the ``action.completed`` event (attributes, data)."""
    request = create_decided_event(cluster, name, [], "delete", targets=[f"demo/{name}-pod"])
    step = request.steps[0]
    execution = {
        "stepId": step.step_id, "target": step.target, "action": "delete", "result": result,
        "reason": "PodDeleted", "message": "pod deleted", "executor": "executor-delete",
        "time": NOW, "podUid": step.pod_uid,
    }  # fmt: skip
    if record:
        cluster.mutate_status(SECURITY_EVENTS, name, lambda now: add_execution(now, execution))
    attributes = {
        "type": ACTION_COMPLETED, "source": "/amtd/executors/delete", "subject": name,
        "id": f"{request.security_event.uid}/1/{step.target}/delete", "securityevent": name,
        "action": "delete", "datacontenttype": "application/json",
    }  # fmt: skip
    data = {"securityEvent": request.security_event.model_dump(), "executions": [execution]}
    return attributes, data


def add_execution(current: dict[str, Any], execution: dict[str, Any]) -> dict[str, Any]:
    """The status with one more Execution, phase Completed."""
    status = dict(current.get("status") or {})
    return {**status, "phase": "Completed", "executions": [execution]}
