"""P5: an ingest storm — 10 000 identical Falco alerts to ingest-falco, one gunicorn worker.

Identical alerts (same rule, pod and alert time) fall in one dedup window, so they are one
SecurityEvent: the first creates it, the rest are answered ``duplicate`` and only counted (a
``Repeated`` core/v1 Event is created at most once per flush interval; ingest never writes to a
SecurityEvent after creating it). Several keep-alive senders
post concurrently, as Falcosidekick replicas would. Throughput is alerts per second of wall time;
its floor is the same storm against a no-op function in the same run. API writes are counted
from the stand-in's request log (it runs in this process for that).
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from dataclasses import replace

from benching import Row, sized, summarize
from launching import (
    Client,
    FunctionCode,
    Request,
    StandIn,
    falco_request,
    noop_function,
    run_standin,
    serve,
)

from amtd.kube.api import SECURITY_EVENTS

TITLE = "P5 ingest storm: 10 000 identical alerts to ingest-falco (1 worker)"
ALERTS = sized(10_000, 20)
SENDERS = 4
SLICE = sized(100, 5)  # alerts per slice, for the spread of the throughput
GOAL_RATE = 1_000.0  # alerts/s per worker
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
FLUSH_SECONDS = 30  # OCCURRENCES_FLUSH_SECONDS as deployed (func.yaml)
ALERT_TIME = "2026-11-26T12:00:00.000000000Z"  # fixed: every alert in the same dedup window


def storm(port: int, request: Request, expected: set[int]) -> tuple[float, list[float]]:
    """Send ALERTS copies of ``request`` from SENDERS threads; wall time, answer moments."""
    times: list[list[float]] = [[] for _ in range(SENDERS)]
    failures: list[str] = []
    start = threading.Barrier(SENDERS + 1)

    def send(index: int) -> None:
        client = Client(port)
        start.wait()
        try:
            for _ in range(ALERTS // SENDERS):
                status, body = client.post(request)
                times[index].append(time.perf_counter())
                if status not in expected:
                    failures.append(f"{status}: {body[:200]!r}")
        finally:
            client.close()

    threads = [threading.Thread(target=send, args=(n,)) for n in range(SENDERS)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"{len(failures)} unexpected answers, e.g. {failures[0]}")
    return time.perf_counter() - began, sorted(t - began for sender in times for t in sender)


def slice_times(answered: list[float]) -> list[float]:
    """Seconds per alert within each consecutive slice of SLICE answers (the spread)."""
    marks = [0.0, *answered[SLICE - 1 :: SLICE]]
    return [(end - start) / SLICE for start, end in itertools.pairwise(marks)]


def throughput_row(name: str, wall: float, answered: list[float], floor: float | None) -> Row:
    """Seconds per alert (1 / throughput): median and p95 over slices of SLICE answers; the
    verdict takes the whole storm (goal 1 ms per alert, 1 000 alerts/s)."""
    spread = slice_times(answered)
    row = summarize(f"{name}: {ALERTS / wall:,.0f} alerts/s overall", spread, floor, None, "-")
    if floor is None:
        return row
    verdict = "pass" if ALERTS / wall >= GOAL_RATE else "FAIL"
    return replace(row, goal=f"≥ {GOAL_RATE:,.0f} alerts/s overall", verdict=verdict)


def count_writes(stand: StandIn, user: str) -> dict[str, int]:
    """Write requests by ``user``, per verb, resource and answer (``create securityevents 201``)."""
    assert stand.server is not None
    counts: dict[str, int] = {}
    for record in stand.server.requests:
        if record.user == user and record.verb in WRITE_VERBS:
            key = f"{record.verb} {record.resource} {record.status}"
            counts[key] = counts.get(key, 0) + 1
    return counts


def writes_row(stand: StandIn, wall: float) -> Row:
    """The storm's API writes: pass with one SecurityEvent, its creates bounded by the senders
    (their first alerts race before the name is known), no other write to it, and one Repeated
    Event per flush interval at most, not one per alert."""
    writes = count_writes(stand, "ingest-falco")
    created = len(stand.cluster.list(SECURITY_EVENTS))
    text = ", ".join(f"{count} {key}" for key, count in sorted(writes.items())) or "none"
    on_them = {key: n for key, n in writes.items() if key.split()[1] == "securityevents"}
    creates = sum(n for key, n in on_them.items() if key.startswith("create "))
    changes = sum(on_them.values()) - creates  # patches, updates, deletes: must be none
    others = sum(writes.values()) - sum(on_them.values())  # the Repeated Events
    flushes = 1 + int(wall // FLUSH_SECONDS)
    verdict = "pass" if (
        created == 1 and writes.get("create securityevents 201") == 1 and creates <= SENDERS
        and changes == 0 and others <= flushes
    ) else "FAIL"  # fmt: skip
    name = f"storm wall time; API writes: {text}; SecurityEvents: {created}"
    return Row(name, wall, wall, None, "1 create per dedup window", verdict)


def measure() -> list[Row]:
    """Floor storm, then the ingest storm; rows for both and the write count."""
    token = secrets.token_urlsafe(24)
    request = falco_request("storm-pod-0", "Terminal shell in container", token, ALERT_TIME)
    with run_standin(in_process=True) as stand, noop_function() as noop_code:
        env = {"KUBECONFIG": str(stand.kubeconfig("ingest-falco")), "INGEST_TOKEN": token}
        with serve(noop_code) as noop_port:
            floor_wall, floor_answers = storm(noop_port, request, {204})
        with serve(FunctionCode.of("ingest-falco"), env) as port:
            wall, answered = storm(port, request, {200, 201})
        floor = throughput_row("floor", floor_wall, floor_answers, None).median
        return [
            throughput_row("ingest-falco storm", wall, answered, floor),
            throughput_row("no-op function, same storm (the floor)", floor_wall, floor_answers,
                           None),
            writes_row(stand, wall),
        ]  # fmt: skip
