"""``amtd release``: end a quarantine (delete or restore), recorded on the SecurityEvent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from amtd.kube.api import NETWORK_POLICIES, PODS
from amtd_cli import main
from support.executors import (
    create_decided_event,
    list_events_about,
    post_event,
    read_status,
    wait_for_events_about,
)
from support.functions import load_function_client
from support.standins import Stand, create_deployment

QUARANTINE_MARKS = (
    "amtd.r6security.com/quarantined-labels",
    "amtd.r6security.com/quarantined-by",
    "amtd.r6security.com/claimed-by",
)


@pytest.fixture
def quarantined(stand: Stand, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A Deployment pod quarantined by the real executor (SecurityEvent sev-q)."""
    pod, _ = create_deployment(stand.cluster, "shop", "web")
    request = create_decided_event(stand.cluster, "sev-q", [pod], "quarantine")
    with stand.connect_functions("executor-quarantine", monkeypatch):
        reply = post_event(load_function_client("executors/quarantine"), request)
    assert reply.status_code == 200
    assert len(stand.cluster.list(NETWORK_POLICIES, "shop")) == 1
    return pod


def release(
    stand: Stand, monkeypatch: pytest.MonkeyPatch, target: str, *flags: str
) -> int:  # fmt: skip
    """Run ``amtd release`` in-process against the stand-in."""
    kubeconfig = stand.kubeconfig("operator")
    monkeypatch.setenv("KUBECONFIG", "")  # the CLI sets it from --kubeconfig; restored after
    return main(["release", target, "--kubeconfig", str(kubeconfig), *flags])


def test_release_deletes_the_isolated_pod_and_its_policy(
    stand: Stand, quarantined: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    name = quarantined["metadata"]["name"]

    code = release(stand, monkeypatch, f"shop/{name}")

    assert code == 0
    assert "Released" in capsys.readouterr().out
    assert stand.cluster.find(PODS, name, "shop") is None
    assert stand.cluster.list(NETWORK_POLICIES, "shop") == []
    status = read_status(stand.cluster, "sev-q")
    release_record = status.executions[-1]
    assert (release_record.action, release_record.result) == ("release", "Succeeded")
    assert release_record.reason == "Released"
    assert release_record.step_id == f"{status.executions[0].step_id}/release"
    assert release_record.pod_uid == quarantined["metadata"]["uid"]
    assert status.phase == "Completed"
    events = wait_for_events_about(stand.cluster, "shop", name, count=2)
    reasons = {event["reason"] for event in events}
    assert reasons == {"PodQuarantined", "Released"}


def test_release_restore_puts_the_labels_back(
    stand: Stand, quarantined: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    name = quarantined["metadata"]["name"]

    code = release(stand, monkeypatch, f"shop/{name}", "--restore")

    assert code == 0
    meta = stand.cluster.get(PODS, name, "shop")["metadata"]
    assert meta["uid"] == quarantined["metadata"]["uid"]
    assert meta["labels"] == quarantined["metadata"]["labels"]
    assert not set(QUARANTINE_MARKS) & set(meta.get("annotations") or {})
    assert stand.cluster.list(NETWORK_POLICIES, "shop") == []
    assert read_status(stand.cluster, "sev-q").executions[-1].reason == "Restored"
    (on_pod,) = [
        event
        for event in list_events_about(stand.cluster, "shop", name)
        if event["reason"] == "Restored"
    ]
    assert on_pod["involvedObject"]["uid"] == meta["uid"]


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("shop/{pod}", "is not quarantined"),
        ("shop/missing", "pod shop/missing does not exist"),
        ("no-slash", "exactly one '/'"),
    ],
)
def test_release_of_a_pod_that_is_not_quarantined_exits_2(
    stand: Stand, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    target: str, message: str,
) -> None:  # fmt: skip
    pod, _ = create_deployment(stand.cluster, "shop", "web")

    code = release(stand, monkeypatch, target.format(pod=pod["metadata"]["name"]))

    assert code == 2
    assert message in capsys.readouterr().err
    assert stand.cluster.find(PODS, pod["metadata"]["name"], "shop") is not None


def test_the_console_script_releases(stand: Stand, quarantined: dict[str, Any]) -> None:
    name = quarantined["metadata"]["name"]
    command = [str(Path(sys.executable).with_name("amtd")), "release", f"shop/{name}"]
    kubeconfig = str(stand.kubeconfig("operator"))

    done = subprocess.run(
        [*command, "--restore", "--kubeconfig", kubeconfig],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    again = subprocess.run(
        [*command, "--kubeconfig", kubeconfig],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Restored:")
    assert again.returncode == 2
    assert "is not quarantined" in again.stderr
    labels = stand.cluster.get(PODS, name, "shop")["metadata"]["labels"]
    assert json.dumps(labels, sort_keys=True) == json.dumps(
        quarantined["metadata"]["labels"], sort_keys=True
    )
