"""Triaging: decide a SecurityEvent's current spec generation and record it, against a Cluster.

The matcher's work behind its HTTP edge: read the SecurityEvent (the event that announced it may
be stale), gather the facts (each target's pod; the AMTDs of each namespace that has a target
pod, listed once), decide (pure, :mod:`amtd.decide.deciding`), record every decision in one
conflict-safe status write, and return the steps executors must perform.

Status writes fire ``update`` events of their own; they never re-decide, because a generation
already recorded (``status.observedGeneration``) is not decided again. Only a redelivery (the
caller says ``may_replay``) of a decided generation re-emits the recorded, unexecuted steps.
A decision with a target left unmatched gets a Kubernetes Event on the SecurityEvent (no executor
will write one for that target); a fully matched one is told by its status and by the executors'
Events on the pods. The Event is best effort and handed to ``defer`` (the matcher writes it after
its reply, :mod:`amtd.kube.deferring`); by default it is written at once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

from pydantic import ValidationError

from amtd.decide.deciding import (
    PodFacts,
    decide_targets,
    explain_decision,
    read_event_spec,
    record_executions_without_executor,
)
from amtd.decide.indexing import PolicyIndexes
from amtd.decide.matching import PolicyIndex
from amtd.decide.signing import sign_decisions
from amtd.kube.api import EVENTS, PODS, POLICIES, SECURITY_EVENTS, Cluster
from amtd.kube.apierrors import ApiError, ConflictError, NotFoundError
from amtd.kube.deferring import Defer, run_now
from amtd.kube.events import (
    CLUSTER_SCOPED_EVENTS_NAMESPACE,
    make_kube_event,
    refer_to_security_event,
)
from amtd.model.actionevents import ActionRequest, SecurityEventRef, make_action_request
from amtd.model.apiserverevents import InvalidEventError
from amtd.model.objects import Object
from amtd.model.policies import Policy
from amtd.model.securityeventreaders import read_ref, read_status, summarize_validation_error
from amtd.model.securityevents import Decision, Execution, SecurityEventStatus
from amtd.model.signatures import SigningKey
from amtd.model.statuses import is_generation_decided, record_decisions
from amtd.model.targets import Target

logger = logging.getLogger(__name__)

COMPONENT = "amtd-matcher"
LIST_PODS_FROM = 32  # targets in one namespace from which one list costs less than their reads

TriageOutcome = Literal[
    "Gone", "AlreadyDecided", "Redelivered", "Decided", "DecidedElsewhere", "Superseded",
    "LeftToMatcher",
]  # fmt: skip


@dataclass(frozen=True)
class Triage:
    """What happened to one SecurityEvent, and the request for executors (None: nothing to do)."""

    outcome: TriageOutcome
    request: ActionRequest | None = None
    decisions: tuple[Decision, ...] = field(default_factory=tuple)


def triage_security_event(
    cluster: Cluster, name: str, *, may_replay: bool, now: str, defer: Defer = run_now,
    signer: SigningKey | None = None, indexes: PolicyIndexes | None = None,
) -> Triage:  # fmt: skip
    """Decide, sign and record the SecurityEvent's current generation, or replay what was
    recorded. Without ``signer`` (the sweeper) nothing is decided: only the matcher signs."""
    found = cluster.find(SECURITY_EVENTS, name)
    return triage_found(cluster, name, found, may_replay=may_replay, now=now, defer=defer,
                        signer=signer, indexes=indexes)  # fmt: skip


def triage_found(
    cluster: Cluster, name: str, obj: Object | None, *, may_replay: bool, now: str,
    defer: Defer = run_now, signer: SigningKey | None = None, indexes: PolicyIndexes | None = None,
) -> Triage:  # fmt: skip
    """:func:`triage_security_event` on the SecurityEvent as just read (None: it is gone)."""
    if obj is None:
        logger.info("SecurityEvent %s is gone: nothing to decide", name)
        return Triage("Gone")
    ref = read_ref(obj)
    status = read_status(obj)
    if is_generation_decided(status, ref.generation):
        return replay_decisions(ref, status, may_replay)
    if signer is None:
        logger.info("SecurityEvent %s gen %d is undecided: left to the matcher", *ref_log(ref))
        return Triage("LeftToMatcher")
    decisions, executions = decide_security_event(cluster, obj, ref, now, indexes)
    decisions = sign_decisions(signer, ref, decisions)
    return record_and_request(cluster, ref, decisions, executions, now, read=obj, defer=defer)


def replay_decisions(
    ref: SecurityEventRef, status: SecurityEventStatus, may_replay: bool
) -> Triage:
    """A decided generation: on a redelivery, re-request the steps not yet executed."""
    decisions = tuple(status.decisions)
    if not may_replay:
        logger.info("SecurityEvent %s gen %d already decided: no action", ref.name, ref.generation)
        return Triage("AlreadyDecided", None, decisions)
    request = make_action_request(ref, status.decisions, status.executions)
    pending = len(request.steps) if request else 0
    logger.info(
        "SecurityEvent %s gen %d redelivered: re-requesting %d unexecuted steps",
        ref.name, ref.generation, pending,
    )  # fmt: skip
    return Triage("Redelivered", request, decisions)


def decide_security_event(
    cluster: Cluster, obj: Object, ref: SecurityEventRef, now: str,
    indexes: PolicyIndexes | None = None,
) -> tuple[list[Decision], list[Execution]]:  # fmt: skip
    """Gather the facts and decide every target (the decision itself is pure); the policies
    come from ``indexes`` when given (warm), else are listed."""
    try:
        entries, rule = read_event_spec(obj.get("spec"))
    except ValueError as error:
        raise InvalidEventError("InvalidSecurityEvent", f"{ref.name}: {error}") from None
    pods = gather_pods(cluster, [entry for entry in entries if isinstance(entry, Target)])
    namespaces = {target.namespace for target, pod in pods.items() if pod is not None}
    if indexes is None:
        index = PolicyIndex.from_policies(gather_policies(cluster, namespaces))
    else:
        index = indexes.index_for(cluster, namespaces)
    decisions = decide_targets(ref.uid, ref.generation, rule, entries, pods, index, now)
    return decisions, record_executions_without_executor(decisions, now)


def gather_pods(cluster: Cluster, targets: Iterable[Target]) -> dict[Target, PodFacts | None]:
    """Each target's pod (uid and labels), None when it does not exist: one read per pod, or
    one list of the namespace when it has ``LIST_PODS_FROM`` targets or more (an outbreak)."""
    by_namespace: dict[str, list[Target]] = {}
    for target in targets:
        by_namespace.setdefault(target.namespace, []).append(target)
    facts: dict[Target, PodFacts | None] = {}
    for namespace, group in by_namespace.items():
        if len(group) < LIST_PODS_FROM:
            facts.update((target, read_pod(cluster, target)) for target in group)
            continue
        listed = {pod["metadata"]["name"]: pod for pod in cluster.list(PODS, namespace)}
        facts.update((target, read_pod_facts(listed.get(target.name))) for target in group)
    return facts


def read_pod(cluster: Cluster, target: Target) -> PodFacts | None:
    """One pod's facts, or None (404)."""
    return read_pod_facts(cluster.find(PODS, target.name, target.namespace))


