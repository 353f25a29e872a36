"""P7: one SecurityEvent naming 1 000 pods, on the embedded stack: all deleted within one
delivery timeout, each exactly once.

The matcher decides every target (one list of the namespace's pods), records the decisions in
one status write and splits the steps into ``action.requested`` parts (its reply carries one,
the others go to the Broker through its SinkBinding); executor-delete settles each part's steps
a few at a time and records each part in one status write. The clock runs from the
SecurityEvent's creation to the status write that records its last execution (moments from a
listener on the stand-in's store). Exactness: as many executions as targets, one per step, all
``Succeeded``; as many pod deletions by executor-delete as targets; no delivery of a part
retried or timed out.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import yaml
from benching import Row, sized
from launching import NAMESPACE, ROOT, install_workload, run_stack

from amtd.kube.api import SECURITY_EVENTS, Cluster
from amtd.model.actionevents import ACTION_REQUESTED
from amtd_stack.apiserver.storing import StoreEvent
from amtd_stack.running.stack import Stack
from support.builders import make_security_event

TITLE = "P7 one SecurityEvent with 1 000 targets → every pod deleted, on the embedded stack"
TARGETS = sized(1_000, 60)
RULE = "Terminal shell in container"  # the demo policy deletes the pod
SE_KEY = ("amtd.r6security.com", "securityevents")


def delivery_timeout_s() -> float:
    """The Broker's ``delivery.timeout`` (knative/broker.yaml, ``PT<n>S``)."""
    broker = yaml.safe_load((ROOT / "knative" / "broker.yaml").read_text())
    return float(broker["spec"]["delivery"]["timeout"].removeprefix("PT").removesuffix("S"))


@dataclass
class Progress:
    """When the SecurityEvent appeared and when its status recorded ``TARGETS`` executions."""

    name: str
    created: float | None = None
    decided: float | None = None
    finished: float | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def note(self, event: StoreEvent) -> None:
        """Store listener (under the store lock: only records moments)."""
        if event.kind_key != SE_KEY or event.obj["metadata"]["name"] != self.name:
            return
        if event.type == "ADDED":
            self.created = time.perf_counter()
        status = event.obj.get("status") or {}
        if status.get("decisions") and self.decided is None:
            self.decided = time.perf_counter()
        executions = status.get("executions") or []
        if len(executions) >= TARGETS and self.finished is None:
            self.finished = time.perf_counter()
            self.done.set()


def check_exact(stack: Stack, cluster: Cluster, name: str) -> list[str]:
    """What is not exact: executions, deletions, part deliveries (empty: all exact)."""
    status = cluster.get(SECURITY_EVENTS, name).get("status") or {}
    executions = status.get("executions") or []
    problems = []
    if len({e["stepId"] for e in executions}) != len(executions) or len(executions) != TARGETS:
        problems.append(f"{len(executions)} executions for {TARGETS} targets")
    results = sorted({f"{e['result']}/{e['reason']}" for e in executions})
    if results != ["Succeeded/PodDeleted"]:
        problems.append(f"results {results}")
    assert stack.apiserver is not None
    deletes = [r for r in stack.apiserver.requests if r.user == "executor-delete"
               and r.verb == "delete" and r.resource == "pods"]  # fmt: skip
    if len(deletes) != TARGETS or any(r.status != 200 for r in deletes):
        problems.append(f"{len(deletes)} pod deletions for {TARGETS} targets")
    parts = [a for a in stack.attempts if a.event_type == ACTION_REQUESTED]
    if any(a.attempt > 1 or a.status != 200 for a in parts):
        problems.append("a part's delivery was retried or failed")
    return problems


def attack_all(stack: Stack, cluster: Cluster, pods: list[str]) -> tuple[Progress, list[str]]:
    """Create the SecurityEvent naming every pod; wait for its last execution."""
    event = make_security_event(targets=[f"{NAMESPACE}/{pod}" for pod in pods], rule_type=RULE,
                                source="FalcoIntegrator", threat_level="Notice")  # fmt: skip
    progress = Progress(event["metadata"]["name"])
    assert stack.apiserver is not None
    stack.apiserver.store.add_listener(progress.note)
    cluster.create(SECURITY_EVENTS, event)
    if not progress.done.wait(120):
        raise TimeoutError(f"{progress.name}: not every target executed within 120 s")
    stack.wait_idle(60)
    return progress, check_exact(stack, cluster, progress.name)


def make_rows(progress: Progress, problems: list[str], parts: int, timeout_s: float) -> list[Row]:
    """The time against the delivery timeout, exactness in the verdict; then its two stages."""
    created, decided, finished = progress.created, progress.decided, progress.finished
    assert created is not None and decided is not None and finished is not None
    took = finished - created
    verdict = "pass" if took <= timeout_s and not problems else "FAIL"
    detail = "; ".join(problems) or "exact: one Succeeded execution and one deletion per target"
    name = f"{TARGETS:,} targets in {parts} requests: created → all executed ({detail})"
    return [
        Row(name, took, took, timeout_s, f"≤ {timeout_s:.0f} s (delivery timeout)", verdict),
        Row("  stage: created → decided (source, Broker, matcher)", decided - created,
            decided - created, None, "-", "info"),
        Row("  stage: decided → all executed (parts, Broker, executor-delete)", finished - decided,
            finished - decided, None, "-", "info"),
    ]  # fmt: skip


def measure() -> list[Row]:
    """The P7 rows."""
    with run_stack() as (stack, _):
        cluster = Cluster.connect(str(stack.kubeconfig))
        pods = install_workload(cluster, TARGETS, deadline_s=120.0)[:TARGETS]
        progress, problems = attack_all(stack, cluster, pods)
        parts = len({a.event_id for a in stack.attempts if a.event_type == ACTION_REQUESTED})
        return make_rows(progress, problems, parts, delivery_timeout_s())
