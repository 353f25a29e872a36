"""Executing: carry out an ``action.requested`` event's delete/quarantine steps on the cluster.

Exactly one effect per step under at-least-once delivery:

1. a step whose Execution is already in the SecurityEvent's status is done: nothing happens;
2. guards (:mod:`amtd.act.guarding`) settle steps that must not act, before any change;
3. the pod is claimed (:mod:`amtd.act.claiming`) with its resourceVersion; a 409 means someone wrote
   the pod in between, so it is read again and the guards run again;
4. the action, in a retry-safe order (quarantine: NetworkPolicy, 409 = exists, then relabel);
   a 404 means the pod went away and is judged like any missing pod;
5. the Execution is recorded and Events are written (:mod:`amtd.act.auditing`); the Events are
   best effort and go to ``Settings.defer`` (an executor writes them after its reply).

Kubernetes 404/409 never escape as errors; TransientError does (the caller answers 503).
:func:`answer_action_request` is the whole of an executor function: decode → execute → reply.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import flask
from cloudevents.http import CloudEvent
from pydantic import ValidationError

from amtd.act import auditing, quarantining
from amtd.act.claiming import build_claim_patch
from amtd.act.guarding import (
    Verdict,
    check_dry_run,
    check_namespace,
    check_pod,
    judge_missing_pod,
    read_protected_namespaces,
)
from amtd.edge.responding import BadRequestError, cloudevent_response, decode_cloudevent, no_content
from amtd.kube.api import (
    NETWORK_POLICIES,
    PODS,
    SECURITY_EVENTS,
    Cluster,
    ConflictError,
    InvalidError,
    NotFoundError,
    TransientError,
    shared_cluster,
)
from amtd.kube.deferring import Defer, run_now, shared_deferrer
from amtd.model.actionevents import (
    ACTION_REQUESTED,
    ActionCompletion,
    ActionRequest,
    ActionStep,
    SecurityEventRef,
    from_request_data,
    is_step_decided,
    to_completion_attributes,
)
from amtd.model.actions import Action
from amtd.model.securityevents import Execution, SecurityEventStatus
from amtd.model.statuses import find_execution
from amtd.model.targets import parse_target
from amtd.model.timestamps import format_now

LOG = logging.getLogger(__name__)
ATTEMPTS = 5

Object = dict[str, Any]
Pod = Mapping[str, Any]


@dataclass(frozen=True)
class Settings:
    """Who is executing, what it must leave alone, and how its Events are written."""

    action: str
    executor: str
    protected: frozenset[str]
    defer: Defer = run_now  # the Events of an execution (after the reply, in a function)
    # Whether the operator declared that the cluster's CNI enforces NetworkPolicy: the executor
    # cannot observe it, and without enforcement a quarantine isolates nothing.
    isolation_enforced: bool = False


def answer_action_request(
    request: flask.Request, action: str, executor: str, env: Mapping[str, str]
) -> flask.Response:
    """Decode the event → execute its ``action`` steps as ``executor`` → reply ``action.completed``.

    204 when the event has no step for this executor; 400 (BadRequestError) for one that can
    never succeed. The steps' Events are written after the reply (the process's deferrer).
    """
    event = decode_cloudevent(request)
    action_request = read_request(event)
    if not action_request.steps_for(action):
        LOG.info("event %s has no %s step: nothing to do", event["id"], action)
        return no_content()
    settings = Settings(
        action,
        executor,
        read_protected_namespaces(env),
        shared_deferrer().defer,
        quarantining.is_isolation_enforced(env),
    )
    executions = execute_request(shared_cluster(), action_request, settings, format_now())
    completion = ActionCompletion(
        security_event=action_request.security_event, executions=executions
    )
    return reply_completion(event["id"], action, completion)


def reply_completion(event_id: str, action: str, completion: ActionCompletion) -> flask.Response:
    """The ``action.completed`` CloudEvent answering request ``event_id``."""
    attributes = to_completion_attributes(event_id, action, completion.security_event.name)
    data = completion.model_dump(by_alias=True, exclude_none=True, mode="json")
    return cloudevent_response(attributes, data)


def read_request(event: CloudEvent) -> ActionRequest:
    """The ActionRequest of an event; BadRequestError (400) for anything that can never work."""
    if event["type"] != ACTION_REQUESTED:
        raise BadRequestError(
            "UnexpectedEventType", f"expected {ACTION_REQUESTED}, got {event['type']}"
        )
    data = event.get_data()
    if not isinstance(data, dict):
        raise BadRequestError("InvalidActionRequest", "data must be a JSON object")
    try:
        request = from_request_data(data)
    except ValidationError as error:
        raise BadRequestError("InvalidActionRequest", summarize_errors(error)) from None
    for step in request.steps:
        check_step(step)
    return request


def summarize_errors(error: ValidationError) -> str:
    """pydantic errors as ``field.path: message; ...``."""
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}" for item in error.errors()
    )


def check_step(step: ActionStep) -> None:
    """A step's target and parameters must be valid, else the event can never succeed."""
    try:
        parse_target(step.target)
        Action.model_validate({step.action: step.parameters})
    except ValidationError as error:
        detail = summarize_errors(error)
        raise BadRequestError("InvalidActionStep", f"step {step.step_id}: {detail}") from None
    except ValueError as error:
        raise BadRequestError("InvalidActionStep", f"step {step.step_id}: {error}") from None


