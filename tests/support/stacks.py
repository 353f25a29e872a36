"""The embedded stack for end-to-end tests: one running system and the moves a user makes on it.

The top layer of ``support``: ``run_stack(state_dir)`` starts
:class:`amtd_stack.running.stack.Stack` (its own API stand-in, local eventing, every function as a
process) on this project with a random ingest token, and connects as ``support.standins`` does;
the workload helpers are the stand-in's. A :class:`LiveStack` sends alerts the way Falco,
Falcosidekick and Fluent Bit do (to the functions or to the Broker), runs kubectl and the
``amtd`` CLI, and reads the cluster back. Kubernetes is reached only through the official
client (``amtd.kube.api.Cluster``) or kubectl, over HTTP to the API server stand-in.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from amtd.kube.api import PODS, SECURITY_EVENTS, Cluster
from amtd.model.objects import Object
from amtd_stack.apiserver import RequestRecord
from amtd_stack.eventing.delivering import DeliveryAttempt
from amtd_stack.running.stack import Stack
from support.builders import KUBEARMOR_ALERT, SHELL_RULE, create_policy, falco_alert
from support.functions import ROOT
from support.standins import connect, create_deployment, ensure_namespace, list_pods, wait_for_pods
from support.waiting import wait_for as wait_for  # re-exported: the e2e tests poll with it

KUBECTL = shutil.which("kubectl")
AMTD_CLI = Path(sys.executable).parent / "amtd"
INGESTERS = ("ingest-falco", "ingest-kubearmor", "ingest-alertmanager")
PKG_POLICY = KUBEARMOR_ALERT["PolicyName"]
TIMED_ANNOTATIONS = "time-based-trigger.amtd.r6security.com"


@dataclass
class LiveStack:
    """A running stack, an admin connection to its API server and the ingest token."""

    stack: Stack
    cluster: Cluster
    token: str

    def function_url(self, name: str) -> str:
        """Base URL of one function process."""
        return str(self.stack.endpoints()["functions"][name])

    def post_alert(
        self,
        function: str,
        body: str | bytes,
        content_type: str = "application/json",
        authorization: str | None = None,
    ) -> requests.Response:
        """POST an alert to an ingest function; ``authorization`` "" sends no such header.

        Without ``authorization`` the right bearer token is sent, as a configured sender does.
        """
        headers = {"Content-Type": content_type}
        if authorization is None:
            authorization = f"Bearer {self.token}"
        if authorization:
            headers["Authorization"] = authorization
        return requests.post(self.function_url(function), data=body, headers=headers, timeout=30)

    def post_to_broker(self, headers: Mapping[str, str], body: bytes) -> requests.Response:
        """POST one CloudEvent (HTTP headers and body) to the Broker's ingress."""
        return requests.post(self.stack.broker_url(), headers=dict(headers), data=body, timeout=30)

    def deliveries(self, event_id: str, subscriber: str) -> list[DeliveryAttempt]:
        """The Broker's attempts to deliver one event to one Trigger (``namespace/name``)."""
        attempts = self.stack.attempts
        return [a for a in attempts if (a.event_id, a.subscriber) == (event_id, subscriber)]

    def api_calls(self, since: int = 0) -> list[RequestRecord]:
        """Requests the API server saw (from position ``since`` of its log)."""
        return list(self.stack.apiserver.requests)[since:] if self.stack.apiserver else []

    def kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run kubectl as the admin; a failure is an AssertionError carrying its stderr."""
        assert KUBECTL is not None, "kubectl is not installed"
        command = [KUBECTL, "--kubeconfig", str(self.stack.kubeconfig), *args]
        return run_command(command, stdin)

    def amtd(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the ``amtd`` console script of this venv with the admin kubeconfig."""
        command = [str(AMTD_CLI), *args, "--kubeconfig", str(self.stack.kubeconfig)]
        return run_command(command, None)

    def log_tails(self, limit: int = 3000) -> str:
        """The end of every function's log, for failure reports."""
        logs = sorted((self.stack.state_dir / "logs").glob("*.log"))
        tails = (f"--- {log.name}\n{log.read_text(errors='replace')[-limit:]}" for log in logs)
        return "\n".join(tails)


def run_command(command: Sequence[str], stdin: str | None) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing text output; failures carry stderr in the message."""
    done = subprocess.run(
        list(command), input=stdin, capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(command)} exited {done.returncode}: {done.stderr}")
    return done


@contextlib.contextmanager
def run_stack(state_dir: Path, env: Mapping[str, str] | None = None) -> Iterator[LiveStack]:
    """Start the project's stack with a fresh ingest token (and ``env`` for every function);
    stopped when the block ends."""
    token = secrets.token_urlsafe(24)
    overrides: dict[str, Mapping[str, str]] = {name: {"INGEST_TOKEN": token} for name in INGESTERS}
    if env:
        overrides["*"] = dict(env)
    with Stack(ROOT, state_dir, env_overrides=overrides) as stack:
        yield LiveStack(stack, connect(stack.kubeconfig), token)


# Workloads and policies


def create_workload(
    cluster: Cluster, namespace: str, name: str, replicas: int = 2,
    annotations: Mapping[str, str] | None = None,
) -> list[Object]:  # fmt: skip
    """Phoenix's sample Deployment shape in ``namespace`` (made if need be); its Running pods."""
    ensure_namespace(cluster, namespace)
    return create_deployment(cluster, namespace, name, replicas, annotations)


