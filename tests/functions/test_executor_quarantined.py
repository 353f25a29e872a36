"""A pod amtd quarantined is kept for forensics, even once its SecurityEvent is swept.

The executors over real HTTP against the API stand-in (official client). The quarantine's claim
stands only while its SecurityEvent exists; amtd's own quarantine label (a hash of namespace,
name and uid) keeps every other action off the pod after that, until ``amtd release``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from amtd.act.claiming import RELEASED, encode_released, read_released
from amtd.act.guarding import is_quarantined_by_amtd
from amtd.act.quarantine.quarantining import QUARANTINE_LABEL, make_quarantine_name
from amtd.kube.api import NETWORK_POLICIES, PODS, SECURITY_EVENTS
from amtd_cli import main
from support.executors import create_decided_event, only_execution, post_event
from support.functions import load_function_client
from support.standins import Stand, create_deployment


@pytest.fixture
def clients(stand: Stand, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, FlaskClient]]:
    with stand.connect_functions("executors", monkeypatch):
        yield {action: load_function_client(f"executors/{action}")
               for action in ("delete", "quarantine")}  # fmt: skip


def quarantine_swept(stand: Stand, clients: dict[str, FlaskClient]) -> dict[str, Any]:
    """A Deployment pod quarantined by the executor, its SecurityEvent since deleted (swept)."""
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    request = create_decided_event(stand.cluster, "sev-q", [pod], "quarantine")
    assert only_execution(post_event(clients["quarantine"], request))["reason"] == "PodQuarantined"
    stand.cluster.delete(SECURITY_EVENTS, "sev-q")
    return pod


def pod_deletes(stand: Stand, pod: dict[str, Any]) -> list[Any]:
    """The delete requests the API server answered for the pod."""
    return [
        record for record in stand.server.requests
        if (record.resource, record.verb) == ("pods", "delete")
        and record.name == pod["metadata"]["name"]
    ]  # fmt: skip


def test_a_quarantined_pod_is_kept_after_its_security_event_is_swept(
    stand: Stand, clients: dict[str, FlaskClient]
) -> None:
    pod = quarantine_swept(stand, clients)
    delete = create_decided_event(stand.cluster, "sev-later", [pod], "delete")

    skipped = only_execution(post_event(clients["delete"], delete))

    assert (skipped["result"], skipped["reason"]) == ("Skipped", "PodQuarantined")
    assert stand.cluster.find(PODS, pod["metadata"]["name"], "shop") is not None
    assert pod_deletes(stand, pod) == []


def test_after_release_actions_apply_again(
    stand: Stand, clients: dict[str, FlaskClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    pod = quarantine_swept(stand, clients)
    target = f"shop/{pod['metadata']['name']}"
    kubeconfig = stand.kubeconfig("operator")
    monkeypatch.setenv("KUBECONFIG", "")  # the CLI sets it from --kubeconfig; restored after
    assert main(["release", target, "--restore", "--kubeconfig", str(kubeconfig)]) == 0
    delete = create_decided_event(stand.cluster, "sev-after", [pod], "delete")

    deleted = only_execution(post_event(clients["delete"], delete))

    assert (deleted["result"], deleted["reason"]) == ("Succeeded", "PodDeleted")
    assert stand.cluster.find(PODS, pod["metadata"]["name"], "shop") is None


@pytest.mark.parametrize("uid", ["another-uid", ""])
def test_a_quarantine_label_amtd_did_not_set_keeps_nothing(
    stand: Stand, clients: dict[str, FlaskClient], uid: str
) -> None:
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    meta = pod["metadata"]
    forged = make_quarantine_name("shop", meta["name"], uid)  # what a template could compute
    stand.cluster.patch(PODS, meta["name"], {"metadata": {"labels": {QUARANTINE_LABEL: forged}}},
                        "shop")  # fmt: skip
    delete = create_decided_event(stand.cluster, "sev-forged", [pod], "delete")

    deleted = only_execution(post_event(clients["delete"], delete))

    assert (deleted["result"], deleted["reason"]) == ("Succeeded", "PodDeleted")


def test_only_amtds_value_for_this_incarnation_counts() -> None:
    meta = {"namespace": "shop", "name": "web", "uid": "u-1"}
    ours = make_quarantine_name("shop", "web", "u-1")
    assert is_quarantined_by_amtd({"metadata": {**meta, "labels": {QUARANTINE_LABEL: ours}}})
    assert not is_quarantined_by_amtd({"metadata": {**meta, "labels": {QUARANTINE_LABEL: "x"}}})
    replaced = {**meta, "uid": "u-2", "labels": {QUARANTINE_LABEL: ours}}
    assert not is_quarantined_by_amtd({"metadata": replaced})
    assert not is_quarantined_by_amtd({"metadata": meta})


def test_a_quarantine_replayed_after_release_isolates_nothing(
    stand: Stand, clients: dict[str, FlaskClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    request = create_decided_event(stand.cluster, "sev-q", [pod], "quarantine")
    assert only_execution(post_event(clients["quarantine"], request))["reason"] == "PodQuarantined"
    kubeconfig = stand.kubeconfig("operator")
    monkeypatch.setenv("KUBECONFIG", "")  # the CLI sets it from --kubeconfig; restored after
    target = f"shop/{pod['metadata']['name']}"
    assert main(["release", target, "--restore", "--kubeconfig", str(kubeconfig)]) == 0
    erase_executions(stand, "sev-q")  # what anyone who may write the status could do

    replayed = only_execution(post_event(clients["quarantine"], request))

    assert (replayed["result"], replayed["reason"]) == ("Skipped", "AlreadyReleased")
    labels = stand.cluster.get(PODS, pod["metadata"]["name"], "shop")["metadata"]["labels"]
    assert QUARANTINE_LABEL not in labels
    assert stand.cluster.list(NETWORK_POLICIES, "shop") == []


def erase_executions(stand: Stand, name: str) -> None:
    """Drop every Execution from the SecurityEvent's status, decisions kept."""

    def erase(current: dict[str, Any]) -> dict[str, Any]:
        return {**current["status"], "executions": []}

    stand.cluster.mutate_status(SECURITY_EVENTS, name, erase)


def test_a_release_mark_counts_only_for_this_pod_incarnation() -> None:
    meta = {"namespace": "shop", "name": "web", "uid": "u-1"}
    marked = {"metadata": {**meta, "annotations": {RELEASED: encode_released(
        {"metadata": meta}, "step-1")}}}  # fmt: skip
    assert read_released(marked) == ("step-1",)
    assert read_released({"metadata": {**marked["metadata"], "uid": "u-2"}}) == ()
    assert read_released({"metadata": {**meta, "annotations": {RELEASED: "{"}}}) == ()
    again = encode_released(marked, "step-2")
    assert json.loads(again) == {"podUid": "u-1", "stepIds": ["step-1", "step-2"]}
