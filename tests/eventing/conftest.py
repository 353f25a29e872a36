"""Fixtures for the local eventing tests: scriptable HTTP receivers and a running broker."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.dynamic import DynamicClient

from amtd_stack.eventing.brokers import BrokerIngress, EventRouter, TriggerRoute
from amtd_stack.running.kubeclients import apply_objects, new_dynamic_client
from support.functions import ROOT
from support.receivers import Answer, Receiver, Script, answers


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    """A factory of receivers (``receiver(script)``), all stopped at teardown."""
    started: list[Receiver] = []

    def make(script: Script | None = None) -> Receiver:
        started.append(Receiver(script or answers(Answer())))
        return started[-1]

    yield make
    for one in started:
        one.stop()


@dataclass
class RunningBroker:
    """A router plus its HTTP ingress for broker ``amtd-system/default``."""

    router: EventRouter
    ingress: BrokerIngress

    @property
    def url(self) -> str:
        """The broker's ingress URL."""
        return self.ingress.broker_url("amtd-system", "default")


@pytest.fixture
def broker() -> Iterator[Callable[..., RunningBroker]]:
    """A factory ``broker(routes)`` of running brokers, all stopped at teardown."""
    started: list[RunningBroker] = []

    def make(routes: list[TriggerRoute]) -> RunningBroker:
        router = EventRouter([("amtd-system", "default")], routes)
        started.append(RunningBroker(router, BrokerIngress(router)))
        return started[-1]

    yield make
    for one in started:
        one.router.stop(wait=False)
        one.ingress.stop()
        one.router.stop(wait=True)


@pytest.fixture
def stand_in(tmp_path: Path) -> Iterator[StandIn]:
    """A fresh API server stand-in with the project CRDs and namespace amtd-system applied."""
    from amtd_stack.apiserver import start_apiserver

    server = start_apiserver(host="127.0.0.1", port=0, workloads=False)
    try:
        kubeconfig = server.write_kubeconfig(tmp_path / "admin-kubeconfig", user="admin")
        crds = sorted((ROOT / "knative" / "crds").glob("*.yaml"))
        objects = [
            (doc, str(path)) for path in crds for doc in yaml.safe_load_all(path.read_text())
        ]
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "amtd-system"}}
        apply_objects(kubeconfig, [*objects, (namespace, "test")])
        yield StandIn(server, Path(kubeconfig), new_dynamic_client(Path(kubeconfig)))
    finally:
        server.stop()


@dataclass
class StandIn:
    """The running API stand-in, an admin kubeconfig and a DynamicClient on it."""

    server: Any
    kubeconfig: Path
    client: DynamicClient