def delete_by_falco_alert(live: LiveStack, namespace: str) -> Object:
    """A workload and a delete policy in ``namespace``, then a Falco alert about one of its pods:
    the SecurityEvent once the pod's deletion is recorded (the pod gone)."""
    victim = create_workload(live.cluster, namespace, "web")[0]["metadata"]["name"]
    create_policy(live.cluster, namespace, [({"type": SHELL_RULE}, "delete")])
    answer = live.post_alert(
        "ingest-falco", json.dumps(falco_alert(namespace, victim, at=datetime.now(UTC)))
    )
    assert answer.status_code == 201, answer.text
    event = wait_for_security_event(live.cluster, f"{namespace}/{victim}")
    wait_for_executions(live.cluster, event["metadata"]["name"])
    assert is_gone(live.cluster, namespace, victim)
    return event


def running_pods(cluster: Cluster, namespace: str, app: str) -> list[Object]:
    """Running, not terminating pods labelled ``app=<app>``."""
    return list_pods(cluster, namespace, f"app={app}")


def wait_for_running(
    cluster: Cluster, namespace: str, app: str, count: int, excluding: Sequence[str] = ()
) -> list[Object]:
    """Wait until exactly ``count`` pods of ``app`` run and none is named in ``excluding``."""
    return wait_for_pods(cluster, namespace, f"app={app}", count, excluding)


def is_gone(cluster: Cluster, namespace: str, name: str) -> bool:
    """The pod no longer exists or is terminating."""
    pod = cluster.find(PODS, name, namespace)
    return pod is None or bool(pod["metadata"].get("deletionTimestamp"))


def wait_past_creation_second(pods: Sequence[Mapping[str, Any]]) -> None:
    """Return once the clock is past the second the pods were created in.

    creationTimestamp has whole seconds, and a ReplicaSet with a surplus removes the newest pods
    (ties by name): pods made after this returns are strictly newer than ``pods``.
    """
    newest = max(parse_time(pod["metadata"]["creationTimestamp"]) for pod in pods)
    wait_for(lambda: time.time() >= newest + 1, "the next second", 5)


def parse_time(text: str) -> float:
    """An RFC 3339 ``...Z`` timestamp as Unix seconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# SecurityEvents


def security_events_for(cluster: Cluster, target: str) -> list[Object]:
    """SecurityEvents listing ``namespace/pod`` among their targets, oldest first."""
    found = [se for se in cluster.list(SECURITY_EVENTS) if target in se["spec"]["targets"]]
    return sorted(found, key=lambda se: se["metadata"]["creationTimestamp"])


def wait_for_security_event(cluster: Cluster, target: str) -> Object:
    """The first SecurityEvent about ``target``, once it exists."""
    found = wait_for(lambda: security_events_for(cluster, target), f"a SecurityEvent on {target}")
    return found[0]


def wait_for_executions(cluster: Cluster, name: str, count: int = 1) -> Object:
    """The SecurityEvent once its status records at least ``count`` executions."""

    def probe() -> Object | None:
        found = cluster.get(SECURITY_EVENTS, name)
        executions = (found.get("status") or {}).get("executions") or []
        return found if len(executions) >= count else None

    return wait_for(probe, f"{count} execution(s) recorded on SecurityEvent {name}")


def ping_until_triggered(live: LiveStack, target: str, kind: str) -> Object:
    """Fire the amtd-timer PingSource (at most twice a second) until ``target`` has an event.

    ``kind`` says which SecurityEvent is awaited, for the timeout's message ("a timed").
    """
    last_ping = [0.0]

    def probe() -> Object | None:
        found = security_events_for(live.cluster, target)
        if found:
            return found[0]
        if time.monotonic() - last_ping[0] > 0.5:
            live.stack.fire_ping("amtd-timer")
            last_ping[0] = time.monotonic()
        return None

    return wait_for(probe, f"{kind} SecurityEvent on {target}")


# Alerts as Falcosidekick sends them (the alerts themselves: support.builders)


def falcosidekick_cloudevent(alert: Mapping[str, Any], token: str) -> tuple[Object, bytes]:
    """Falcosidekick's CloudEvents output, binary mode, plus ``amtdtoken``."""
    headers = {
        "Content-Type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": str(alert.get("uuid") or secrets.token_hex(16)),
        "ce-source": "https://falco.org",
        "ce-type": "falco.rule.output.v1",
        "ce-time": str(alert["time"]),
        "ce-priority": str(alert["priority"]),
        "ce-rule": quote(str(alert["rule"]), safe=""),  # Falcosidekick percent-encodes spaces
        "ce-eventsource": str(alert["source"]),
        "ce-hostname": str(alert["hostname"]),
        "ce-amtdtoken": token,
    }
    return headers, json.dumps(alert).encode()


def pick(mapping: Mapping[str, Any], *keys: str) -> tuple[Any, ...]:
    """The values of ``keys`` (None when absent), for one-line assertions."""
    return tuple(mapping.get(key) for key in keys)
