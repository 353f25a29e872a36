"""P2: best-match decision time, at 1 / 100 / 10 000 AMTDs of 10 rules each.

Two layouts: every AMTD in the pod's namespace (1 in 1 000 selects the pod), and AMTDs spread
over 1 000 namespaces (every one in the pod's namespace selects it). The index is built once;
each sample is one ``choose_best_match`` for an event drawn from a mix of Falco-like rules (most
fall back to ``type: default``, some hit a specific rule). The floor is one dict lookup in the
same run, so the ratio reads "a decision costs N dict lookups". Index build time is reported
apart; so is the matcher's whole way to a decision through the API stand-in at 10 000 AMTDs in
the pod's namespace: cold (listed and built per event) and warm (kept by amtd.decide.indexing
while its watch reports no change).
"""

from __future__ import annotations

import random
import time
from typing import Any

from benching import Row, sized, summarize, time_calls, time_loop
from launching import run_standin

from amtd.decide.indexing import PolicyIndexes
from amtd.decide.matching import PolicyIndex, choose_best_match
from amtd.decide.triaging import list_policies
from amtd.kube.api import POLICIES
from amtd.model.policies import Policy
from support.standins import NAMESPACES
from support.waiting import wait_for

TITLE = "P2 best-match decision (PolicyIndex built once, choose_best_match per event)"
SIZES = sized((1, 100, 10_000), (1, 100))
SPREAD_NAMESPACES = 1_000
RULES_PER_POLICY = 10
GOAL = 1e-3  # p50 at 10 000 AMTDs
WARM_SIZE = sized(10_000, 20)
POLICY_TYPE = {"apiVersion": "amtd.r6security.com/v1beta1", "kind": "AdaptiveMovingTargetDefense"}
TYPES = [f"Falco rule {n}" for n in range(50)]
LEVELS = ["Notice", "Warning", "Error", "Critical"]
SOURCES = ["FalcoIntegrator", "KubeArmorIntegrator"]
POD_LABELS = {"app": "app-0", "pod-template-hash": "6b8f7d9c4", "mtdSecured": "true", "team": "a"}


def make_policy(number: int, spread: bool) -> Policy:
    """AMTD number ``number``: a fallback plus 9 rules of 1 to 3 keys."""
    strategy: list[dict[str, Any]] = [{"rule": {"type": "default"}, "action": {"disable": {}}}]
    for position in range(RULES_PER_POLICY - 1):
        rule = {"type": TYPES[(number * 9 + position) % len(TYPES)]}
        if position % 3 >= 1:
            rule["threatLevel"] = LEVELS[(number + position) % len(LEVELS)]
        if position % 3 == 2:
            rule["source"] = SOURCES[position % len(SOURCES)]
        strategy.append({"rule": rule, "action": {"delete": {}}})
    namespace = f"ns-{number % SPREAD_NAMESPACES}" if spread else "ns-0"
    selector = {"app": "app-0" if spread else f"app-{number % 1_000}", "mtdSecured": "true"}
    return Policy.model_validate(
        {
            "metadata": {"name": f"amtd-{number:05d}", "namespace": namespace},
            "spec": {"podSelector": selector, "strategy": strategy},
        }
    )


def make_events(count: int) -> list[dict[str, str]]:
    """A reproducible mix of event rules with Phoenix's three keys."""
    chooser = random.Random(2)
    return [
        {
            "type": chooser.choice(TYPES),
            "threatLevel": chooser.choice(LEVELS),
            "source": chooser.choice(SOURCES),
        }
        for _ in range(count)
    ]


def measure_floor(size: int) -> float:
    """Seconds per dict lookup in a loop, on a dict as large as the index."""
    table = {frozenset({("type", f"t{n}")}): n for n in range(max(size * RULES_PER_POLICY, 16))}
    keys = list(table)[:16]

    def loop(iterations: int) -> None:
        get = table.get
        for step in range(iterations):
            get(keys[step & 15])

    return time_loop(loop, sized(200_000, 100))


def measure_layout(size: int, spread: bool, events: list[dict[str, str]]) -> list[Row]:
    """Decision and build rows for one size and layout."""
    policies = [make_policy(number, spread) for number in range(size)]
    layout = f"spread over {SPREAD_NAMESPACES:,} ns" if spread else "one namespace"
    index = PolicyIndex.from_policies(policies)
    calls = sized(2_000 if size >= 10_000 else 5_000, 3)
    samples = time_calls(
        lambda step: choose_best_match(index, "ns-0", POD_LABELS, events[step % len(events)]),
        calls,
    )
    floor = measure_floor(size)
    goal = GOAL if size >= 10_000 else None
    decision = summarize(
        f"decide, {size:,} AMTDs, {layout}", samples, floor, goal, "p50 ≤ 1 ms" if goal else "-"
    )
    return [decision, measure_build(policies, size, layout)]


def measure_build(policies: list[Policy], size: int, layout: str) -> Row:
    """Build time of the index the matcher makes per event: the pod namespace's AMTDs."""
    local = [policy for policy in policies if policy.metadata.namespace == "ns-0"]
    repeat = sized(5 if len(local) >= 1_000 else 200, 1)
    samples = []
    for _ in range(repeat):
        started = time.perf_counter_ns()
        PolicyIndex.from_policies(local)
        samples.append((time.perf_counter_ns() - started) / 1e9)
    name = f"build index of the pod's ns ({len(local):,} of {size:,} AMTDs, {layout})"
    return summarize(name, samples, None, None, "-")


def measure() -> list[Row]:
    """All P2 rows."""
    events = make_events(256)
    rows = []
    for size in SIZES:
        for spread in (False, True):
            rows += measure_layout(size, spread, events)
    return rows + measure_matcher_path(events)


def measure_matcher_path(events: list[dict[str, str]]) -> list[Row]:
    """The matcher's way to its index at WARM_SIZE AMTDs in the pod's namespace, through the API
    stand-in: cold (list, parse, build, decide: every event of a process without the watch) and
    warm (the namespace's index kept while the AMTD watch reports no change, then decide)."""
    with run_standin(in_process=True) as stand:
        stand.cluster.create(NAMESPACES, {"metadata": {"name": "ns-0"}})
        for number in range(WARM_SIZE):
            document = make_policy(number, spread=False).model_dump(by_alias=True, mode="json")
            stand.cluster.create(POLICIES, {**document, **POLICY_TYPE}, "ns-0")
        warm = PolicyIndexes(list_policies)
        warm.start_watching(lambda: stand.cluster)
        wait_for(lambda: warm.watched is stand.cluster, "the AMTD watch", 30.0)

        def decide(indexes: PolicyIndexes, step: int) -> None:
            index = indexes.index_for(stand.cluster, ["ns-0"])
            choose_best_match(index, "ns-0", POD_LABELS, events[step % len(events)])

        cold = PolicyIndexes(list_policies)  # never watching: lists every time
        cold_samples = time_calls(lambda step: decide(cold, step), sized(7, 1), sized(1, 0))
        warm_samples = time_calls(lambda step: decide(warm, step), sized(2_000, 3))
        warm.stop()
    layout = f"{WARM_SIZE:,} AMTDs in the pod's namespace"
    return [
        summarize(f"matcher warm: kept index + decide, {layout}", warm_samples, None, GOAL,
                  "p50 ≤ 1 ms"),
        summarize(f"matcher cold: list + parse + build + decide, {layout}", cold_samples, None,
                  None, "-"),
    ]  # fmt: skip
