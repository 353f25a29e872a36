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

from amtd.act.quarantine.quarantining import (
    QUARANTINED_BY,
    make_quarantine_name,
    make_quarantined_by,
)
from amtd.kube.api import EVENTS, NETWORK_POLICIES, PODS, SECURITY_EVENTS, Cluster
from amtd.model.actionevents import ACTION_REQUESTED
from amtd_stack.running.stack import Stack
from support.builders import falco_alert
from support.functions import ROOT
from support.waiting import wait_for

TOKEN = "fault-suite-token"
FUNCTION_USERS = frozenset({"matcher", "executor-delete", "executor-quarantine", "dead-letters",
                            "ingest-falco", "ingest-kubearmor", "ingest-alertmanager", "timer",
                            "sweeper"})  # fmt: skip
STACK_ENV = {
    "ingest-falco": {"INGEST_TOKEN": TOKEN},
    "ingest-kubearmor": {"INGEST_TOKEN": TOKEN},
    "ingest-alertmanager": {"INGEST_TOKEN": TOKEN},
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
    """What became of the alerts: effected (and never dead-lettered), dead-lettered, lost."""

    sent: int
    effected: int
    dead_lettered: int
    lost: list[str]

    def line(self, label: str) -> str:
        """``<label>: sent=N effected=N dead-lettered=N lost=0``."""
        return (f"{label}: sent={self.sent} effected={self.effected} "
                f"dead-lettered={self.dead_lettered} lost={len(self.lost)}")  # fmt: skip


@dataclass(frozen=True)
class Step:
    """One decided step on an alert's pod, with the execution its SecurityEvent records."""

    security_event: str
    step_id: str
    action: str
    pod_uid: str
    execution: dict[str, Any] | None

    @property
    def is_succeeded_on_its_pod(self) -> bool:
        """Recorded Succeeded on exactly the decided pod incarnation."""
        done = self.execution or {}
        return done.get("result") == "Succeeded" and bool(self.pod_uid) and (
            done.get("podUid") == self.pod_uid
        )  # fmt: skip


class Audit:
    """One snapshot of the cluster and the broker's records, to judge alerts against.

    An alert counts as effected only when the effect is read back from the cluster and belongs
    to the step its SecurityEvent recorded (step id, pod uid), and its action request was never
    dead-lettered. ``after``: count only what happened since that earlier snapshot (a sweep's
    recovery is its own, not the original delivery's).
    """

    def __init__(self, stack: Stack, cluster: Cluster, after: Audit | None = None) -> None:
        self.cluster, self.after = cluster, after
        self.by_target: dict[str, list[dict[str, Any]]] = {}
        for item in cluster.list(SECURITY_EVENTS):
            for target in item["spec"]["targets"]:
                self.by_target.setdefault(target, []).append(item)
        letters = [*cluster.list(EVENTS, "default"), *cluster.list(EVENTS, "amtd-system")]
        self.letters = [e for e in letters if e.get("reason") == "DeadLetter"]
        self.router_letters = [letter.event for letter in stack.dead_letters]
        self.executions = {
            (item["metadata"]["name"], done["stepId"]): done
            for items in self.by_target.values() for item in items
            for done in (item.get("status") or {}).get("executions", [])
        }  # fmt: skip
        self.deleted = count_deletions(stack)
        self._namespaces: dict[str, tuple[set[str], dict[str, dict[str, Any]]]] = {}

    def steps_of(self, alert: Alert) -> list[Step]:
        """Every matched step about the alert's pod, with its recorded execution."""
        found = []
        for item in self.by_target.get(alert.target, []):
            name = item["metadata"]["name"]
            for decision in (item.get("status") or {}).get("decisions", []):
                if decision.get("target") == alert.target and decision.get("action"):
                    step_id = decision["stepId"]
                    found.append(Step(name, step_id, decision["action"],
                                      decision.get("podUid") or "",
                                      self.new_execution(name, step_id)))  # fmt: skip
        return found

    def new_execution(self, security_event: str, step_id: str) -> dict[str, Any] | None:
        """The step's execution, unless it was recorded already at the earlier snapshot."""
        if self.after is not None and (security_event, step_id) in self.after.executions:
            return None
        return self.executions.get((security_event, step_id))

    def read_namespace(self, namespace: str) -> tuple[set[str], dict[str, dict[str, Any]]]:
        """Live pod uids and NetworkPolicies by name in ``namespace`` (read once)."""
        if namespace not in self._namespaces:
            uids = {pod["metadata"]["uid"] for pod in self.cluster.list(PODS, namespace)}
            policies = {p["metadata"]["name"]: p
                        for p in self.cluster.list(NETWORK_POLICIES, namespace)}  # fmt: skip
            self._namespaces[namespace] = (uids, policies)
        return self._namespaces[namespace]

    def is_effect_of(self, alert: Alert, step: Step) -> bool:
        """The cluster shows this step's effect on its pod, and no other step claims it."""
        if not step.is_succeeded_on_its_pod:
            return False
        uids, policies = self.read_namespace(alert.namespace)
        if step.action == "quarantine":
            name = make_quarantine_name(alert.namespace, alert.pod, step.pod_uid)
            policy = policies.get(name) or {"metadata": {}}
            by = (policy["metadata"].get("annotations") or {}).get(QUARANTINED_BY)
            return by == make_quarantined_by(step.security_event, step.step_id)
        if step.pod_uid in uids or not self.deleted.get(alert.namespace, {}).get(alert.pod):
            return False
        return self.owner_of_deletion(step.pod_uid) == (step.security_event, step.step_id)

    def owner_of_deletion(self, uid: str) -> tuple[str, str] | None:
        """The step that deleted pod ``uid``: the one recording PodDeleted, else the only one."""
        done = [key for key, item in self.executions.items()
                if item.get("podUid") == uid and item.get("result") == "Succeeded"
                and item.get("action") == "delete"]  # fmt: skip
        deleting = [key for key in done if self.executions[key].get("reason") == "PodDeleted"]
        owners = deleting or done
        return owners[0] if len(owners) == 1 else None

    def is_effected(self, alert: Alert) -> bool:
        """Some step about the pod has its effect, read back and attributed to it."""
        return any(self.is_effect_of(alert, step) for step in self.steps_of(alert))

    def new_letters(self) -> tuple[list[dict[str, Any]], list[Any]]:
        """Dead-letter records (Events, the router's own), without those seen earlier."""
        if self.after is None:
            return self.letters, self.router_letters
        seen = {e["metadata"]["name"] for e in self.after.letters}
        events = [e for e in self.letters if e["metadata"]["name"] not in seen]
        return events, self.router_letters[len(self.after.router_letters) :]

    def letters_about(self, alert: Alert) -> list[str]:
        """The types of the dead-lettered events that name the alert or its SecurityEvents."""
        names = {item["metadata"]["name"] for item in self.by_target.get(alert.target, [])}
        events, kept = self.new_letters()
        found = [
            e.get("message", "").partition(" ")[0]
            for e in events
            if e["involvedObject"].get("name") in names or alert.alert_id in e.get("message", "")
        ]
        found += [
            event["type"]
            for event in kept
            if event["id"] == alert.alert_id
            or event.get("securityevent") in names
            or (event.get("kind") == "SecurityEvent" and event.get("name") in names)
        ]
        return found

    def tally(self, alerts: Iterable[Alert]) -> Tally:
        """A dead-lettered action request first, else effected, else dead-lettered, else lost."""
        effected, dead, lost = 0, 0, []
        for alert in alerts:
            letters = self.letters_about(alert)
            if ACTION_REQUESTED not in letters and self.is_effected(alert):
                effected += 1
            elif letters:
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


def count_deletions(stack: Stack) -> dict[str, dict[str, int]]:
    """Per namespace, per pod name: successful pod deletes by the executors."""
    assert stack.apiserver is not None
    found: dict[str, dict[str, int]] = {}
    for record in stack.apiserver.requests:
        if record.user.startswith("executor-") and (
            record.resource,
            record.verb,
            record.status,
        ) == ("pods", "delete", 200):
            names = found.setdefault(record.namespace, {})
            names[record.name] = names.get(record.name, 0) + 1
    return found


def count_effects(stack: Stack, namespace: str) -> dict[str, int]:
    """Per pod of ``namespace``: successful deletes by the executors."""
    return count_deletions(stack).get(namespace, {})


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
