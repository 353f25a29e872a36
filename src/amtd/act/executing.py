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
5. the Executions are recorded, a request's in one status write, and Events are written
   (:mod:`amtd.act.auditing`): the attempt that acted wins over a racing duplicate that found
   the pod already gone; the Events are best effort and go to ``ExecutorSettings.defer`` (an
   executor writes them after its reply).

Steps 2 to 4 run for several steps at once (``AMTD_STEP_CONCURRENCY``): a request with hundreds of
targets must finish inside its delivery timeout.

Kubernetes 404/409 never escape as errors; TransientError does (the caller answers 503).
No HTTP here: :mod:`amtd.edge.answering` decodes the request and replies.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
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
from amtd.kube.api import PODS, SECURITY_EVENTS, Cluster
from amtd.kube.apierrors import ConflictError, InvalidError, NotFoundError, TransientError
from amtd.kube.deferring import Defer, run_now
from amtd.model.actionevents import (
    ActionRequest,
    ActionStep,
    SecurityEventRef,
    is_step_decided,
)
from amtd.model.objects import Object
from amtd.model.securityevents import Execution, SecurityEventStatus
from amtd.model.targets import parse_target

LOG = logging.getLogger(__name__)
ATTEMPTS = 5
DEFAULT_CONCURRENCY = 8
MAX_CONCURRENCY = 64


@dataclass(frozen=True)
class ExecutorSettings:
    """Who is executing, what it must leave alone, and how its Events are written."""

    action: ExecutableAction
    executor: str
    protected: frozenset[str]
    defer: Defer = run_now  # the Events of an execution (after the reply, in a function)
    env: Mapping[str, str] = field(default_factory=dict)  # what actions read their options from
    verifier: Verifier = field(default_factory=lambda: Verifier({}, "no trusted keys given"))
    concurrency: int = 1  # steps settled at once (AMTD_STEP_CONCURRENCY)


def make_settings(
    action: ExecutableAction, executor: str, env: Mapping[str, str], defer: Defer = run_now
) -> ExecutorSettings:
    """The settings of the executor of ``action``, configured by ``env``."""
    protected = read_protected_namespaces(env)
    concurrency = read_concurrency(env)
    return ExecutorSettings(
        action, executor, protected, defer, env, read_verifier(env), concurrency
    )


def read_concurrency(env: Mapping[str, str]) -> int:
    """``AMTD_STEP_CONCURRENCY`` (default 8): how many of a request's steps run at once; each
    step's API calls are sequential, so this bounds the executor's load on the API server."""
    text = env.get("AMTD_STEP_CONCURRENCY", "").strip() or str(DEFAULT_CONCURRENCY)
    if not text.isdigit() or not 1 <= int(text) <= MAX_CONCURRENCY:
        raise ValueError(f"AMTD_STEP_CONCURRENCY must be 1..{MAX_CONCURRENCY}, not {text!r}")
    return int(text)


@dataclass(frozen=True)
class Outcome:
    """A settled step: its Execution, and the reason of a record that gives way to it (the
    "pod already gone" a racing duplicate finds once this attempt acted), if it acted."""

    execution: Execution
    supersedes: str | None = None


def execute_request(
    cluster: Cluster, request: ActionRequest, settings: ExecutorSettings, now: str
) -> list[Execution]:
    """Execute this executor's steps; returns their Executions (recorded ones included).

    UnverifiedStepError, before anything is read, when a step is not signed by the matcher.
    New steps are settled concurrently (at most ``settings.concurrency`` at a time) and recorded
    in one status write, against the SecurityEvent as read here (a read fewer; if it changed
    meanwhile the write is refused with a 409 and retried on a fresh read). An error of one
    step (a TransientError: 503) is raised only once the others' executions are recorded.
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
    done = {item.step_id: item for item in status.executions}
    decisions = {decision.step_id: decision for decision in status.decisions}
    decided = [step for step in steps if is_step_decided(step, decisions)]
    outcomes, failure = settle_steps(cluster, ref, [s for s in decided if s.step_id not in done],
                                     settings, now)  # fmt: skip
    done.update(record_outcomes(cluster, ref, outcomes, settings, found))
    if failure is not None:
        raise failure
    return [done.get(step.step_id) or refuse_undecided(step, ref, settings, now) for step in steps]


def settle_steps(
    cluster: Cluster, ref: SecurityEventRef, steps: Sequence[ActionStep],
    settings: ExecutorSettings, now: str,
) -> tuple[list[Outcome], Exception | None]:  # fmt: skip
    """Settle the steps, at most ``settings.concurrency`` at a time; their outcomes, and the
    first error met (its step stays unsettled, for the Broker's retry). Any error is held until
    the others' outcomes are recorded: a step that acted must never go unrecorded."""
    if not steps:
        return [], None
    failures: list[Exception] = []

    def settle(step: ActionStep) -> Outcome | None:
        try:
            return settle_outcome(cluster, ref, step, settings, now)
        except Exception as error:  # raised by the caller once the rest is recorded
            failures.append(error)
            return None

    if len(steps) == 1:  # the usual request: settled here, not in a pool's new thread
        settled = [settle(steps[0])]
    else:
        with ThreadPoolExecutor(max_workers=min(settings.concurrency, len(steps))) as pool:
            settled = list(pool.map(settle, steps))
    outcomes = [outcome for outcome in settled if outcome is not None]
    return outcomes, (failures[0] if failures else None)


def settle_outcome(
    cluster: Cluster, ref: SecurityEventRef, step: ActionStep, settings: ExecutorSettings,
    now: str,
) -> Outcome:  # fmt: skip
    """Guard, claim and act on one step; its Outcome (TransientError: try again later)."""
    verdict, acted = settle_or_fail(cluster, step, settings, ref.name)
    LOG.info("step %s on %s: %s %s %s: %s", step.step_id, step.target, step.action,
             verdict.result, verdict.reason, verdict.message)  # fmt: skip
    gone = settings.action.judge_gone(step.target).reason if acted else None
    return Outcome(auditing.make_execution(step, verdict, settings.executor, now), gone)


def record_outcomes(
    cluster: Cluster, ref: SecurityEventRef, outcomes: Sequence[Outcome],
    settings: ExecutorSettings, read: Object,
) -> dict[str, Execution]:  # fmt: skip
    """Record the outcomes in one status write; step id → the Execution that stands. Only
    records written here are announced (a racing duplicate announced its own)."""
    if not outcomes:
        return {}
    attempts = [(outcome.execution, outcome.supersedes) for outcome in outcomes]
    stored = auditing.record_executions_status(cluster, ref.name, attempts, read)
    standing = stored if stored is not None else [outcome.execution for outcome in outcomes]
    for outcome, stood in zip(outcomes, standing, strict=True):
        if stored is not None and stood is outcome.execution:
            settings.defer(partial(auditing.announce_execution, cluster, stood, ref.name, ref.uid))
    return {execution.step_id: execution for execution in standing}


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
    """Guard, claim (if the action leaves a claim) and act, re-reading the pod whenever it
    changed underneath.

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
            claimed = claim_pod(cluster, step, pod, name) if settings.action.leaves_claim else pod
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
