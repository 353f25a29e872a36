"""The fault suite: the whole system on the embedded stack, under duplicates, restarts, API
faults, an alert storm and an ApiServerSource outage. Nothing may be lost or done twice.

One stack for the module; each test has its own namespace. Faults are injected only into the
functions' API calls (not the test's own reads, not the source's watch). Each test prints its
counts (repeated in the terminal summary).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cloudevents.http import CloudEvent

from amtd.kube.api import SECURITY_EVENTS, Cluster
from amtd.model.actionevents import ACTION_REQUESTED, make_action_request, to_request_attributes
from amtd.model.securityeventreaders import read_ref
from amtd.model.securityevents import SecurityEventStatus
from amtd_stack.running.stack import Stack
from support.builders import SHELL_RULE, create_security_event
from support.standins import connect, deploy_defended_workload
from support.waiting import wait_for

from .chains import (
    Alert,
    Audit,
    alerts_about,
    count_effects,
    count_isolations,
    falco_cloudevent,
    is_function_call,
    now,
    post_storm,
    post_to_broker,
    run_fault_stack,
    settle,
)
from .conftest import report_counts

SETTLE_S = 60.0  # a whole chain on a loaded 2-core machine
API_FAULTS = {"rate": 0.2, "statuses": (500, 503, 429), "latency_s": 0.05}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The real functions, the committed manifests, the stand-in: started once."""
    with run_fault_stack(tmp_path_factory.mktemp("faults")) as running:
        yield running


@pytest.fixture(scope="module")
def cluster(stack: Stack) -> Cluster:
    """The test's own connection (admin; never faulted)."""
    return connect(stack.kubeconfig)


@pytest.fixture
def api_faults(stack: Stack) -> Iterator[Any]:
    """The stand-in, with faults cleared after the test whatever happens."""
    assert stack.apiserver is not None
    try:
        yield stack.apiserver
    finally:
        stack.apiserver.clear_faults()


def read_status(cluster: Cluster, name: str) -> SecurityEventStatus:
    """The SecurityEvent's status."""
    return SecurityEventStatus.model_validate(
        cluster.get(SECURITY_EVENTS, name).get("status") or {}
    )


def is_finished(cluster: Cluster, names: list[str]) -> bool:
    """Every SecurityEvent is Completed (each step has its execution)."""
    return all(read_status(cluster, name).phase == "Completed" for name in names)


def restart(stack: Stack, *names: str) -> None:
    """Stop the functions' processes mid-stream, then start them again on the same ports.

    A deliberate stop: the supervisor does not count it as a crash nor restart them itself.
    """
    processes = [stack.functions[name] for name in names]
    for process in processes:
        process.stop()
    for process in processes:
        process.start()
    for process in processes:
        process.wait_ready(time.monotonic() + 60)


class Duplicator:
    """Re-publishes every source event and every action request ``copies`` more times."""

    def __init__(self, stack: Stack, cluster: Cluster, names: set[str], copies: int) -> None:
        self.stack, self.cluster, self.names, self.copies = stack, cluster, names, copies
        self.sent: dict[str, int] = {}
        self.errors: list[BaseException] = []
        self._repeated: set[str] = set()  # event ids
        self._requested: set[str] = set()  # SecurityEvent names
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        """Begin watching for events to duplicate."""
        self._thread.start()

    def stop(self) -> None:
        """Stop after one last pass."""
        self._stopping.set()
        self._thread.join(30)

    def _run(self) -> None:
        try:
            while not self._stopping.wait(0.05):
                self._pass()
            self._pass()
        except BaseException as error:  # reported by the test
            self.errors.append(error)

    def _pass(self) -> None:
        for event in self.stack.source_events("securityevents"):
            if event.get("name") in self.names and event["id"] not in self._repeated:
                self._repeat(event)
        for name in sorted(self.names - self._requested):
            request = self._request_of(name)
            if request is not None:
                self._repeat(request)
                self._requested.add(name)

    def _request_of(self, name: str) -> CloudEvent | None:
        """The action.requested event for the recorded decisions (all steps), once decided."""
        found = self.cluster.find(SECURITY_EVENTS, name)
        if found is None:  # not created yet
            return None
        status = SecurityEventStatus.model_validate(found.get("status") or {})
        request = make_action_request(read_ref(found), status.decisions, [])
        if request is None:
            return None
        return CloudEvent(to_request_attributes(request), request.model_dump(by_alias=True))

    def _repeat(self, event: CloudEvent) -> None:
        for _ in range(self.copies):
            post_to_broker(self.stack, event)
        self._repeated.add(event["id"])
        self.sent[event["type"]] = self.sent.get(event["type"], 0) + self.copies


