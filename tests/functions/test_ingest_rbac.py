"""Ingest can only add: with its own credentials it cannot change a SecurityEvent that exists.

The API server stand-in runs enforcing here, as the local stack runs it: ingest authenticates
with its ServiceAccount's token and every request the committed RBAC (knative/rbac/, as a real
API server reads it: ClusterRoles everywhere, Roles in their namespace) does not grant is
answered 403. Through that, an attacker holding ingest's token (or a bug in ingest) cannot
rewrite the targets of a decided SecurityEvent, which would cancel its pending action and erase
its decisions, nor its status or the Events other components wrote; while ingest itself still
creates events and counts repeats.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from amtd.kube.api import EVENTS, SECURITY_EVENTS, Cluster
from amtd.kube.apierrors import InvalidError
from amtd.kube.events import CLUSTER_SCOPED_EVENTS_NAMESPACE
from amtd_stack.apiserver import ApiServer, start_apiserver
from amtd_stack.running.kubeclients import apply_objects
from support.builders import falco_alert
from support.executors import create_decided_event, read_status
from support.functions import load_function_client
from support.ingesting import bearer, count_repeats, expect_token, repeated_events
from support.standins import apply_rbac, connect, open_world, write_identity

USER = "ingest-falco"


@pytest.fixture
def apiserver() -> Iterator[ApiServer]:
    """This module's stand-in enforces tokens and RBAC (the shared one does not)."""
    with start_apiserver(authorization=True) as server:
        yield server


@pytest.fixture
def cluster(
    apiserver: ApiServer, kubeconfig: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Cluster]:
    """CRDs and the committed RBAC installed, functions acting as ServiceAccount ingest-falco."""
    expect_token(monkeypatch)
    with open_world(apiserver, kubeconfig, USER, monkeypatch) as own:
        apply_rbac(kubeconfig, own)
        yield own


@pytest.fixture
def as_ingest(apiserver: ApiServer, kubeconfig: Path) -> Iterator[Cluster]:
    """A connection with ingest-falco's own credentials, as an attacker holding them has."""
    own = connect(write_identity(apiserver, kubeconfig.parent / "attacker", USER))
    try:
        yield own
    finally:
        own.api_client.close()


def denials(apiserver: ApiServer) -> list[tuple[str, str, str]]:
    """(verb, resource, subresource) of every request of ingest-falco answered 403."""
    return [
        (r.verb, r.resource, r.subresource)
        for r in apiserver.requests
        if r.user == USER and r.status == 403
    ]


def post_alert(falco: FlaskClient, alert: dict[str, Any]) -> Any:
    """POST a plain JSON alert with the right token."""
    return falco.post("/", data=json.dumps(alert), content_type="application/json",
                      headers=bearer())  # fmt: skip


def test_ingest_creates_and_counts_repeats_with_only_its_rbac(
    cluster: Cluster, apiserver: ApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCCURRENCES_FLUSH_SECONDS", "0")  # every repeat is written
    falco = load_function_client("ingest-falco")
    answers = [post_alert(falco, falco_alert(rule="RBAC rule")) for _ in range(4)]
    assert [a.status_code for a in answers] == [201, 200, 200, 200]
    name = answers[0].get_json()["name"]
    assert count_repeats(cluster, name) == 3 and len(repeated_events(cluster, name)) == 3
    assert denials(apiserver) == []


@pytest.mark.parametrize(
    "change",
    [
        {"spec": {"targets": ["shop/someone-else"]}},
        {"metadata": {"labels": {"amtd.r6security.com/ingested-by": "matcher"}}},
    ],
)
def test_ingest_credentials_cannot_patch_a_decided_security_event(
    cluster: Cluster, as_ingest: Cluster, apiserver: ApiServer, change: dict[str, Any]
) -> None:
    create_decided_event(cluster, "decided", [], "delete", targets=["shop/web-1"])
    before = cluster.get(SECURITY_EVENTS, "decided")
    with pytest.raises(InvalidError) as raised:
        as_ingest.patch(SECURITY_EVENTS, "decided", change)
    assert raised.value.status == 403
    after = cluster.get(SECURITY_EVENTS, "decided")
    assert after == before and after["spec"]["targets"] == ["shop/web-1"]
    assert len(read_status(cluster, "decided").decisions) == 1
    assert denials(apiserver) == [("patch", "securityevents", "")]


def test_ingest_credentials_cannot_replace_the_status_or_rewrite_events(
    cluster: Cluster, as_ingest: Cluster, apiserver: ApiServer
) -> None:
    create_decided_event(cluster, "decided", [], "delete", targets=["shop/web-1"])
    current = cluster.get(SECURITY_EVENTS, "decided")
    attempts: list[Callable[[], Any]] = [
        lambda: as_ingest.replace(SECURITY_EVENTS, {**current, "spec": {"targets": []}}),
        lambda: as_ingest.replace(SECURITY_EVENTS, {**current, "status": {}}, sub="status"),
        lambda: as_ingest.patch(SECURITY_EVENTS, "decided", {"status": {}}, sub="status"),
        lambda: as_ingest.delete(SECURITY_EVENTS, "decided"),
        lambda: as_ingest.patch(EVENTS, "any", {"count": 1}, CLUSTER_SCOPED_EVENTS_NAMESPACE),
        lambda: as_ingest.create(EVENTS, {"metadata": {"name": "x"}}, "shop"),
    ]
    for attempt in attempts:
        with pytest.raises(InvalidError) as raised:
            attempt()
        assert raised.value.status == 403
    assert cluster.get(SECURITY_EVENTS, "decided") == current
    assert len(denials(apiserver)) == len(attempts)


def test_the_enforcement_would_let_the_old_patch_grant_through(
    cluster: Cluster, as_ingest: Cluster, kubeconfig: Path
) -> None:
    """The check bites: with the rule ingest had before (create, get, patch), the attack works."""
    old_rule = {"apiGroups": ["amtd.r6security.com"], "resources": ["securityevents"],
                "verbs": ["create", "get", "patch"]}  # fmt: skip
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "amtd-ingest-falco"}, "rules": [old_rule]}  # fmt: skip
    apply_objects(kubeconfig, [(role, "the rule ingest had before")])
    create_decided_event(cluster, "decided", [], "delete", targets=["shop/web-1"])
    as_ingest.patch(SECURITY_EVENTS, "decided", {"spec": {"targets": ["shop/someone-else"]}})
    assert cluster.get(SECURITY_EVENTS, "decided")["spec"]["targets"] == ["shop/someone-else"]
