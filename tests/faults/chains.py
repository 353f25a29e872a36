"""Driving and auditing whole chains on the embedded stack (alert → ... → effect).

Alerts enter as Falcosidekick CloudEvents through the Broker (so a failed ingest is retried and
finally dead-lettered, like every other hop); the outcome of each alert is read back from the API
server: its recorded execution, the effect in the request log, or its dead-letter record.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent

from amtd.kube.api import EVENTS, SECURITY_EVENTS, Cluster
from amtd_stack.running.stack import Stack
from support.builders import falco_alert
from support.functions import ROOT
from support.waiting import wait_for

TOKEN = "fault-suite-token"
FUNCTION_USERS = frozenset({"matcher", "executor-delete", "executor-quarantine", "dead-letters",
                            "ingest-falco", "ingest-kubearmor", "timer", "sweeper"})  # fmt: skip
STACK_ENV = {
    "ingest-falco": {"INGEST_TOKEN": TOKEN},
    "ingest-kubearmor": {"INGEST_TOKEN": TOKEN},
    "sweeper": {"SWEEP_GRACE_SECONDS": "0"},
}


@contextlib.contextmanager
def run_fault_stack(state_dir: Path) -> Iterator[Stack]:
    """The real functions, the committed manifests, the stand-in; stopped when the block ends."""
    werkzeug = logging.getLogger("werkzeug")
    level = werkzeug.level
    werkzeug.setLevel(logging.WARNING)  # a line per broker POST is noise
    try:
        with Stack(ROOT, state_dir, env_overrides=STACK_ENV) as running:
            yield running
    finally:
        werkzeug.setLevel(level)


def is_function_call(record: Any) -> bool:
    """Fault only the functions' calls: not the test's own reads, not the source's watch."""
    return record.user in FUNCTION_USERS


def falco_cloudevent(alert_id: str, namespace: str, pod: str, when: datetime) -> CloudEvent:
    """A Falcosidekick CloudEvent (binary mode) about ``pod``, carrying the ingest token."""
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
    alert = falco_alert(namespace, pod, at=when, uuid=None)
    attributes = {"type": "falco.rule.output.v1", "source": "https://falco.org", "id": alert_id,
                  "time": stamp, "datacontenttype": "application/json", "priority": "Notice",
                  "amtdtoken": TOKEN}  # fmt: skip
    return CloudEvent(attributes, alert)


def post_to_broker(stack: Stack, event: CloudEvent) -> None:
    """Publish one event on the Broker (the ingress answers 202)."""
    headers, body = to_binary(event)
    answer = requests.post(stack.broker_url(), headers=dict(headers), data=body, timeout=10)
    assert answer.status_code == 202, answer.text


@dataclass(frozen=True)
class Alert:
    """One alert sent, and the pod it is about."""

    alert_id: str
    namespace: str
    pod: str

    @property
    def target(self) -> str:
        """``namespace/pod``."""
        return f"{self.namespace}/{self.pod}"


def alerts_about(pods: Sequence[dict[str, Any]], label: str) -> list[Alert]:
    """One alert per pod, ids ``<label>-<index>``."""
    return [
        Alert(f"{label}-{index}", pod["metadata"]["namespace"], pod["metadata"]["name"])
        for index, pod in enumerate(pods)
    ]


def post_storm(stack: Stack, alerts: Sequence[Alert], workers: int = 16) -> None:
    """Publish the alerts' Falcosidekick CloudEvents all at once, ``workers`` in parallel."""
    when = now()
    events = [falco_cloudevent(a.alert_id, a.namespace, a.pod, when) for a in alerts]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda event: post_to_broker(stack, event), events))


@dataclass(frozen=True)
class Tally:
    """What became of the alerts."""

    sent: int
    effected: int
    dead_lettered: int
    lost: list[str]

    def line(self, label: str) -> str:
        """``<label>: sent=N effected=N dead-lettered=N lost=0``."""
        return (f"{label}: sent={self.sent} effected={self.effected} "
                f"dead-lettered={self.dead_lettered} lost={len(self.lost)}")  # fmt: skip


class Audit:
    """One snapshot of the cluster and the broker's records, to judge alerts against."""

    def __init__(self, stack: Stack, cluster: Cluster) -> None:
        self.by_target: dict[str, list[dict[str, Any]]] = {}
        for item in cluster.list(SECURITY_EVENTS):
            for target in item["spec"]["targets"]:
                self.by_target.setdefault(target, []).append(item)
        letters = [*cluster.list(EVENTS, "default"), *cluster.list(EVENTS, "amtd-system")]
        self.letters = [e for e in letters if e.get("reason") == "DeadLetter"]
        self.router_letters = [letter.event for letter in stack.dead_letters]

    def is_effected(self, alert: Alert) -> bool:
        """Some SecurityEvent for the pod recorded a Succeeded execution on it."""
        return any(
            execution.get("target") == alert.target and execution.get("result") == "Succeeded"
            for item in self.by_target.get(alert.target, [])
            for execution in (item.get("status") or {}).get("executions", [])
        )

    def is_dead_lettered(self, alert: Alert) -> bool:
        """A dead-letter record names the alert's event or a SecurityEvent about its pod."""
        names = {item["metadata"]["name"] for item in self.by_target.get(alert.target, [])}
        recorded = any(
            e["involvedObject"].get("name") in names or alert.alert_id in e.get("message", "")
            for e in self.letters
        )
        kept = any(
            event["id"] == alert.alert_id or event.get("securityevent") in names
            or (event.get("kind") == "SecurityEvent" and event.get("name") in names)
            for event in self.router_letters
        )  # fmt: skip
        return recorded or kept

    def tally(self, alerts: Iterable[Alert]) -> Tally:
        """Effected first, else dead-lettered, else lost."""
        effected, dead, lost = 0, 0, []
        for alert in alerts:
            if self.is_effected(alert):
                effected += 1
            elif self.is_dead_lettered(alert):
                dead += 1
            else:
                lost.append(alert.alert_id)
        return Tally(effected + dead + len(lost), effected, dead, lost)


def settle(stack: Stack, cluster: Cluster, alerts: list[Alert], deadline_s: float = 90.0) -> Tally:
    """Wait until every alert is effected or dead-lettered (or the deadline); the tally."""

    def settled() -> Tally | None:
        if not stack.wait_idle(1.0):
            return None
        tally = Audit(stack, cluster).tally(alerts)
        return tally if not tally.lost else None

    try:
        return wait_for(
            settled, "every alert to end as an effect or a dead letter", deadline_s, 0.1
        )
    except AssertionError:
        return Audit(stack, cluster).tally(alerts)


def count_effects(stack: Stack, namespace: str) -> dict[str, int]:
    """Per pod of ``namespace``: successful deletes plus NetworkPolicy creates by executors."""
    assert stack.apiserver is not None
    effects: dict[str, int] = {}
    for record in stack.apiserver.requests:
        if record.namespace != namespace or not record.user.startswith("executor-"):
            continue
        if (record.resource, record.verb, record.status) == ("pods", "delete", 200):
            effects[record.name] = effects.get(record.name, 0) + 1
    return effects


def count_isolations(stack: Stack, namespace: str) -> int:
    """NetworkPolicies the quarantine executor created in ``namespace``."""
    assert stack.apiserver is not None
    return sum(
        1 for record in stack.apiserver.requests
        if record.namespace == namespace and record.resource == "networkpolicies"
        and record.verb == "create" and record.status == 201
    )  # fmt: skip


def now() -> datetime:
    """UTC now."""
    return datetime.now(UTC)
