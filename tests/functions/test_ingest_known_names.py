"""Repeats of a known alert cost no API call; a deleted event is created again.

ingest-falco in-process against the API server stand-in (official client over HTTP). The
function remembers, per connection and for one dedup window, the SecurityEvent names it saw
exist (amtd.ingest.ingesting.OccurrenceCounter), so an alert storm is bounded by HTTP, not the API.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from amtd.kube.api import SECURITY_EVENTS, Cluster
from support.builders import falco_alert
from support.functions import load_function_client
from support.ingesting import bearer, count_repeats, expect_token, security_events
from support.standins import open_world

USER = "ingest-falco"


@pytest.fixture
def cluster(apiserver: Any, kubeconfig: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    """CRDs installed; the function connects as ``ingest-falco`` and expects TOKEN."""
    expect_token(monkeypatch)
    with open_world(apiserver, kubeconfig, USER, monkeypatch) as own:
        yield own


def load_falco(monkeypatch: pytest.MonkeyPatch, flush_seconds: str) -> FlaskClient:
    """A fresh ingest-falco (its counter reads OCCURRENCES_FLUSH_SECONDS when loaded)."""
    monkeypatch.setenv("OCCURRENCES_FLUSH_SECONDS", flush_seconds)
    return load_function_client("ingest-falco")


def post_alert(falco: FlaskClient, alert: dict[str, Any]) -> Any:
    """POST a plain JSON alert with the right token."""
    return falco.post("/", data=json.dumps(alert), content_type="application/json",
                      headers=bearer())  # fmt: skip


def calls_by_function(apiserver: Any) -> list[tuple[str, str, int]]:
    """(verb, resource, status) of every request the function sent."""
    return [(r.verb, r.resource, r.status) for r in apiserver.requests if r.user == USER]


def test_repeats_of_a_known_alert_make_no_api_call(
    cluster: Cluster, apiserver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    falco = load_falco(monkeypatch, "30")
    answers = [post_alert(falco, falco_alert(rule="Storm rule")) for _ in range(20)]
    assert [a.status_code for a in answers] == [201] + [200] * 19
    assert {a.get_json()["name"] for a in answers} == {answers[0].get_json()["name"]}
    # one create, then one count flush for the first repeat: read the uid, add a Repeated Event
    assert calls_by_function(apiserver) == [
        ("create", "securityevents", 201),
        ("get", "securityevents", 200),
        ("create", "events", 201),
    ]
    (event,) = security_events(cluster)
    assert count_repeats(cluster, event["metadata"]["name"]) == 1


def test_a_repeat_learned_through_a_conflict_is_known_too(
    cluster: Cluster, apiserver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = post_alert(load_falco(monkeypatch, "30"), falco_alert(rule="Conflict rule"))
    falco = load_falco(monkeypatch, "30")  # another replica: it has not seen the name
    answers = [post_alert(falco, falco_alert(rule="Conflict rule")) for _ in range(5)]
    assert first.status_code == 201 and [a.status_code for a in answers] == [200] * 5
    creates = [
        call for call in calls_by_function(apiserver) if call[:2] == ("create", "securityevents")
    ]
    assert creates == [("create", "securityevents", 201), ("create", "securityevents", 409)]


def test_a_deleted_event_is_created_again_after_a_flush_finds_it_gone(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    falco = load_falco(monkeypatch, "0")  # flush every repeat
    alert = falco_alert(rule="Deleted rule")
    name = post_alert(falco, alert).get_json()["name"]
    cluster.delete(SECURITY_EVENTS, name)
    assert post_alert(falco, alert).get_json() == {"result": "duplicate", "name": name}
    again = post_alert(falco, alert)
    assert again.status_code == 201 and again.get_json() == {"result": "created", "name": name}
    assert [event["metadata"]["name"] for event in security_events(cluster)] == [name]
