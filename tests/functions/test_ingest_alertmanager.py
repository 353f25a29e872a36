"""ingest-alertmanager against the API server stand-in (official client over HTTP, no mocks).

Alertmanager's webhook notification (version 4), byte for byte, to a real functions-framework
process; then, in-process: each alert answered on its own (created, duplicate by fingerprint,
ignored when resolved or without a pod, rejected naming the field), and 401 without the token.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient

from amtd.kube.api import Cluster
from support.builders import ALERTMANAGER_WEBHOOK, alertmanager_alert, alertmanager_notification
from support.functions import load_function_client, serve_function
from support.ingesting import TOKEN, bearer, expect_token, security_events
from support.standins import open_world

USER = "ingest-alertmanager"
EXPECTED_SPEC = {
    "targets": ["shop/cart-6b8f7d9c4-hx2lp"],
    "rule": {
        "type": "crypto-miner-detected",
        "threatLevel": "critical",
        "source": "PrometheusIntegrator",
    },
    "description": "Crypto miner in shop/cart-6b8f7d9c4-hx2lp: "
    "Pod shop/cart-6b8f7d9c4-hx2lp holds 3 connections to a known mining pool.",
}
RESOLVED = "status resolved: the alert has ended, there is nothing to act on"
NO_POD = "no pod context (labels namespace and pod are not both set)"


@pytest.fixture(scope="module")
def alertmanager() -> FlaskClient:
    """The function in-process."""
    return load_function_client("ingest-alertmanager")


@pytest.fixture
def cluster(apiserver: Any, kubeconfig: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    """CRDs installed; the function connects as ``ingest-alertmanager`` and expects TOKEN."""
    expect_token(monkeypatch)
    with open_world(apiserver, kubeconfig, USER, monkeypatch) as own:
        yield own


def post(client: FlaskClient, *alerts: dict[str, Any]) -> Any:
    """POST a notification carrying ``alerts`` with the right token."""
    body = json.dumps(alertmanager_notification(*alerts))
    return client.post("/", data=body, content_type="application/json", headers=bearer())


def results(response: Any) -> list[tuple[str, ...]]:
    """(label, result, name-or-reason-or-field) of every alert in the answer."""
    return [
        (item["label"], item["result"], item.get("reason") or item.get("field") or item["name"])
        for item in response.get_json()["results"]
    ]


def test_alertmanagers_own_bytes_over_http_make_the_right_security_event(
    apiserver: Any, cluster: Cluster, tmp_path: Path
) -> None:
    kubeconfig = apiserver.write_kubeconfig(tmp_path / "process.kubeconfig", user=USER)
    env = {"KUBECONFIG": str(kubeconfig), "INGEST_TOKEN": TOKEN}
    headers = {"Content-Type": "application/json", "User-Agent": "Alertmanager/0.27.0", **bearer()}
    with serve_function("ingest-alertmanager", env) as url:
        answer = requests.post(url, data=ALERTMANAGER_WEBHOOK, headers=headers, timeout=20)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["counts"] == {"created": 1, "duplicate": 0, "ignored": 2, "rejected": 0,
                              "failed": 0}  # fmt: skip
    first, resolved, node = body["results"]
    assert (first["label"], first["result"]) == ("alerts[0]", "created")
    assert first["name"].startswith("alertmanager-cart-6b8f7d9c4-hx2lp-")
    assert (resolved["result"], resolved["reason"]) == ("ignored", RESOLVED)
    assert (node["result"], node["reason"]) == ("ignored", NO_POD)
    (event,) = security_events(cluster)
    assert event["metadata"]["name"] == first["name"]
    assert event["spec"] == EXPECTED_SPEC
    assert event["metadata"]["labels"]["amtd.r6security.com/ingested-by"] == USER
    assert event["metadata"]["annotations"]["amtd.r6security.com/alert-time"] == (
        "2025-03-14T09:12:44Z"
    )


def test_without_the_token_nothing_is_created(alertmanager: FlaskClient, cluster: Cluster) -> None:
    for headers in ({}, bearer("wrong-token"), {"Authorization": f"Basic {TOKEN}"}):
        refused = alertmanager.post("/", data=ALERTMANAGER_WEBHOOK, headers=headers,
                                    content_type="application/json")  # fmt: skip
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert security_events(cluster) == []


def test_labels_rule_and_priority_override_alertname_and_severity(
    alertmanager: FlaskClient, cluster: Cluster
) -> None:
    overridden = alertmanager_alert(pod="a", priority="high")
    fallback = alertmanager_alert(pod="b", rule=None)
    assert post(alertmanager, overridden, fallback).status_code == 200
    rules = {e["spec"]["targets"][0]: e["spec"]["rule"] for e in security_events(cluster)}
    assert rules == {
        "shop/a": {"type": "crypto-miner-detected", "threatLevel": "high",
                   "source": "PrometheusIntegrator"},
        "shop/b": {"type": "KubePodCryptoMiner", "threatLevel": "warning",
                   "source": "PrometheusIntegrator"},
    }  # fmt: skip


def test_the_fingerprint_is_the_dedup_key(alertmanager: FlaskClient, cluster: Cluster) -> None:
    alert = alertmanager_alert(at=datetime.now(UTC))
    again = post(alertmanager, alert)  # Alertmanager re-sends a firing alert every repeat_interval
    first_name = again.get_json()["results"][0]["name"]
    assert results(post(alertmanager, alert)) == [("alerts[0]", "duplicate", first_name)]
    other_container = {**alert, "fingerprint": "0123456789abcdef"}  # same pod and rule
    (other,) = results(post(alertmanager, other_container))
    assert other[1] == "created" and other[2] != first_name
    assert len(security_events(cluster)) == 2


def test_resolved_and_podless_alerts_are_ignored_with_a_reason(
    alertmanager: FlaskClient, cluster: Cluster
) -> None:
    response = post(
        alertmanager,
        alertmanager_alert(status="resolved"),
        alertmanager_alert(pod=None),
        alertmanager_alert(namespace=None, instance="worker-2"),
    )
    assert response.status_code == 200
    (resolved, no_pod, no_namespace) = results(response)
    assert resolved == ("alerts[0]", "ignored", RESOLVED)
    assert no_pod == ("alerts[1]", "ignored", NO_POD)
    assert no_namespace == ("alerts[2]", "ignored", NO_POD)
    assert security_events(cluster) == []


def test_a_mixed_notification_answers_every_alert(
    alertmanager: FlaskClient, cluster: Cluster
) -> None:
    response = post(
        alertmanager,
        alertmanager_alert(pod="good"),
        alertmanager_alert(pod="Bad_Name"),
        alertmanager_alert(namespace="../kube-system"),
        alertmanager_alert(pod="x", rule=None, alertname=None),
        alertmanager_alert(pod="y", status="pending"),
        {**alertmanager_alert(pod="z"), "fingerprint": "not-hex"},
        {**alertmanager_alert(pod="w"), "startsAt": "yesterday"},
        alertmanager_alert(pod="v", severity=["critical"]),
        [1, 2],  # type: ignore[arg-type]
    )
    assert response.status_code == 200
    assert [item[1:] for item in results(response)] == [
        ("created", response.get_json()["results"][0]["name"]),
        ("rejected", "labels.pod"),
        ("rejected", "labels.namespace"),
        ("rejected", "labels.alertname"),
        ("rejected", "status"),
        ("rejected", "fingerprint"),
        ("rejected", "startsAt"),
        ("rejected", "labels.severity"),
        ("rejected", "alert"),
    ]
    assert [e["spec"]["targets"] for e in security_events(cluster)] == [["shop/good"]]


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"version": "3"}, "version"), ({"version": None}, "version"), ({"alerts": {}}, "alerts")],
)
def test_a_notification_that_is_not_version_4_is_refused_whole(
    alertmanager: FlaskClient, cluster: Cluster, changes: dict[str, Any], field: str
) -> None:
    notification = {**alertmanager_notification(alertmanager_alert()), **changes}
    response = alertmanager.post("/", data=json.dumps(notification), headers=bearer(),
                                 content_type="application/json")  # fmt: skip
    assert response.status_code == 400
    assert response.get_json()["detail"].startswith(f"{field}: ")
    assert security_events(cluster) == []


def test_every_alert_failed_is_400_and_too_many_is_413(
    alertmanager: FlaskClient, cluster: Cluster
) -> None:
    assert post(alertmanager, alertmanager_alert(pod="Bad_Name")).status_code == 400
    crowd = [alertmanager_alert(pod=f"p{index}") for index in range(501)]
    assert post(alertmanager, *crowd).status_code == 413
    assert security_events(cluster) == []