def finish(stack: Stack, cluster: Cluster, names: list[str]) -> int:
    """Wait for every SecurityEvent to complete; when all is idle but some are not (a delivery
    gave up while a function was down), run the sweep, as the schedule would. Sweeps run."""
    sweeps = 0

    def probe() -> bool:
        nonlocal sweeps
        if is_finished(cluster, names):
            return True
        if stack.wait_idle(0.5) and not is_finished(cluster, names):
            stack.fire_ping("amtd-sweeper")
            sweeps += 1
        return False

    wait_for(probe, "every SecurityEvent to complete", SETTLE_S, 0.1)
    return sweeps


def deliveries_per_request(stack: Stack) -> dict[str, int]:
    """First attempts of action.requested deliveries to executors, per event id."""
    found: dict[str, int] = {}
    for attempt in stack.attempts:
        if attempt.event_type == ACTION_REQUESTED and attempt.attempt == 1:
            found[attempt.event_id] = found.get(attempt.event_id, 0) + 1
    return found


def test_every_event_thrice_and_restarts_give_exactly_one_effect_per_target(
    stack: Stack, cluster: Cluster
) -> None:
    web = deploy_defended_workload(cluster, "twice", "web", 4, "delete")
    db = deploy_defended_workload(cluster, "twice", "db", 4, "quarantine")
    pods = [*web, *db]
    names = [f"twice-{index}" for index in range(len(pods))]
    duplicator = Duplicator(stack, cluster, set(names), copies=2)
    duplicator.start()
    try:
        for index, (name, pod) in enumerate(zip(names, pods, strict=True)):
            if index == len(pods) // 2:  # mid-stream: earlier events are still in flight
                restart(stack, "matcher", "executor-delete", "executor-quarantine")
            create_security_event(cluster, name, pods=[pod], rule_type=SHELL_RULE)
        sweeps = finish(stack, cluster, names)
        stack.fire_ping("amtd-sweeper")  # the sweep on top of it all must change nothing
        assert stack.wait_idle(30)
    finally:
        duplicator.stop()
    assert duplicator.errors == []
    for name in names:
        status = read_status(cluster, name)
        assert status.phase == "Completed", name
        assert len(status.executions) == len(status.decisions) == 1, name
        assert status.executions[0].result == "Succeeded", status.executions[0]
    effects = count_effects(stack, "twice")
    assert effects == {pod["metadata"]["name"]: 1 for pod in web}
    own = [
        Alert(name, "twice", pod["metadata"]["name"]) for name, pod in zip(names, pods, strict=True)
    ]
    tally = Audit(stack, cluster).tally(own)  # each effect read back, attributed to its step
    assert tally.effected == tally.sent == len(pods) and tally.dead_lettered == 0, tally
    assert count_isolations(stack, "twice") == len(db)
    deliveries = deliveries_per_request(stack)
    twice_ids = [to_request_attributes(request)["id"] for request in requests_of(cluster, names)]
    assert all(deliveries.get(event_id, 0) >= 3 for event_id in twice_ids), deliveries
    assert stack.supervisor is not None and stack.supervisor.deaths == []  # stopped on purpose
    report_counts(
        f"exactly-once: targets={len(pods)} effects={sum(effects.values()) + len(db)} "
        f"executions={len(names)} duplicates-posted={sum(duplicator.sent.values())} "
        f"action-deliveries={sum(deliveries.get(i, 0) for i in twice_ids)} restarts=3 "
        f"sweeps-needed={sweeps}"
    )


def requests_of(cluster: Cluster, names: list[str]) -> list[Any]:
    """The action request of each (decided) SecurityEvent, all steps."""
    found = []
    for name in names:
        obj = cluster.get(SECURITY_EVENTS, name)
        status = SecurityEventStatus.model_validate(obj.get("status") or {})
        request = make_action_request(read_ref(obj), status.decisions, [])
        if request is not None:
            found.append(request)
    return found


