"""Auditing: the record of what an executor did, on the SecurityEvent and as Kubernetes Events.

Each step ends with one :class:`Execution` in the SecurityEvent's status (conflict-safe: two
executors may write at once; a step that already has one is never recorded twice, except that the
attempt that acted replaces a racing duplicate's "already gone") and a core/v1 Event
(:mod:`amtd.kube.events`) on the pod, where its owners look (``kubectl get events -n``); a Warning
(Skipped, Failed) also on the SecurityEvent. A success is in the SecurityEvent's status already:
one Event per effect keeps a storm of 1 000 alerts from writing 3 000 Events.
Event names derive from the step and its reason, so a retried write is a 409 ("already
recorded"), not a second Event.

The builders are pure; :func:`record_execution_status`, :func:`announce_execution` and
:func:`publish_events` are the side effects and take a :class:`~amtd.kube.api.Cluster`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from amtd.act.verdicts import StepVerdict
from amtd.kube.api import EVENTS, SECURITY_EVENTS, Cluster
from amtd.kube.apierrors import ApiError, ConflictError, NotFoundError
from amtd.kube.events import (
    CLUSTER_SCOPED_EVENTS_NAMESPACE,
    make_kube_event,
    refer_to_pod,
    refer_to_security_event,
)
from amtd.model.actionevents import ActionStep
from amtd.model.objects import JsonPatch, Object
from amtd.model.securityevents import Execution
from amtd.model.statuses import plan_execution_records
from amtd.model.targets import parse_target

LOG = logging.getLogger(__name__)
# Every racing writer of one SecurityEvent's status (the parts of a split request, at the
# executor's concurrency) loses at most once per winner: enough rounds for all of them, since
# giving up after acting would leave effects unrecorded.
RECORD_ATTEMPTS = 48


def make_execution(step: ActionStep, verdict: StepVerdict, executor: str, now: str) -> Execution:
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


def build_event(involved: Mapping[str, str], execution: Execution, namespace: str) -> Object:
    """A core/v1 Event telling what happened to ``involved``; its name is stable per step. Pure."""
    return make_kube_event(
        involved, namespace=namespace, reason=execution.reason,
        message=f"{execution.action} {execution.result}: {execution.message}",
        # the reason too: a record replacing a duplicate's (record_execution_status) is told too
        key=f"{involved.get('uid', '')}/{execution.step_id}/{execution.action}/{execution.reason}",
        component=execution.executor, now=execution.time, action=execution.action,
        event_type="Warning" if is_warning(execution) else "Normal",
    )  # fmt: skip


def is_warning(execution: Execution) -> bool:
    """Whether the execution needs an operator's attention (it did not do what was decided)."""
    return execution.result in ("Skipped", "Failed")


def build_step_events(
    execution: Execution, pod: Mapping[str, str], security_event: Mapping[str, str],
    namespace: str,
) -> list[Object]:  # fmt: skip
    """The Events for one execution: on the pod (its namespace), and on the SecurityEvent too
    when it is a Warning. Pure."""
    on_pod = build_event(pod, execution, namespace)
    if not is_warning(execution):
        return [on_pod]
    return [on_pod, build_event(security_event, execution, CLUSTER_SCOPED_EVENTS_NAMESPACE)]


def record_execution_status(
    cluster: Cluster, name: str, execution: Execution, current: Object | None = None,
    supersedes: str | None = None,
) -> Execution | None:  # fmt: skip
    """:func:`record_executions_status` for one step; the execution recorded (None: gone)."""
    stored = record_executions_status(cluster, name, [(execution, supersedes)], current)
    return stored[0] if stored else None


def record_executions_status(
    cluster: Cluster, name: str, attempts: Sequence[tuple[Execution, str | None]],
    current: Object | None = None,
) -> list[Execution] | None:  # fmt: skip
    """Record the steps' executions in one status write, each unless its step has one; per
    attempt, the execution that stands (None: the SecurityEvent is gone).

    A duplicate racing with the first attempt gets the first attempt's record back, except that
    a record with the reason an attempt names (the attempt that acted: the "pod already gone" a
    racing duplicate may find once this attempt deleted it) gives way to it. ``current`` (the
    SecurityEvent as the caller read it) saves a read unless it is stale (409: read again).
    """
    standing: list[Execution] = []

    def plan(current: Object) -> JsonPatch | None:
        operations, standing[:] = plan_execution_records(current.get("status"), attempts)
        return operations

    with LATEST.writing(name) as latest:
        try:
            written = cluster.patch_status(
                SECURITY_EVENTS, name, plan, current=latest.get() or current,
                attempts=RECORD_ATTEMPTS,
            )  # fmt: skip
        except NotFoundError:
            LOG.warning("SecurityEvent %s is gone: %d execution(s) not recorded", name,
                        len(attempts))  # fmt: skip
            latest.set(None)
            return None
        latest.set(written)
    return standing


@dataclass
class Latest:
    """One SecurityEvent's newest copy this process wrote, while its writer holds the lock."""

    obj: Object | None = None

    def get(self) -> Object | None:
        """The copy (None: none kept)."""
        return self.obj

    def set(self, obj: Object | None) -> None:
        """Keep ``obj`` (None: forget it)."""
        self.obj = obj


class LatestWrites:
    """Status writes to one SecurityEvent, one at a time in this process, each based on the
    copy the one before wrote.

    The parts of a split request reach an executor at once and all record on the same, large
    SecurityEvent: written concurrently, each would meet a 409, read the object again and
    retry, so the reads grow with the square of the parts. In turn, and based on the last copy
    written, each part is one write; a copy made stale by another process still meets a 409
    (the write is conditional) and is read again, so nothing rests on it.
    """

    def __init__(self, keep: int = 16) -> None:  # copies kept: a large status is ~1 MB
        self.keep = keep
        self.lock = threading.Lock()
        self.entries: OrderedDict[str, tuple[threading.Lock, Latest]] = OrderedDict()

    @contextlib.contextmanager
    def writing(self, name: str) -> Iterator[Latest]:
        """Hold the SecurityEvent's write turn; its latest copy to read and replace."""
        with self.lock:
            entry = self.entries.pop(name, None) or (threading.Lock(), Latest())
            self.entries[name] = entry
            while len(self.entries) > self.keep:
                self.entries.popitem(last=False)
        with entry[0]:
            yield entry[1]


LATEST = LatestWrites()


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


def announce_execution(
    cluster: Cluster, execution: Execution, security_event: str, uid: str | None
) -> None:
    """The Events of a newly recorded execution (:func:`build_step_events`)."""
    target = parse_target(execution.target)
    pod = refer_to_pod(target.namespace, target.name, execution.pod_uid)
    involved = refer_to_security_event(security_event, uid)
    publish_events(cluster, build_step_events(execution, pod, involved, target.namespace))
