"""P4: Falco alert POST → pod deleted, end to end on the embedded stack, against one HTTP hop.

The whole chain runs as deployed locally (``amtd_stack.Stack``): ingest-falco creates the
SecurityEvent, the ApiServerSource sees it and posts to the Broker, the Broker delivers it to the
matcher, whose reply goes back through the Broker to executor-delete, which deletes the pod. Each
run attacks a fresh Running pod of the demo Deployment (it replaces the ones deleted) and waits
until the stack is idle before the next. Moments are taken by a listener on the stand-in's store,
so "deleted" is when the API server removed the pod. The floor is one loopback HTTP round trip
(keep-alive POST to a no-op functions-framework function) measured in the same run.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from benching import Row, sized, summarize
from launching import (
    Client,
    falco_request,
    install_workload,
    noop_function,
    run_stack,
    running_pods,
    serve,
)

from amtd.kube.api import Cluster
from amtd_stack.apiserver.storing import StoreEvent
from amtd_stack.running.stack import Stack
from support.waiting import wait_for

TITLE = "P4 alert POST → pod deleted, on the embedded stack (ratio: loopback HTTP round trips)"
RUNS = sized(100, 1)
WARMUP = sized(5, 0)
REPLICAS = sized(3, 1)
GOAL_RATIO = 15.0
RULE = "Terminal shell in container"  # the demo policy deletes the pod
SE_KEY = ("amtd.r6security.com", "securityevents")


@dataclass
class Moments:
    """perf_counter moments of store changes: SecurityEvent created/decided, pod deleted."""

    created: dict[str, float] = field(default_factory=dict)
    decided: dict[str, float] = field(default_factory=dict)
    deleted: dict[str, float] = field(default_factory=dict)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def note(self, event: StoreEvent) -> None:
        """Store listener (runs under the store lock: only records a time)."""
        now, name = time.perf_counter(), event.obj["metadata"]["name"]
        if event.kind_key == SE_KEY and event.type == "ADDED":
            self.created.setdefault(name, now)
        elif event.kind_key == SE_KEY and (event.obj.get("status") or {}).get("decisions"):
            self.decided.setdefault(name, now)
        elif event.kind_key == ("", "pods") and event.type == "DELETED":
            self.deleted.setdefault(name, now)
        else:
            return
        with self.changed:
            self.changed.notify_all()

    def wait_deleted(self, pod: str, deadline_s: float = 30.0) -> float:
        """The moment ``pod`` was removed, waiting for it if need be."""
        with self.changed:
            if not self.changed.wait_for(lambda: pod in self.deleted, deadline_s):
                raise TimeoutError(f"pod {pod} was not deleted within {deadline_s} s")
            return self.deleted[pod]


@dataclass
class Run:
    """One alert's timeline (seconds from the POST) and what the chain cost."""

    total: float
    ingest: float
    decide: float
    act: float
    api_calls: int
    deliveries: int


@dataclass
class Bench:
    """What every run uses: the stack, its client connections, the moments, the token."""

    stack: Stack
    cluster: Cluster
    client: Client
    moments: Moments
    token: str
    attacked: set[str] = field(default_factory=set)


def attack(bench: Bench) -> Run:
    """POST an alert about a fresh pod; wait for its deletion and for the stack to be idle."""
    stack, moments, attacked = bench.stack, bench.moments, bench.attacked
    pod = wait_for(lambda: fresh_pod(bench.cluster, attacked), "a fresh Running pod", 30.0)
    attacked.add(pod)
    api, deliveries = len(api_requests(stack)), len(stack.attempts)
    started = time.perf_counter()
    status, body = bench.client.post(falco_request(pod, RULE, bench.token))
    answered = time.perf_counter()
    if status != 201:
        raise RuntimeError(f"ingest answered {status}: {body[:300]!r}")
    deleted = moments.wait_deleted(pod)
    if not stack.wait_idle(30):
        raise TimeoutError("the stack did not become idle")
    name = next(n for n, t in moments.created.items() if started <= t <= answered)
    return Run(
        total=deleted - started, ingest=answered - started,
        decide=moments.decided[name] - moments.created[name],
        act=deleted - moments.decided[name],
        api_calls=len(api_requests(stack)) - api, deliveries=len(stack.attempts) - deliveries,
    )  # fmt: skip


def fresh_pod(cluster: Cluster, attacked: set[str]) -> str | None:
    """A Running demo pod not attacked before."""
    return next((pod for pod in running_pods(cluster) if pod not in attacked), None)


def api_requests(stack: Stack) -> list[Any]:
    """The stand-in's request log."""
    assert stack.apiserver is not None
    return stack.apiserver.requests


def measure_floor(port: int, count: int) -> list[float]:
    """Seconds per keep-alive POST to the no-op function."""
    client, request = Client(port), ({"Content-Type": "application/json"}, b"{}")
    samples = []
    try:
        for _ in range(count):
            started = time.perf_counter_ns()
            client.post(request)
            samples.append((time.perf_counter_ns() - started) / 1e9)
    finally:
        client.close()
    return samples


def run_chain(stack: Stack, token: str, noop_port: int) -> tuple[list[Run], list[float]]:
    """WARMUP + RUNS attacks; floor samples before each measured one."""
    assert stack.apiserver is not None
    moments = Moments()
    stack.apiserver.store.add_listener(moments.note)
    cluster = Cluster.connect(str(stack.kubeconfig))
    install_workload(cluster, REPLICAS)
    client = Client(int(stack.functions["ingest-falco"].url.rsplit(":", 1)[1]))
    bench = Bench(stack, cluster, client, moments, token)
    runs, floor = [], []
    try:
        for number in range(WARMUP + RUNS):
            floor += measure_floor(noop_port, 3) if number >= WARMUP else []
            run = attack(bench)
            runs += [run] if number >= WARMUP else []
    finally:
        client.close()
    return runs, floor


def make_rows(runs: list[Run], floor: list[float]) -> list[Row]:
    """Total against the floor, then its stages."""
    base = statistics.median(floor)
    calls = statistics.median(run.api_calls for run in runs)
    hops = statistics.median(run.deliveries for run in runs)
    return [
        summarize(f"alert POST → pod deleted (chain: {calls:.0f} API requests, {hops:.0f} "
                  "Broker deliveries)", [r.total for r in runs], base, GOAL_RATIO * base,
                  f"≤ {GOAL_RATIO:.0f}x round trip"),
        summarize("  stage: ingest-falco answers (SecurityEvent created)",
                  [r.ingest for r in runs], base, None, "-"),
        summarize("  stage: created → decided (source, Broker, matcher)",
                  [r.decide for r in runs], base, None, "-"),
        summarize("  stage: decided → pod deleted (reply, Broker, executor-delete)",
                  [r.act for r in runs], base, None, "-"),
        summarize("loopback HTTP round trip (the floor)", floor, None, None, "-"),
    ]  # fmt: skip


def measure() -> list[Row]:
    """All P4 rows."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the Broker ingress's access log
    with noop_function() as noop_code, serve(noop_code) as noop_port, run_stack() as running:
        stack, token = running
        runs, floor = run_chain(stack, token, noop_port)
    return make_rows(runs, floor)
