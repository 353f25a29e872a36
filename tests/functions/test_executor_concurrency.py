"""Exactly one effect when deliveries race: delete + quarantine on one pod, parallel duplicates."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from amtd.kube.api import NETWORK_POLICIES, PODS
from support.cloudevents import read_reply
from support.executors import create_decided_event, post_event, read_status
from support.functions import load_function_client
from support.standins import Stand, create_deployment
from support.waiting import run_together

ROUNDS = 3


@pytest.fixture
def stand(stand: Stand, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stand]:
    """The shared stand-in; in-process executors act as ``executors``."""
    with stand.connect_functions("executors", monkeypatch):
        yield stand


def execution_of(reply: Any) -> dict[str, Any]:
    """The single execution of an action.completed reply."""
    assert reply.status_code == 200, reply.data
    _, data = read_reply(reply.headers, reply.data)
    (execution,) = data["executions"]
    return dict(execution)


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_delete_and_quarantine_racing_on_one_pod_have_one_effect(stand: Stand, round_: int) -> None:
    deleter = load_function_client("executors/delete")
    isolator = load_function_client("executors/quarantine")
    pod, _ = create_deployment(stand.cluster, "shop", f"web{round_}")
    delete = create_decided_event(stand.cluster, f"sev-d{round_}", [pod], "delete")
    quarantine = create_decided_event(stand.cluster, f"sev-q{round_}", [pod], "quarantine")

    replies = run_together(
        [lambda: post_event(deleter, delete), lambda: post_event(isolator, quarantine)]
    )

    deleted, isolated = (execution_of(reply) for reply in replies)
    outcomes = {deleted["reason"], isolated["reason"]}
    current = stand.cluster.find(PODS, pod["metadata"]["name"], "shop")
    if deleted["result"] == "Succeeded":
        assert isolated["reason"] in ("AlreadyClaimed", "PodNotFound"), outcomes
        assert current is None
    else:
        assert (deleted["reason"], isolated["reason"]) == ("AlreadyClaimed", "PodQuarantined")
        assert current is not None  # a quarantined pod is never deleted: evidence is kept
        assert len(stand.cluster.list(NETWORK_POLICIES, "shop")) == 1
    for name in (f"sev-d{round_}", f"sev-q{round_}"):
        assert len(read_status(stand.cluster, name).executions) == 1


def test_concurrent_duplicates_have_one_effect_and_one_record(stand: Stand) -> None:
    isolator = load_function_client("executors/quarantine")
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    request = create_decided_event(stand.cluster, "sev-dups", [pod], "quarantine")

    replies = run_together([lambda: post_event(isolator, request) for _ in range(3)])

    assert {execution_of(reply)["reason"] for reply in replies} == {"PodQuarantined"}
    assert len(stand.cluster.list(NETWORK_POLICIES, "shop")) == 1
    assert len(read_status(stand.cluster, "sev-dups").executions) == 1
    created = [
        record
        for record in stand.server.requests
        if record.resource == "networkpolicies" and record.status == 201
    ]
    assert len(created) == 1


def test_a_quarantined_pod_is_never_deleted(stand: Stand) -> None:
    isolator = load_function_client("executors/quarantine")
    deleter = load_function_client("executors/delete")
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    quarantine = create_decided_event(stand.cluster, "sev-first", [pod], "quarantine")
    delete = create_decided_event(stand.cluster, "sev-later", [pod], "delete")

    assert execution_of(post_event(isolator, quarantine))["reason"] == "PodQuarantined"
    skipped = execution_of(post_event(deleter, delete))

    assert (skipped["result"], skipped["reason"]) == ("Skipped", "AlreadyClaimed")
    assert quarantine.steps[0].step_id in skipped["message"]
    assert stand.cluster.find(PODS, pod["metadata"]["name"], "shop") is not None


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_concurrent_duplicate_deletes_delete_once_and_record_once(
    stand: Stand, round_: int
) -> None:
    deleter = load_function_client("executors/delete")
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    name = f"sev-del-dups{round_}"
    request = create_decided_event(stand.cluster, name, [pod], "delete")

    replies = run_together([lambda: post_event(deleter, request) for _ in range(3)])

    executions = [execution_of(reply) for reply in replies]
    assert {execution["result"] for execution in executions} == {"Succeeded"}
    assert {execution["podUid"] for execution in executions} == {pod["metadata"]["uid"]}
    (recorded,) = read_status(stand.cluster, name).executions  # one record for the step
    assert recorded.step_id == request.steps[0].step_id and recorded.result == "Succeeded"
    deleted = [
        record for record in stand.server.requests
        if (record.resource, record.verb, record.status) == ("pods", "delete", 200)
        and record.name == pod["metadata"]["name"]
    ]  # fmt: skip
    assert len(deleted) == 1  # the pod was deleted exactly once
    assert stand.cluster.find(PODS, pod["metadata"]["name"], "shop") is None


def test_the_record_of_racing_duplicate_deletes_says_the_pod_was_deleted(stand: Stand) -> None:
    deleter = load_function_client("executors/delete")
    for round_ in range(ROUNDS * 3):
        pod, _ = create_deployment(stand.cluster, "shop", f"web{round_}")
        request = create_decided_event(stand.cluster, f"sev-del-said{round_}", [pod], "delete")
        run_together([lambda r=request: post_event(deleter, r) for _ in range(3)])
        (recorded,) = read_status(stand.cluster, f"sev-del-said{round_}").executions
        assert recorded.reason == "PodDeleted", recorded
