"""Cluster.mutate_status with the caller's copy of the object (``current``) saves a read, safely.

Against the API server stand-in with the official client: a fresh copy is written without a
read; a stale copy is refused (409) and the status is recomputed on a fresh read; a "no change"
judged on the caller's copy is checked again on a fresh read.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from amtd.kube.api import SECURITY_EVENTS, Cluster
from support.standins import connect, install_crds

NAME = "mutate-status-test"


@pytest.fixture
def cluster(apiserver: Any, kubeconfig: Path) -> Iterator[Cluster]:
    """CRDs installed, one SecurityEvent."""
    own = connect(kubeconfig)
    install_crds(own, ("shop",))
    body = {
        "apiVersion": "amtd.r6security.com/v1beta1", "kind": "SecurityEvent",
        "metadata": {"name": NAME},
        "spec": {"targets": ["shop/cart-1"], "rule": {"type": "t"}, "description": "d"},
    }  # fmt: skip
    own.create(SECURITY_EVENTS, body)
    yield own
    own.api_client.close()


def calls(apiserver: Any) -> list[tuple[str, int]]:
    """(verb, status) of the requests naming the SecurityEvent (its create names no object)."""
    return [(r.verb, r.status) for r in apiserver.requests if r.name == NAME]


def set_phase(phase: str) -> Any:
    """A mutation setting ``status.phase``; None when it is already that."""
    return lambda obj: None if obj.get("status", {}).get("phase") == phase else {"phase": phase}


def test_a_fresh_copy_is_written_without_a_read(cluster: Cluster, apiserver: Any) -> None:
    current = cluster.get(SECURITY_EVENTS, NAME)
    written = cluster.mutate_status(SECURITY_EVENTS, NAME, set_phase("Pending"), current=current)
    assert written is not None and written["status"] == {"phase": "Pending"}
    assert calls(apiserver) == [("get", 200), ("update", 200)]


def test_a_stale_copy_is_recomputed_on_a_fresh_read(cluster: Cluster, apiserver: Any) -> None:
    stale = cluster.get(SECURITY_EVENTS, NAME)
    cluster.patch(SECURITY_EVENTS, NAME, {"metadata": {"labels": {"changed": "yes"}}})
    written = cluster.mutate_status(SECURITY_EVENTS, NAME, set_phase("Pending"), current=stale)
    assert written is not None and written["metadata"]["labels"] == {"changed": "yes"}
    assert calls(apiserver) == [
        ("get", 200), ("patch", 200), ("update", 409), ("get", 200), ("update", 200),
    ]  # fmt: skip


def test_no_change_on_a_stale_copy_is_checked_again(cluster: Cluster) -> None:
    stale = cluster.get(SECURITY_EVENTS, NAME)
    stale = {**stale, "status": {"phase": "Decided"}}  # as if we had written it ourselves
    written = cluster.mutate_status(SECURITY_EVENTS, NAME, set_phase("Decided"), current=stale)
    assert written is not None and written["status"] == {"phase": "Decided"}
    assert cluster.mutate_status(SECURITY_EVENTS, NAME, set_phase("Decided")) is None