def send_alerts(stack: Stack, pods: list[dict[str, Any]], label: str) -> list[Alert]:
    """One Falcosidekick alert per pod, through the Broker."""
    alerts = alerts_about(pods, label)
    for alert in alerts:
        post_to_broker(stack, falco_cloudevent(alert.alert_id, alert.namespace, alert.pod, now()))
    return alerts


def faulted(stack: Stack) -> dict[str, int]:
    """How many calls the stand-in faulted, by kind."""
    assert stack.apiserver is not None
    kinds: dict[str, int] = {}
    for record in stack.apiserver.requests:
        if record.fault:
            kinds[record.fault] = kinds.get(record.fault, 0) + 1
    return kinds


def test_api_faults_lose_no_alert(stack: Stack, cluster: Cluster, api_faults: Any) -> None:
    pods = deploy_defended_workload(cluster, "flaky", "api", 16, "delete")
    api_faults.inject_faults(**API_FAULTS, seed=7, match=is_function_call)
    alerts = send_alerts(stack, pods[:8], "flaky-status")
    settle(stack, cluster, alerts)
    # then lost replies: the call is executed, its connection closed without an answer
    api_faults.inject_faults(rate=0.2, latency_s=0.05, drop=True, seed=8, match=is_function_call)
    alerts += send_alerts(stack, pods[8:], "flaky-drop")
    tally = settle(stack, cluster, alerts)
    kinds = faulted(stack)
    api_faults.clear_faults()
    report_counts(tally.line("api faults") + f" (faulted calls: {kinds})")
    # nothing lost: every alert's own step is read back as done, none was dead-lettered
    assert tally.lost == [] and tally.dead_lettered == 0
    assert tally.effected == tally.sent == len(pods)
    assert kinds.get("status", 0) > 0 and kinds.get("drop", 0) > 0
    assert all(count <= 1 for count in count_effects(stack, "flaky").values())
    # no one else deletes these pods: a lost answer or a retry never records our own delete as
    # "already gone" (repeated in place, or read back)
    reasons = {done["reason"] for item in cluster.list(SECURITY_EVENTS)
               if item["spec"]["targets"][0].startswith("flaky/")
               for done in (item.get("status") or {}).get("executions", [])}  # fmt: skip
    assert reasons == {"PodDeleted"}


def test_an_alert_storm_during_api_faults(stack: Stack, cluster: Cluster, api_faults: Any) -> None:
    pods = deploy_defended_workload(cluster, "storm", "shop", 10, "delete")
    api_faults.inject_faults(**API_FAULTS, seed=11, match=is_function_call)
    alerts = [
        Alert(f"storm-{index}-{copy}", "storm", pod["metadata"]["name"])
        for copy in range(10)
        for index, pod in enumerate(pods)
    ]
    post_storm(stack, alerts)
    tally = settle(stack, cluster, alerts)
    api_faults.clear_faults()
    dead = tally.dead_lettered
    swept = sweep_and_tally(stack, cluster, alerts, dead).effected if dead else 0
    events_per_pod = {
        pod["metadata"]["name"]: len(
            [item for item in cluster.list(SECURITY_EVENTS)
             if item["spec"]["targets"] == [f"storm/{pod['metadata']['name']}"]]
        )
        for pod in pods
    }  # fmt: skip
    report_counts(
        tally.line("alert storm")
        + f" swept-and-effected={swept} security-events={sum(events_per_pod.values())}"
        + f" pods={len(pods)}"
    )
    # a request whose retries all met faults is dead-lettered (not effected); the sweep recovers it
    assert tally.lost == [] and tally.effected + swept == tally.sent == len(alerts)
    assert all(count <= 1 for count in events_per_pod.values()), events_per_pod
    assert all(count <= 1 for count in count_effects(stack, "storm").values())


def decided_by(stack: Stack, names: list[str]) -> set[str]:
    """Who wrote the decisions (the first status writes) of these SecurityEvents."""
    assert stack.apiserver is not None
    first: dict[str, str] = {}
    for record in stack.apiserver.requests:
        if (record.resource, record.subresource, record.verb) == (
            "securityevents",
            "status",
            "update",
        ) and record.status == 200:
            first.setdefault(record.name, record.user)
    return {first.get(name, "nobody") for name in names}


