"""Executing: carry out the steps of an ``action.requested`` event for one action, on the cluster.

Only steps the matcher signed are acted on: every step of this executor is verified
(:mod:`amtd.act.verifying`) before anything is read or written, and one that fails refuses the
request (UnverifiedStepError). Exactly one effect per step under at-least-once delivery:

1. a step whose Execution is already in the SecurityEvent's status is done: nothing happens;
2. guards (:mod:`amtd.act.guarding`) settle steps that must not act, before any change;
3. the pod is claimed (:mod:`amtd.act.claiming`) with its resourceVersion; a 409 means someone wrote
   the pod in between, so it is read again and the guards run again;
4. the action (:mod:`amtd.act.registry`), each in its own retry-safe order;
   a 404 means the pod went away and is judged like any missing pod;
5. the Execution is recorded and Events are written (:mod:`amtd.act.auditing`): the attempt
   that acted wins over a racing duplicate that found the pod already gone; the Events are
   best effort and go to ``ExecutorSettings.defer`` (an executor writes them after its reply).

Kubernetes 404/409 never escape as errors; TransientError does (the caller answers 503).
No HTTP here: :mod:`amtd.edge.answering` decodes the request and replies.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial

from amtd.act import auditing
from amtd.act.actions import ExecutableAction, Pod
from amtd.act.claiming import (
    Claim,
    build_claim_patch,
    is_bound_to,
    is_claim_standing,
    is_own_claim,
    read_claim,
)
from amtd.act.guarding import (
    check_dry_run,
    check_pod,
    check_protected_namespace,
    read_protected_namespaces,
)
from amtd.act.verdicts import StepVerdict
from amtd.act.verifying import Verifier, read_verifier, verify_steps
from amtd.kube.api import (
    PODS,
    SECURITY_EVENTS,
    Cluster,
    ConflictError,
    InvalidError,
    NotFoundError,
    TransientError,
)
from amtd.kube.deferring import Defer, run_now
from amtd.model.actionevents import (
    ActionRequest,
    ActionStep,
    SecurityEventRef,
    is_step_decided,
)
from amtd.model.objects import Object
from amtd.model.securityevents import Execution, SecurityEventStatus
from amtd.model.statuses import find_execution
from amtd.model.targets import parse_target

LOG = logging.getLogger(__name__)
ATTEMPTS = 5


@dataclass(frozen=True)
class ExecutorSettings:
    """Who is executing, what it must leave alone, and how its Events are written."""

    action: ExecutableAction
    executor: str
    protected: frozenset[str]
    defer: Defer = run_now  # the Events of an execution (after the reply, in a function)
    env: Mapping[str, str] = field(default_factory=dict)  # what actions read their options from
    verifier: Verifier = field(default_factory=lambda: Verifier({}, "no trusted keys given"))


def make_settings(
    action: ExecutableAction, executor: str, env: Mapping[str, str], defer: Defer = run_now
) -> ExecutorSettings:
    """The settings of the executor of ``action``, configured by ``env``."""
    protected = read_protected_namespaces(env)
    return ExecutorSettings(action, executor, protected, defer, env, read_verifier(env))


def execute_request(
    cluster: Cluster, request: ActionRequest, settings: ExecutorSettings, now: str
) -> list[Execution]:
    """Execute this executor's steps; returns their Executions (recorded ones included).

    UnverifiedStepError, before anything is read, when a step is not signed by the matcher.

    The first step's record is written against the SecurityEvent as read here (a read fewer;
    if it changed meanwhile, the write is refused with a 409 and retried on a fresh read).
    """
    ref = request.security_event
    steps = request.steps_for(settings.action.name)
    verify_steps(settings.verifier, ref, steps)  # before any read: unsigned work is not ours
    found = read_security_event(cluster, ref.name, ref.uid)
    if found is None:
        LOG.warning("SecurityEvent %s (uid %s) is gone: its steps are skipped", ref.name, ref.uid)
        gone = StepVerdict(
            "Skipped", "SecurityEventGone", f"SecurityEvent {ref.name} no longer exists"
        )
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
    step: ActionStep, ref: SecurityEventRef, settings: ExecutorSettings, now: str
) -> Execution:
    """A step the matcher never recorded (forged, altered or stale): never acted on.

    Not written to the SecurityEvent either: whoever sent it must not be able to write there.
    """
    LOG.warning("step %s on %s is not among SecurityEvent %s's decisions: refused",
                step.step_id, step.target, ref.name)  # fmt: skip
    message = "the step does not match the decision recorded on the SecurityEvent"
    verdict = StepVerdict("Skipped", "NotDecided", message)
    return auditing.make_execution(step, verdict, settings.executor, now)


def read_security_event(cluster: Cluster, name: str, uid: str) -> Object | None:
    """The SecurityEvent, or None when it (that incarnation) no longer exists."""
    found = cluster.find(SECURITY_EVENTS, name)
    if found is None or found["metadata"].get("uid") != uid:
        return None
    return found


def execute_step(
    cluster: Cluster, ref: SecurityEventRef, step: ActionStep, settings: ExecutorSettings,
    status: SecurityEventStatus, now: str, read: Object | None = None,
) -> Execution:  # fmt: skip
    """One step, exactly once: a recorded step is not repeated; a new one is settled, recorded
    (against ``read``, the SecurityEvent as last read, when given)."""
    recorded = find_execution(status, step.step_id)
    if recorded is not None:
        LOG.info("step %s already executed (%s %s): nothing to do", step.step_id,
                 recorded.result, recorded.reason)  # fmt: skip
        return recorded
    verdict, acted = settle_or_fail(cluster, step, settings, ref.name)
    execution = auditing.make_execution(step, verdict, settings.executor, now)
    LOG.info("step %s on %s: %s %s %s: %s", step.step_id, step.target, step.action,
             verdict.result, verdict.reason, verdict.message)  # fmt: skip
    # a duplicate that came after our delete finds the pod gone: our verdict replaces its record
    gone = settings.action.judge_gone(step.target).reason if acted else None
    stored = auditing.record_execution_status(cluster, ref.name, execution, read, gone)
    if stored is execution:  # else gone, or a racing duplicate recorded (and announced) first
        settings.defer(partial(auditing.announce_execution, cluster, execution, ref.name, ref.uid))
    return stored or execution


def settle_or_fail(
    cluster: Cluster, step: ActionStep, settings: ExecutorSettings, name: str
) -> tuple[StepVerdict, bool]:
    """:func:`settle_step`, with a refusal that retrying cannot fix recorded as Failed."""
    try:
        return settle_step(cluster, step, settings, name)
    except InvalidError as error:  # forbidden or invalid: a retry would meet the same answer
        return StepVerdict("Failed", "ApiRejected", f"the API server refused: {error}"), False


def settle_step(
    cluster: Cluster, step: ActionStep, settings: ExecutorSettings, name: str
) -> tuple[StepVerdict, bool]:
    """Guard, claim and act, re-reading the pod whenever it changed underneath.

    Returns the verdict and whether it is the action's own (it acted), not a guard's.
    """
    target = parse_target(step.target)
    verdict = check_protected_namespace(target.namespace, settings.protected)
    if verdict is not None:
        return verdict, False
    pod = cluster.find(PODS, target.name, target.namespace)
    for _ in range(ATTEMPTS):
        if pod is None:
            return settings.action.judge_gone(step.target), False
        standing = read_standing_claim(cluster, step, pod)
        verdict = check_pod(step, pod, settings.action, standing) or check_dry_run(
            step, settings.action.describe(step, pod)
        )
        if verdict is not None:
            return verdict, False
        try:
            claimed = claim_pod(cluster, step, pod, name)
            return settings.action.perform(cluster, step, claimed, name, settings.env), True
        except ConflictError:
            pod = cluster.find(PODS, target.name, target.namespace)
        except NotFoundError:
            pod = None
    raise TransientError(409, "Conflict", f"pod {step.target} kept changing; gave up for now")


def read_standing_claim(cluster: Cluster, step: ActionStep, pod: Pod) -> Claim | None:
    """The pod's claim if it stands (this step's, or backed by its SecurityEvent), else None."""
    claim = read_claim(pod)
    if claim is None or is_own_claim(claim, pod, step.step_id):
        return claim
    # a value copied from a template cannot name this pod's uid: no read needed to dismiss it
    found = cluster.find(SECURITY_EVENTS, claim.security_event) if is_bound_to(claim, pod) else None
    if is_claim_standing(claim, pod, found):
        return claim
    LOG.warning("pod %s: claim %s stands for no real step; it will be overwritten",
                step.target, claim)  # fmt: skip
    return None


def claim_pod(cluster: Cluster, step: ActionStep, pod: Pod, name: str) -> Pod:
    """Claim the pod for the step (ConflictError if it changed since read); returns it fresh."""
    patch = build_claim_patch(pod, step.step_id, name)
    if patch is None:
        return pod  # a retry of this step: the claim is ours already
    meta = pod["metadata"]
    claimed = cluster.patch(PODS, meta["name"], patch, meta["namespace"])
    LOG.info("claimed pod %s/%s for step %s", meta["namespace"], meta["name"], step.step_id)
    return claimed