def execute_request(
    cluster: Cluster, request: ActionRequest, settings: Settings, now: str
) -> list[Execution]:
    """Execute this executor's steps; returns their Executions (recorded ones included).

    The first step's record is written against the SecurityEvent as read here (a read fewer;
    if it changed meanwhile, the write is refused with a 409 and retried on a fresh read).
    """
    ref = request.security_event
    found = read_security_event(cluster, ref.name, ref.uid)
    steps = request.steps_for(settings.action)
    if found is None:
        LOG.warning("SecurityEvent %s (uid %s) is gone: its steps are skipped", ref.name, ref.uid)
        gone = Verdict("Skipped", "SecurityEventGone", f"SecurityEvent {ref.name} no longer exists")
        return [auditing.make_execution(step, gone, settings.executor, now) for step in steps]
    status = SecurityEventStatus.model_validate(found.get("status") or {})
    executions = []
    for step in steps:
        if not is_step_decided(step, status.decisions):
            executions.append(refuse_undecided(step, ref, settings, now))
            continue
        executions.append(execute_step(cluster, ref, step, settings, status, now, found))
        found = None  # written since: later records read it afresh
    return executions


def refuse_undecided(
    step: ActionStep, ref: SecurityEventRef, settings: Settings, now: str
) -> Execution:
    """A step the matcher never recorded (forged, altered or stale): never acted on.

    Not written to the SecurityEvent either: whoever sent it must not be able to write there.
    """
    LOG.warning("step %s on %s is not among SecurityEvent %s's decisions: refused",
                step.step_id, step.target, ref.name)  # fmt: skip
    message = "the step does not match the decision recorded on the SecurityEvent"
    verdict = Verdict("Skipped", "NotDecided", message)
    return auditing.make_execution(step, verdict, settings.executor, now)


def read_security_event(cluster: Cluster, name: str, uid: str) -> Object | None:
    """The SecurityEvent, or None when it (that incarnation) no longer exists."""
    found = cluster.find(SECURITY_EVENTS, name)
    if found is None or found["metadata"].get("uid") != uid:
        return None
    return found


def execute_step(
    cluster: Cluster, ref: SecurityEventRef, step: ActionStep, settings: Settings,
    status: SecurityEventStatus, now: str, read: Object | None = None,
) -> Execution:  # fmt: skip
    """One step, exactly once: a recorded step is not repeated; a new one is settled, recorded
    (against ``read``, the SecurityEvent as last read, when given)."""
    recorded = find_execution(status, step.step_id)
    if recorded is not None:
        LOG.info("step %s already executed (%s %s): nothing to do", step.step_id,
                 recorded.result, recorded.reason)  # fmt: skip
        return recorded
    verdict = settle_or_fail(cluster, step, settings, ref.name)
    execution = auditing.make_execution(step, verdict, settings.executor, now)
    LOG.info("step %s on %s: %s %s %s: %s", step.step_id, step.target, step.action,
             verdict.result, verdict.reason, verdict.message)  # fmt: skip
    stored = auditing.record_execution_status(cluster, ref.name, execution, current=read)
    if stored is execution:  # else gone, or a racing duplicate recorded (and announced) first
        settings.defer(partial(auditing.announce_execution, cluster, execution, ref.name, ref.uid))
    return stored or execution


