"""P6: a storm of distinct alerts on the embedded stack — 1 000 pods, one Falco alert each.

Four keep-alive senders post the alerts to ingest-falco (as Falcosidekick replicas would); each
alert becomes its own SecurityEvent, decided by the matcher and executed by executor-delete.
The clock runs from the first POST to the moment the last attacked pod is deleted (moments from
a listener on the stand-in's store); handled alerts per second is the figure, with no floor
(the goal is absolute on this 2-core machine, everything in one box). Exactness: every pod
deleted once by executor-delete, every SecurityEvent with exactly one Succeeded execution. API
writes per handled alert are counted from the stand-in's request log, for our functions only
(the stand-in's controllers replacing pods are not ours). Peak RSS: VmHWM of each function's
processes after the storm.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

from benching import Row, sized
from launching import (
    Client,
    cpu_seconds_of_tree,
    falco_request,
    install_workload,
    peak_rss_bytes,
    run_stack,
)

from amtd.kube.api import SECURITY_EVENTS, Cluster
from amtd_stack.apiserver.storing import StoreEvent
from amtd_stack.running.stack import Stack

TITLE = "P6 alert storm: 1 000 pods, one distinct Falco alert each, on the embedded stack"
PODS = sized(1_000, 12)
SENDERS = 4
RULE = "Terminal shell in container"  # the demo policy deletes the pod
GOAL_RATE = 50.0  # handled alerts per second
GOAL_WRITES = 5.0  # API writes per handled alert
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")


@dataclass
class Deletions:
    """When each attacked pod was removed from the store."""

    attacked: set[str]
    moments: dict[str, float] = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)

    def note(self, event: StoreEvent) -> None:
        """Store listener (under the store lock: only records moments)."""
        name = event.obj["metadata"]["name"]
        if event.kind_key == ("", "pods") and event.type == "DELETED" and name in self.attacked:
            self.moments.setdefault(name, time.perf_counter())
            if len(self.moments) == len(self.attacked):
                self.done.set()


def send_storm(port: int, token: str, pods: list[str]) -> list[str]:
    """One alert per pod from SENDERS threads; the unexpected answers."""
    failures: list[str] = []

    def send(share: list[str]) -> None:
        client = Client(port)
        try:
            for pod in share:
                status, body = client.post(falco_request(pod, RULE, token))
                if status != 201:
                    failures.append(f"{pod}: {status} {body[:120]!r}")
        finally:
            client.close()

    threads = [threading.Thread(target=send, args=(pods[n::SENDERS],)) for n in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


def check_exact(stack: Stack, cluster: Cluster, pods: list[str]) -> list[str]:
    """What was lost or doubled (empty: nothing)."""
    assert stack.apiserver is not None
    deletes = [r.name for r in stack.apiserver.requests if r.user == "executor-delete"
               and r.verb == "delete" and r.resource == "pods" and r.status == 200]  # fmt: skip
    problems = []
    if sorted(deletes) != sorted(pods):
        problems.append(f"{len(deletes)} deletions ({len(set(deletes))} pods) for {len(pods)}")
    events = cluster.list(SECURITY_EVENTS)
    executions = [e for se in events for e in (se.get("status") or {}).get("executions") or []]
    if len(events) != len(pods) or len(executions) != len(pods):
        problems.append(f"{len(events)} SecurityEvents, {len(executions)} executions")
    if any(e["result"] != "Succeeded" for e in executions):
        problems.append("an execution did not succeed")
    return problems


def count_writes(stack: Stack) -> dict[str, int]:
    """Our functions' successful writes, by ``verb resource``."""
    assert stack.apiserver is not None
    ours, counts = set(stack.functions), dict[str, int]()
    for record in stack.apiserver.requests:
        if record.user not in ours or record.verb not in WRITE_VERBS or record.status >= 300:
            continue
        key = f"{record.verb} {'/'.join(filter(None, (record.resource, record.subresource)))}"
        counts[key] = counts.get(key, 0) + 1
    return counts


def count_settled_writes(
    stack: Stack, quiet_s: float = 2.0, deadline_s: float = 60.0
) -> dict[str, int]:
    """:func:`count_writes` once no new write came for ``quiet_s``: the functions write their
    Kubernetes Events after replying, and under the storm that backlog outlasts the Broker's."""
    counts, quiet_since, deadline = (
        count_writes(stack),
        time.monotonic(),
        time.monotonic() + deadline_s,
    )
    while time.monotonic() - quiet_since < quiet_s and time.monotonic() < deadline:
        time.sleep(0.25)
        latest = count_writes(stack)
        if latest != counts:
            counts, quiet_since = latest, time.monotonic()
    return counts


def storm_rows(wall: float, problems: list[str], writes: dict[str, int], cpu_s: float) -> list[Row]:
    """Throughput (exactness in its verdict), writes per alert, then CPU per alert."""
    rate = PODS / wall
    detail = "; ".join(problems) or "none lost, none doubled"
    verdict = "pass" if rate >= GOAL_RATE and not problems else "FAIL"
    per_alert = sum(writes.values()) / PODS
    listed = ", ".join(f"{n / PODS:.1f} {key}" for key, n in sorted(writes.items()))
    return [
        Row(f"{PODS:,} alerts → {PODS:,} pods deleted: {rate:,.0f} handled alerts/s ({detail})",
            wall / PODS, wall / PODS, None, f"≥ {GOAL_RATE:.0f} alerts/s", verdict),
        Row(f"API writes per handled alert ({listed})", per_alert, per_alert, None,
            f"≤ {GOAL_WRITES:.0f}", "pass" if per_alert <= GOAL_WRITES else "FAIL", "writes"),
        Row("CPU per handled alert, every process of the box (stack, functions, adapters, "
            "senders)", cpu_s / PODS, cpu_s / PODS, None, "-", "info"),
    ]  # fmt: skip


def rss_rows(stack: Stack) -> list[Row]:
    """Peak RSS of each function (its largest process), in MiB, as info rows."""
    rows = []
    for name, function in sorted(stack.functions.items()):
        peak = peak_rss_bytes(function.pid) / 2**20 if function.pid else 0.0
        rows.append(Row(f"peak RSS of {name} under the storm", peak, peak, None, "-", "info",
                        "MiB"))  # fmt: skip
    return rows


def measure() -> list[Row]:
    """The P6 rows."""
    with run_stack() as (stack, token):
        cluster = Cluster.connect(str(stack.kubeconfig))
        pods = install_workload(cluster, PODS, deadline_s=120.0)[:PODS]
        deletions = Deletions(set(pods))
        assert stack.apiserver is not None
        stack.apiserver.store.add_listener(deletions.note)
        stack.apiserver.clear_requests()
        port = int(stack.functions["ingest-falco"].url.rsplit(":", 1)[1])
        started, cpu_before = time.perf_counter(), cpu_seconds_of_tree(os.getpid())
        failures = send_storm(port, token, pods)
        if failures:
            raise RuntimeError(f"{len(failures)} alerts refused, e.g. {failures[0]}")
        if not deletions.done.wait(300):
            raise TimeoutError(f"{len(deletions.moments)} of {PODS} pods deleted in 300 s")
        wall = max(deletions.moments.values()) - started
        stack.wait_idle(120)
        writes = count_settled_writes(stack)
        cpu_s = cpu_seconds_of_tree(os.getpid()) - cpu_before  # the settled Events included
        problems = check_exact(stack, cluster, pods)
        return storm_rows(wall, problems, writes, cpu_s) + rss_rows(stack)
