"""P1: the matcher's cost per event over HTTP, against a no-op function under the same server.

Both run as functions-framework processes (gunicorn, one worker) on this machine, driven by the
same keep-alive HTTP client, calls interleaved so load hits both alike. The matcher answers the
real ``resource.add`` CloudEvents an ApiServerSource sends, one per distinct SecurityEvent, each
about a Running pod of the demo Deployment, against the API stand-in in its own process. So the
matcher's figure *includes* its API round trips: read the event, read the pod, list the
namespace's AMTDs, write the status, and write the Event (after its reply, by its background
worker, while the next calls are timed; counted in a short second run against an in-process
stand-in, whose request log sees every call). Also measured: a redelivered ``add`` of
a decided event (re-requests the recorded steps), the ``update`` its own status write causes (no
decision, no reply), and one API round trip alone."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import TypeVar

from benching import Row, sized, summarize
from launching import (
    INTEGRATOR_EVENT,
    NAMESPACE,
    Client,
    FunctionCode,
    Request,
    StandIn,
    apiserver_add_event,
    install_workload,
    noop_function,
    run_standin,
    serve,
)

from amtd.kube.api import SECURITY_EVENTS
from support.builders import create_security_event
from support.signing import matcher_key_environment

TITLE = "P1 matcher per event over HTTP vs a no-op functions-framework function"
EVENTS = sized(300, 2)
WARMUP = sized(20, 1)
COUNTED = sized(10, 1)  # events of the API-call count run
GOAL_RATIO = 1.5
T = TypeVar("T")
Samples = tuple[list[float], list[float]]  # floor and function, interleaved


def time_post(client: Client, request: Request, expected: int) -> float:
    """Seconds for one POST; RuntimeError when the answer is not ``expected``."""
    started = time.perf_counter_ns()
    status, body = client.post(request)
    elapsed = (time.perf_counter_ns() - started) / 1e9
    if status != expected:
        raise RuntimeError(f"expected {expected}, got {status}: {body[:300]!r}")
    return elapsed


def time_interleaved(
    noop: Client, matcher: Client, requests: list[Request], expected: int
) -> tuple[list[float], list[float]]:
    """Floor and matcher samples, one of each per request, in turn."""
    floor, samples = [], []
    for request in requests:
        floor.append(time_post(noop, request, 204))
        samples.append(time_post(matcher, request, expected))
    return floor, samples


def make_events(stand: StandIn, pods: list[str], prefix: str, count: int) -> list[Request]:
    """``count`` new SecurityEvents (rule network-attack: quarantine) and their add events."""
    return [
        apiserver_add_event(
            create_security_event(
                stand.cluster,
                f"{prefix}-{n:04d}",
                targets=[f"{NAMESPACE}/{pods[n % 2]}"],
                rule_type="network-attack",
                **INTEGRATOR_EVENT,
            )
        )
        for n in range(count)
    ]


def update_events(stand: StandIn, names: list[str]) -> list[Request]:
    """The ``resource.update`` events the matcher's status writes cause (decided objects)."""
    requests = []
    for name in names:
        headers, body = apiserver_add_event(stand.cluster.get(SECURITY_EVENTS, name))
        headers["ce-type"] = "dev.knative.apiserver.resource.update"
        requests.append((headers, body))
    return requests


def measure_round_trip(stand: StandIn, names: list[str]) -> Row:
    """One API round trip (GET a SecurityEvent) from this process with the official client."""
    samples = []
    for name in names:
        started = time.perf_counter_ns()
        stand.cluster.get(SECURITY_EVENTS, name)
        samples.append((time.perf_counter_ns() - started) / 1e9)
    return summarize("one API round trip (GET SecurityEvent, official client)", samples,
                     None, None, "-")  # fmt: skip


def ratio_row(name: str, floor: list[float], samples: list[float], goal: bool) -> Row:
    """A row against the median of the interleaved floor samples."""
    base = statistics.median(floor)
    target = GOAL_RATIO * base if goal else None
    return summarize(name, samples, base, target, f"≤ {GOAL_RATIO}x no-op" if goal else "-")