def read_pod_facts(pod: Object | None) -> PodFacts | None:
    """The facts of a pod as read, None for none (pure)."""
    if pod is None:
        return None
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    return PodFacts(uid=str(meta.get("uid", "")), labels={k: str(v) for k, v in labels.items()})


def gather_policies(cluster: Cluster, namespaces: Iterable[str]) -> list[Policy]:
    """The valid AMTDs of the given namespaces: one list call per namespace."""
    return [
        policy for namespace in sorted(namespaces) for policy in list_policies(cluster, namespace)
    ]


def list_policies(cluster: Cluster, namespace: str) -> list[Policy]:
    """A namespace's AMTDs; invalid ones are skipped with a log line naming them."""
    try:
        items = cluster.list(POLICIES, namespace)
    except NotFoundError:
        logger.warning("AMTD API not found (CRD not installed?): no policies in %s", namespace)
        return []
    policies = (parse_policy(item, namespace) for item in items)
    return [policy for policy in policies if policy is not None]


def parse_policy(item: Object, namespace: str) -> Policy | None:
    """An AMTD as a model, or None (logged) when it is not valid."""
    try:
        return Policy.model_validate(item)
    except ValidationError as error:
        name = (item.get("metadata") or {}).get("name", "?")
        problem = summarize_validation_error(error)
        logger.warning("skipping invalid AMTD %s/%s: %s", namespace, name, problem)
        return None


