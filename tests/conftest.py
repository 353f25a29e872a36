"""Shared fixtures: a fresh API server stand-in per test, a kubeconfig pointing at it, a Stand,
a recording sink. They are built on ``support`` (its ``__init__`` lists the layers).

Imports of the stack happen inside the fixtures, so collecting tests that do not use them stays
cheap and free of side effects. Functions run in-process write their Events after replying
(amtd.kube.deferring): every test ends by waiting for those writes, so none lands in the next test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from amtd_stack.apiserver import ApiServer
    from support.receivers import SinkReceiver
    from support.standins import Stand


@pytest.fixture(autouse=True)
def _finish_deferred_writes() -> Iterator[None]:
    """After the test: wait for the Event writes in-process functions deferred (bounded)."""
    yield
    from amtd.kube.deferring import shared_deferrer

    shared_deferrer().flush()


@pytest.fixture
def apiserver() -> Iterator[ApiServer]:
    """A running API server stand-in with fresh state (workload emulation on)."""
    from amtd_stack.apiserver import start_apiserver

    server = start_apiserver(host="127.0.0.1", port=0, workloads=True)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def kubeconfig(apiserver: ApiServer, tmp_path: Path) -> Path:
    """A kubeconfig for `apiserver` acting as user "test"."""
    return apiserver.write_kubeconfig(tmp_path / "kubeconfig", user="test")


@pytest.fixture
def stand(tmp_path: Path) -> Iterator[Stand]:
    """A stand-in with our CRDs and namespace ``shop``, the test's connection, identities."""
    from support.standins import start_stand

    with start_stand(tmp_path) as running:
        yield running


@pytest.fixture
def sink() -> Iterator[SinkReceiver]:
    """A fresh recording sink (a ``K_SINK`` standing in for the Broker)."""
    from support.receivers import run_sink

    with run_sink() as receiver:
        yield receiver
