"""The bad-input campaign's world: every function in-process, one API stand-in over HTTP.

The stand-in holds what an attacker would aim at: a defended workload in ``shop``, pods in the
protected ``kube-system``, an ``attacker`` namespace for policies that try to reach across, and
SecurityEvents with sane and hostile targets. Counts per entry point are printed at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask.testing import FlaskClient

from amtd.kube.api import SECURITY_EVENTS, Cluster
from amtd_stack.apiserver import ApiServer
from support.builders import SHELL_RULE, create_policy, create_security_event
from support.functions import load_function_client
from support.ingesting import expect_token
from support.receivers import run_sink
from support.standins import create_deployment, create_namespace, run_module_world

ENTRIES = {
    "ingest-falco": "ingest-falco",
    "ingest-kubearmor": "ingest-kubearmor",
    "timer": "timer",
    "matcher": "matcher",
    "executor-delete": "executors/delete",
    "executor-quarantine": "executors/quarantine",
    "dead-letters": "dead-letters",
    "sweeper": "sweeper",
}
TRIED: dict[str, list[int]] = {}  # entry -> statuses answered


@dataclass
class World:
    """The stand-in, the test's connection, the functions and the objects worth attacking."""

    server: ApiServer
    cluster: Cluster
    clients: dict[str, FlaskClient]
    shop_pods: list[dict[str, Any]]
    protected_pods: list[dict[str, Any]]
    event_names: list[str] = field(default_factory=list)
    event_uids: dict[str, str] = field(default_factory=dict)


def record_answer(entry: str, status: int) -> None:
    """Count one input tried on an entry point."""
    TRIED.setdefault(entry, []).append(status)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """``campaign: <entry> tried=N 5xx=0`` per entry point."""
    if not TRIED:
        return
    terminalreporter.write_sep("-", "bad-input campaign")
    for entry, statuses in sorted(TRIED.items()):
        failures = sum(1 for status in statuses if status >= 500)
        handled = sum(1 for status in statuses if status < 300)
        terminalreporter.write_line(
            f"campaign: {entry} tried={len(statuses)} 5xx={failures} "
            f"(2xx={handled} 4xx={len(statuses) - handled - failures})"
        )


def populate(cluster: Cluster) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """Namespaces, workloads, policies and SecurityEvents (sane and hostile)."""
    for namespace in ("attacker", "amtd-system"):
        create_namespace(cluster, namespace)
    shop = create_deployment(cluster, "shop", "cart", replicas=3)
    protected = create_deployment(cluster, "kube-system", "coredns", replicas=1)
    create_policy(cluster, "shop", name="shop-defence", pod_selector={})  # deletes everything
    create_policy(cluster, "kube-system", name="system-defence", pod_selector={})  # guarded anyway
    pod, system_pod = shop[0]["metadata"]["name"], protected[0]["metadata"]["name"]
    targets = {
        "campaign-sane": [f"shop/{pod}"],
        "campaign-protected": [f"kube-system/{system_pod}"],
        "campaign-mixed": [f"shop/{pod}", "kube-system/x", "amtd-system/y"],
    }
    for name, texts in targets.items():
        create_security_event(cluster, name, targets=texts, rule_type=SHELL_RULE)
    return shop, protected, list(targets)


@pytest.fixture(scope="module")
def world(sink_url: str) -> Iterator[World]:
    """Every function in-process, connected to one stand-in; the environment they read."""
    with run_module_world("campaign", workloads=True) as (server, own, monkeypatch):
        expect_token(monkeypatch)
        for name, value in {
            "K_SINK": sink_url,
            "AMTD_NAMESPACE": "amtd-system",
            "SWEEP_GRACE_SECONDS": "0",
            "SWEEP_MAX_EVENTS": "3",
            "OCCURRENCES_FLUSH_SECONDS": "0",
        }.items():
            monkeypatch.setenv(name, value)  # fmt: skip
        shop, protected, names = populate(own)
        clients = {entry: load_function_client(folder_name)
                   for entry, folder_name in ENTRIES.items()}  # fmt: skip
        uids = {n: own.get(SECURITY_EVENTS, n)["metadata"]["uid"] for n in names}
        yield World(server, own, clients, shop, protected, names, uids)


@pytest.fixture(scope="module")
def sink_url() -> Iterator[str]:
    """The sweeper's K_SINK: a loopback endpoint that accepts every event (202)."""
    with run_sink() as receiver:
        yield receiver.url