def settle_or_fail(cluster: Cluster, step: ActionStep, settings: Settings, name: str) -> Verdict:
    """:func:`settle_step`, with a refusal that retrying cannot fix recorded as Failed."""
    try:
        return settle_step(cluster, step, settings, name)
    except InvalidError as error:  # forbidden or invalid: a retry would meet the same answer
        return Verdict("Failed", "ApiRejected", f"the API server refused: {error}")


def settle_step(cluster: Cluster, step: ActionStep, settings: Settings, name: str) -> Verdict:
    """Guard, claim and act, re-reading the pod whenever it changed underneath."""
    target = parse_target(step.target)
    verdict = check_namespace(target.namespace, settings.protected)
    if verdict is not None:
        return verdict
    pod = cluster.find(PODS, target.name, target.namespace)
    for _ in range(ATTEMPTS):
        if pod is None:
            return judge_missing_pod(step.action, step.target)
        verdict = check_pod(step, pod) or check_dry_run(step, DESCRIPTIONS[step.action](step, pod))
        if verdict is not None:
            return verdict
        try:
            claimed = claim_pod(cluster, step, pod)
            return PERFORMERS[step.action](cluster, step, claimed, name, settings)
        except ConflictError:
            pod = cluster.find(PODS, target.name, target.namespace)
        except NotFoundError:
            pod = None
    raise TransientError(409, "Conflict", f"pod {step.target} kept changing; gave up for now")


def claim_pod(cluster: Cluster, step: ActionStep, pod: Pod) -> Pod:
    """Claim the pod for the step (ConflictError if it changed since read); returns it fresh."""
    patch = build_claim_patch(pod, step.step_id)
    if patch is None:
        return pod  # a retry of this step: the claim is ours already
    meta = pod["metadata"]
    claimed = cluster.patch(PODS, meta["name"], patch, meta["namespace"])
    LOG.info("claimed pod %s/%s for step %s", meta["namespace"], meta["name"], step.step_id)
    return claimed


def describe_delete(step: ActionStep, pod: Pod) -> str:
    """What deleting the pod does."""
    meta = pod["metadata"]
    grace = step.parameters.get("gracePeriodSeconds")
    suffix = f" with a grace period of {grace} s" if grace is not None else ""
    return f"delete pod {meta['namespace']}/{meta['name']} (uid {meta['uid']}){suffix}"


def describe_quarantine(step: ActionStep, pod: Pod) -> str:
    """What quarantining the pod does."""
    meta = pod["metadata"]
    name = quarantining.make_quarantine_name(meta["namespace"], meta["name"], meta["uid"])
    return quarantining.describe_quarantine(pod, name)


def delete_pod(
    cluster: Cluster, step: ActionStep, pod: Pod, security_event: str, settings: Settings
) -> Verdict:
    """Delete exactly this incarnation of the pod (uid precondition); its workload replaces it."""
    meta = pod["metadata"]
    grace = step.parameters.get("gracePeriodSeconds")
    cluster.delete(PODS, meta["name"], meta["namespace"], uid=meta["uid"],
                   grace_period_seconds=grace)  # fmt: skip
    message = f"deleted pod {meta['namespace']}/{meta['name']} (uid {meta['uid']})"
    return Verdict("Succeeded", "PodDeleted", message)


def quarantine_pod(
    cluster: Cluster, step: ActionStep, pod: Pod, security_event: str, settings: Settings
) -> Verdict:
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
    if not settings.isolation_enforced:
        message = f"{message}; {quarantining.UNENFORCED_CAVEAT}"
    return Verdict("Succeeded", "PodQuarantined", message)


Performer = Callable[[Cluster, ActionStep, Pod, str, Settings], Verdict]
PERFORMERS: dict[str, Performer] = {"delete": delete_pod, "quarantine": quarantine_pod}
DESCRIPTIONS: dict[str, Callable[[ActionStep, Pod], str]] = {
    "delete": describe_delete,
    "quarantine": describe_quarantine,
}