def test_events_missed_by_a_stopped_source_are_swept(stack: Stack, cluster: Cluster) -> None:
    pods = deploy_defended_workload(cluster, "outage", "cart", 4, "delete")
    stack.stop_source("securityevents")
    try:
        missed = [f"outage-{index}" for index in range(3)]
        for name, pod in zip(missed, pods, strict=False):
            create_security_event(cluster, name, pods=[pod], rule_type=SHELL_RULE)
    finally:
        stack.start_source("securityevents")  # a fresh adapter: it lists, then watches
    create_security_event(cluster, "outage-after", pods=[pods[3]], rule_type=SHELL_RULE)
    wait_for(lambda: is_finished(cluster, ["outage-after"]), "the source to work again", SETTLE_S)
    announced = {event.get("name") for event in stack.source_events("securityevents")}
    assert announced.isdisjoint(missed)  # the source never sent them: only a sweep can help
    stack.fire_ping("amtd-sweeper")
    wait_for(lambda: is_finished(cluster, missed), "the sweep to decide and act on them", SETTLE_S)
    assert decided_by(stack, missed) == {"matcher"}  # the sweep announces; the matcher signs
    effects = count_effects(stack, "outage")
    own = [Alert(n, "outage", p["metadata"]["name"]) for n, p in zip(missed, pods, strict=False)]
    tally = Audit(stack, cluster).tally(own)
    assert tally.effected == tally.sent == len(missed) and tally.dead_lettered == 0, tally
    report_counts(
        f"source outage: missed={len(missed)} swept-and-effected="
        f"{sum(1 for p in pods[:3] if effects.get(p['metadata']['name']) == 1)}"
    )
    assert effects == {pod["metadata"]["name"]: 1 for pod in pods}


def sweep_and_tally(stack: Stack, cluster: Cluster, alerts: list[Alert], expected: int) -> Any:
    """Fire a sweep; the tally of what it effected (counted for the sweep, not the first try)."""
    before = Audit(stack, cluster)
    stack.fire_ping("amtd-sweeper")  # the API is back: the sweep re-requests what was lost
    return wait_for(
        lambda: (t := Audit(stack, cluster, after=before).tally(alerts)).effected >= expected and t,
        "the sweep to recover the dead-lettered requests",
        SETTLE_S,
    )


def test_a_request_that_keeps_failing_is_dead_lettered_then_swept(
    stack: Stack, cluster: Cluster, api_faults: Any
) -> None:
    pods = deploy_defended_workload(cluster, "hostile", "cart", 4, "delete")
    # every call of the executor refused: it repeats each a few times, then the Broker retries
    api_faults.inject_faults(rate=1.0, statuses=(503,), seed=5,
                             match=lambda record: record.user == "executor-delete")  # fmt: skip
    alerts = send_alerts(stack, pods, "hostile")
    tally = settle(stack, cluster, alerts)
    api_faults.clear_faults()
    report_counts(tally.line("executor down"))
    # every request was dead-lettered, so none of them counts as effected
    assert tally.lost == [] and tally.dead_lettered == len(pods) and tally.effected == 0
    swept = sweep_and_tally(stack, cluster, alerts, len(pods))
    report_counts(swept.line("after the sweep"))
    assert swept.effected == len(pods) and swept.dead_lettered == 0  # counted for the sweep
    assert count_effects(stack, "hostile") == {pod["metadata"]["name"]: 1 for pod in pods}


def test_an_edited_security_event_is_decided_by_the_next_sweep(
    stack: Stack, cluster: Cluster
) -> None:
    first, second = deploy_defended_workload(cluster, "edited", "web", 2, "delete")
    alerts = send_alerts(stack, [first], "edited")
    assert settle(stack, cluster, alerts).effected == 1
    (item,) = Audit(stack, cluster).by_target[alerts[0].target]
    name = item["metadata"]["name"]
    targets = [*item["spec"]["targets"], f"edited/{second['metadata']['name']}"]
    edited = cluster.patch(SECURITY_EVENTS, name, {"spec": {"targets": targets}})
    assert edited["metadata"]["generation"] == 2
    assert stack.wait_idle(5.0)
    # its update is not routed to the matcher: the new generation waits for the sweep
    assert read_status(cluster, name).observed_generation == 1
    stack.fire_ping("amtd-sweeper")
    wait_for(lambda: read_status(cluster, name).observed_generation == 2 and is_finished(
        cluster, [name]), "the new generation to be decided and executed", SETTLE_S)  # fmt: skip
    assert count_effects(stack, "edited") == {first["metadata"]["name"]: 1,
                                              second["metadata"]["name"]: 1}  # fmt: skip