def run_scenarios(stand: StandIn, noop: Client, matcher: Client, count: int) -> dict[str, Samples]:
    """New, redelivered and status-update events, each interleaved with the floor."""
    pods = install_workload(stand.cluster, replicas=2)
    time_interleaved(noop, matcher, make_events(stand, pods, "warm", WARMUP), 200)
    fresh = make_events(stand, pods, "bench", count)
    new = time_interleaved(noop, matcher, fresh, 200)
    again = time_interleaved(noop, matcher, fresh, 200)
    updates = update_events(stand, [f"bench-{n:04d}" for n in range(count)])
    return {"new": new, "again": again, "update": time_interleaved(noop, matcher, updates, 204)}


def count_api_calls(stand: StandIn, noop: Client, matcher: Client, count: int) -> dict[str, float]:
    """API requests per event of each scenario, from the in-process stand-in's request log."""
    assert stand.server is not None
    pods = install_workload(stand.cluster, replicas=2)
    fresh = make_events(stand, pods, "count", count)
    calls = {}
    for kind, requests, expected in (("new", fresh, 200), ("again", fresh, 200)):
        before = len(stand.server.requests)
        time_interleaved(noop, matcher, requests, expected)
        calls[kind] = (len(stand.server.requests) - before) / count
    before = len(stand.server.requests)
    updates = update_events(stand, [f"count-{n:04d}" for n in range(count)])
    setup = len(stand.server.requests) - before
    time_interleaved(noop, matcher, updates, 204)
    calls["update"] = (len(stand.server.requests) - before - setup) / count
    return calls


def make_rows(result: dict[str, Samples], calls: dict[str, float], round_trip: Row) -> list[Row]:
    """The P1 table; one row sets the new-event cost against no-op + its API round trips."""
    floor, new = result["new"]
    overhead_floor = statistics.median(floor) + calls["new"] * round_trip.median
    return [
        ratio_row(f"matcher, new SecurityEvent: decide + record ({calls['new']:.0f} API calls)",
                  *result["new"], goal=True),
        summarize(f"  same, against no-op + {calls['new']:.0f} API round trips (GETs) alone",
                  new, overhead_floor, None, "-"),
        ratio_row(f"matcher, redelivered add of a decided event ({calls['again']:.0f} API call)",
                  *result["again"], goal=False),
        ratio_row(f"matcher, update from its own status write ({calls['update']:.0f} API call)",
                  *result["update"], goal=False),
        summarize("no-op function (the floor), all interleaved calls",
                  [s for floor, _ in result.values() for s in floor], None, None, "-"),
        round_trip,
    ]  # fmt: skip


def with_functions(in_process: bool, run: Callable[[StandIn, Client, Client], T]) -> T:
    """Run ``run`` with a stand-in, the no-op function and the matcher (as user matcher)."""
    with run_standin(in_process) as stand, noop_function() as noop_code:
        env = {"KUBECONFIG": str(stand.kubeconfig("matcher")), **matcher_key_environment()}
        with serve(noop_code) as noop_port, serve(FunctionCode.of("matcher"), env) as port:
            noop, matcher = Client(noop_port), Client(port)
            try:
                return run(stand, noop, matcher)
            finally:
                noop.close()
                matcher.close()


def measure() -> list[Row]:
    """Timings with the stand-in in its own process; API calls counted in a short second run."""

    def timed(stand: StandIn, noop: Client, matcher: Client) -> list[Row]:
        result = run_scenarios(stand, noop, matcher, EVENTS)
        round_trip = measure_round_trip(stand, [f"bench-{n:04d}" for n in range(EVENTS)])
        return make_rows(result, calls, round_trip)

    calls = with_functions(True, lambda *parts: count_api_calls(*parts, count=COUNTED))
    return with_functions(False, timed)