def record_if_current(
    ref: SecurityEventRef, decisions: Sequence[Decision], executions: Sequence[Execution],
    current: Object,
) -> dict[str, Any] | None:  # fmt: skip
    """The new status, unless the object changed identity or spec since we read it (pure)."""
    if read_ref(current) != ref:
        return None
    return record_decisions(read_status(current), ref.generation, decisions, executions)


def record_and_request(
    cluster: Cluster, ref: SecurityEventRef, decisions: Sequence[Decision],
    executions: Sequence[Execution], now: str, read: Object | None = None,
    defer: Defer = run_now,
) -> Triage:  # fmt: skip
    """Write the decisions (conflict-safe); if another matcher won the race, use its record.

    ``read`` is the object the decision was made from: writing against it saves a read (if it
    changed since, the write is refused with a 409 and retried on a fresh read). The decision's
    Event goes to ``defer``.
    """
    mutate = partial(record_if_current, ref, decisions, executions)
    try:
        written = cluster.mutate_status(SECURITY_EVENTS, ref.name, mutate=mutate, current=read)
    except NotFoundError:
        logger.info("SecurityEvent %s was deleted while deciding", ref.name)
        return Triage("Gone")
    if written is None:
        return adopt_recorded(cluster, ref)
    for decision in decisions:
        logger.info("SecurityEvent %s decided %s", ref.name, explain_decision(decision))
    if not all(decision.outcome == "Matched" for decision in decisions):
        defer(partial(emit_decision_event, cluster, ref, written, tuple(decisions), now))
    return Triage("Decided", make_action_request(ref, decisions, executions), tuple(decisions))


def adopt_recorded(cluster: Cluster, ref: SecurityEventRef) -> Triage:
    """Someone recorded first: theirs stands if it is this generation, else a newer one rules."""
    current = cluster.find(SECURITY_EVENTS, ref.name)
    if current is None:
        return Triage("Gone")
    status = read_status(current)
    if read_ref(current) == ref and is_generation_decided(status, ref.generation):
        logger.info("SecurityEvent %s gen %d was decided elsewhere first", *ref_log(ref))
        request = make_action_request(ref, status.decisions, status.executions)
        return Triage("DecidedElsewhere", request, tuple(status.decisions))
    logger.info("SecurityEvent %s changed since gen %d: its own event decides it", *ref_log(ref))
    return Triage("Superseded")


def ref_log(ref: SecurityEventRef) -> tuple[str, int]:
    """Name and generation, for log lines."""
    return ref.name, ref.generation


def emit_decision_event(
    cluster: Cluster, ref: SecurityEventRef, written: Object, decisions: Sequence[Decision],
    now: str,
) -> None:  # fmt: skip
    """A Kubernetes Event on the SecurityEvent: reason Unmatched (no target matched, Warning) or
    Decided (some did); best effort."""
    unmatched = (written.get("status") or {}).get("phase") == "Unmatched"
    reason = "Unmatched" if unmatched else "Decided"
    involved = refer_to_security_event(ref.name, ref.uid)
    manifest = make_kube_event(
        involved, namespace=CLUSTER_SCOPED_EVENTS_NAMESPACE, reason=reason,
        message="; ".join(explain_decision(decision) for decision in decisions),
        key=f"{ref.uid}/{ref.generation}/{reason}", component=COMPONENT, now=now,
        event_type="Warning" if unmatched else "Normal",
    )  # fmt: skip
    try:
        cluster.create(EVENTS, manifest, CLUSTER_SCOPED_EVENTS_NAMESPACE)
    except ConflictError:
        logger.info("Event %s already recorded", manifest["metadata"]["name"])
    except ApiError as error:
        logger.warning("could not record the %s Event of %s: %s", reason, ref.name, error)
