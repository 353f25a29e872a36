"""Fixtures for the local eventing tests: scriptable HTTP receivers, a running broker and the
API stand-in (``support.standins``) the sources watch."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes.dynamic import DynamicClient

from amtd.kube.api import Cluster
from amtd_stack.eventing.brokers import BrokerIngress, EventRouter, TriggerRoute
from amtd_stack.running.kubeclients import new_dynamic_client
from support.receivers import Answer, Receiver, Script, answers
from support.standins import start_stand


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
    """A fresh API stand-in (no workloads) with our CRDs and namespace amtd-system."""
    with start_stand(tmp_path, ("amtd-system",), workloads=False) as stand:
        kubeconfig = stand.kubeconfig("admin")
        yield StandIn(stand.server, kubeconfig, new_dynamic_client(kubeconfig), stand.cluster)


@dataclass
class StandIn:
    """The running API stand-in, an admin kubeconfig, a DynamicClient on it, the test's Cluster.

    The DynamicClient is how the local eventing reads the cluster (``amtd_stack.running``).
    """

    server: Any
    kubeconfig: Path
    client: DynamicClient
    cluster: Cluster
