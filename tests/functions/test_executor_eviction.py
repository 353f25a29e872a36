"""executor-delete with ``delete: {eviction: true}``: PodDisruptionBudgets are honoured.

The executor evicts through the stand-in's ``pods/{name}/eviction``, which checks the budgets
as the API server does; a budget that allows no disruption leaves the pod intact and the step
open (503: retried later), never a plain delete.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from amtd.kube.api import PODS, Resource
from amtd.kube.apierrors import ConflictError, TransientError
from support.executors import (
    create_decided_event,
    list_events_about,
    only_execution,
    post_event,
    read_status,
)
from support.functions import load_function_client
from support.standins import Stand, create_deployment, create_pod, wait_for_pods

USER = "executor-delete"
BUDGETS = Resource("policy", "v1", "poddisruptionbudgets", namespaced=True)
EVICTION = {"parameters": {"eviction": True}}


@pytest.fixture
def client(stand: Stand, monkeypatch: pytest.MonkeyPatch) -> Iterator[FlaskClient]:
    with stand.connect_functions(USER, monkeypatch):
        yield load_function_client("executors/delete")


def create_budget(stand: Stand, name: str, app: str, **spec: Any) -> None:
    """A policy/v1 PodDisruptionBudget over ``app=<app>`` (``minAvailable=`` or ...)."""
    body = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"selector": {"matchLabels": {"app": app}}, **spec},
    }
    stand.cluster.create(BUDGETS, body, "shop")


def calls(stand: Stand, verb: str, sub: str) -> list[Any]:
    """This executor's calls with ``verb`` on pods (``sub``: the subresource, "" for none)."""
    return [
        record
        for record in stand.server.requests
        if record.user == USER and record.resource == "pods" and record.verb == verb
        and record.subresource == sub
    ]  # fmt: skip


def eviction_of(pod: dict[str, Any], uid: str | None = None) -> dict[str, Any]:
    """A policy/v1 Eviction of the pod, preconditioned on ``uid`` (its own by default)."""
    meta = pod["metadata"]
    return {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
        "deleteOptions": {"preconditions": {"uid": uid or meta["uid"]}},
    }


def test_a_budget_that_allows_it_evicts_the_pod(stand: Stand, client: FlaskClient) -> None:
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    create_budget(stand, "web-budget", "web", minAvailable=1)
    request = create_decided_event(stand.cluster, "sev-evict", [pod], "delete", **EVICTION)

    execution = only_execution(post_event(client, request))

    assert (execution["result"], execution["reason"]) == ("Succeeded", "PodEvicted")
    assert stand.cluster.find(PODS, pod["metadata"]["name"], "shop") is None
    assert len(calls(stand, "create", "eviction")) == 1
    assert calls(stand, "delete", "") == []  # evicted, not deleted
    assert read_status(stand.cluster, "sev-evict").phase == "Completed"


def test_a_budget_that_forbids_it_keeps_the_pod_and_the_step_open(
    stand: Stand, client: FlaskClient
) -> None:
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    create_budget(stand, "web-budget", "web", minAvailable=2)
    request = create_decided_event(stand.cluster, "sev-blocked", [pod], "delete", **EVICTION)

    replies = [post_event(client, request) for _ in range(2)]  # the Broker retries a 503

    assert [reply.status_code for reply in replies] == [503, 503]
    detail = json.loads(replies[0].data)["detail"]
    assert "web-budget needs 2 healthy pods and has 2 currently" in detail
    found = stand.cluster.get(PODS, pod["metadata"]["name"], "shop")
    assert found["metadata"]["uid"] == pod["metadata"]["uid"]
    assert found["metadata"].get("deletionTimestamp") is None
    assert calls(stand, "delete", "") == []  # never forced
    assert read_status(stand.cluster, "sev-blocked").executions == []  # open: retried later
    (event,) = list_events_about(stand.cluster, "shop", pod["metadata"]["name"])
    assert (event["reason"], event["type"]) == ("EvictionBlocked", "Warning")
    assert "web-budget" in event["message"] and "sev-blocked" in event["message"]


def test_a_retry_once_the_budget_allows_it_evicts(stand: Stand, client: FlaskClient) -> None:
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    create_budget(stand, "web-budget", "web", maxUnavailable=0)
    request = create_decided_event(stand.cluster, "sev-later", [pod], "delete", **EVICTION)
    assert post_event(client, request).status_code == 503

    stand.cluster.patch(BUDGETS, "web-budget", {"spec": {"maxUnavailable": 1}}, "shop")
    execution = only_execution(post_event(client, request))

    assert (execution["result"], execution["reason"]) == ("Succeeded", "PodEvicted")
    assert stand.cluster.find(PODS, pod["metadata"]["name"], "shop") is None
    assert [item.reason for item in read_status(stand.cluster, "sev-later").executions] == [
        "PodEvicted"
    ]


def test_the_eviction_names_the_incarnation(stand: Stand) -> None:
    pod, _ = create_deployment(stand.cluster, "shop", "web")

    with pytest.raises(ConflictError):
        stand.cluster.create(PODS, eviction_of(pod, uid="another-uid"), "shop", sub="eviction")

    assert (
        stand.cluster.get(PODS, pod["metadata"]["name"], "shop")["metadata"]["uid"]
        == (pod["metadata"]["uid"])
    )
    stand.cluster.create(PODS, eviction_of(pod), "shop", sub="eviction")
    assert stand.cluster.find(PODS, pod["metadata"]["name"], "shop") is None


@pytest.mark.parametrize(
    ("spec", "allowed"),
    [
        ({"minAvailable": 2}, True),  # 3 healthy, 2 must stay
        ({"minAvailable": 3}, False),
        ({"minAvailable": "66%"}, True),  # of 3: 1.98, rounded up to 2
        ({"minAvailable": "67%"}, False),  # 2.01, rounded up to 3
        ({"maxUnavailable": "1%"}, True),  # 0.03, rounded up to 1
        ({"maxUnavailable": 0}, False),
        ({}, True),  # neither: no pod has to stay
    ],
)
def test_the_budget_counts_healthy_pods(stand: Stand, spec: dict[str, Any], allowed: bool) -> None:
    for index in range(3):
        create_pod(stand.cluster, "shop", f"web-{index}", labels={"app": "web"})
    pod = wait_for_pods(stand.cluster, "shop", "app=web", 3)[0]
    create_budget(stand, "web-budget", "web", **spec)

    try:
        stand.cluster.create(PODS, eviction_of(pod), "shop", sub="eviction")
        evicted = True
    except TransientError as error:
        assert error.status == 429 and "web-budget" in error.message
        evicted = False

    assert evicted is allowed
    assert (stand.cluster.find(PODS, pod["metadata"]["name"], "shop") is None) is allowed


def test_two_budgets_over_one_pod_are_refused(stand: Stand) -> None:
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    create_budget(stand, "one", "web", minAvailable=0)
    create_budget(stand, "two", "web", minAvailable=0)

    with pytest.raises(TransientError, match="more than one PodDisruptionBudget"):
        stand.cluster.create(PODS, eviction_of(pod), "shop", sub="eviction")

    assert stand.cluster.find(PODS, pod["metadata"]["name"], "shop") is not None
