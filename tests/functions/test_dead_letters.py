"""The dead-letters function over real HTTP against the API server stand-in (official client).

Dead letters are built as the Broker sends them after a failed response: the original
CloudEvent plus the extensions knativeerrordest, knativeerrorcode and knativeerrordata (base64
of that response). A delivery that timed out arrives with none of them; tests below cover both.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from amtd.deadletters import NO_DETAILS
from amtd.kube.api import EVENTS, Cluster
from amtd.model.actionevents import to_request_attributes
from support.cloudevents import as_binary, as_structured
from support.executors import create_decided_event
from support.functions import load_function_client
from support.standins import open_world

MATCHER_URL = "http://matcher.amtd-system.svc.cluster.local"


@pytest.fixture(scope="module")
def dead_letters() -> FlaskClient:
    """The function in-process (stateless; the API connection is reset per test)."""
    return load_function_client("dead-letters")


@pytest.fixture
def cluster(apiserver: Any, kubeconfig: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    """Our CRDs and namespace amtd-system; the function connects as ``dead-letters``."""
    monkeypatch.setenv("AMTD_NAMESPACE", "amtd-system")
    with open_world(apiserver, kubeconfig, "dead-letters", monkeypatch, ("amtd-system",)) as own:
        yield own


def post(function: FlaskClient, request: tuple[dict[str, str], bytes]) -> Any:
    """POST a CloudEvent request (headers, body) to the function."""
    headers, body = request
    return function.post("/", headers=headers, data=body)


def dead_letter(attributes: dict[str, str], code: str = "500") -> dict[str, str]:
    """The broker's extensions added to an event's attributes."""
    return {
        **attributes,
        "knativeerrordest": MATCHER_URL,
        "knativeerrorcode": code,
        "knativeerrordata": base64.b64encode(b'{"error": "ApiError", "detail": "boom"}').decode(),
    }


def action_requested(name: str) -> dict[str, str]:
    """Attributes of a matcher reply about SecurityEvent ``name`` (its data is not read here)."""
    return {
        "type": "com.r6security.amtd.action.requested.v1",
        "source": "/amtd/matcher",
        "id": f"uid-1/1/demo/{name}",
        "subject": name,
        "securityevent": name,
        "datacontenttype": "application/json",
    }


def decided_request(cluster: Cluster, name: str) -> tuple[dict[str, str], dict[str, Any]]:
    """A SecurityEvent decided as the matcher leaves it; its action.requested attributes, data."""
    request = create_decided_event(cluster, name, [], "delete", targets=[f"demo/{name}-pod"])
    return to_request_attributes(request), request.model_dump(by_alias=True, mode="json")


def warnings_in(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    """DeadLetter Events in a namespace."""
    events = cluster.list(EVENTS, namespace)
    return [event for event in events if event["reason"] == "DeadLetter"]


def test_dead_letter_about_a_security_event_is_recorded_on_it(
    dead_letters: FlaskClient, cluster: Cluster
):
    attributes, data = decided_request(cluster, "sev-1")
    response = post(dead_letters, as_binary(dead_letter(attributes), data))
    assert response.status_code == 204
    [event] = warnings_in(cluster, "default")  # the namespace for cluster-scoped objects
    assert event["type"] == "Warning"
    assert event["involvedObject"] == {
        "apiVersion": "amtd.r6security.com/v1beta1",
        "kind": "SecurityEvent",
        "name": "sev-1",
        "uid": data["securityEvent"]["uid"],
    }
    message = event["message"]
    for part in ("action.requested", attributes["id"], MATCHER_URL, "HTTP 500", "boom"):
        assert part in message
    assert "unverified" not in message


def test_a_dead_letter_without_extensions_is_recorded_as_undetailed(
    dead_letters: FlaskClient, cluster: Cluster
):
    # After a delivery timeout the broker adds no knativeerror* extension at all.
    attributes, data = decided_request(cluster, "sev-3")
    response = post(dead_letters, as_binary(attributes, data))
    assert response.status_code == 204
    [event] = warnings_in(cluster, "default")
    assert event["involvedObject"]["name"] == "sev-3"
    assert NO_DETAILS in event["message"] and "HTTP" not in event["message"]


def test_other_dead_letters_are_recorded_on_the_broker(dead_letters: FlaskClient, cluster: Cluster):
    attributes = {"type": "falco.rule.output.v1", "source": "https://falco.org", "id": "f-1"}
    letter = dead_letter({**attributes, "datacontenttype": "application/json"}, code="400")
    response = post(dead_letters, as_structured(letter, {"rule": "x"}))
    assert response.status_code == 204
    [event] = warnings_in(cluster, "amtd-system")
    assert event["involvedObject"] == {
        "apiVersion": "eventing.knative.dev/v1",
        "kind": "Broker",
        "name": "default",
        "namespace": "amtd-system",
    }
    assert "falco.rule.output.v1" in event["message"] and "HTTP 400" in event["message"]


def test_apiserver_event_for_a_deleted_security_event(dead_letters: FlaskClient, cluster: Cluster):
    attributes = {
        "type": "dev.knative.apiserver.resource.add",
        "source": "https://10.96.0.1:443",
        "id": "a-1",
        "subject": "/apis/amtd.r6security.com/v1beta1/securityevents/gone",
        "datacontenttype": "application/json",
    }
    response = post(dead_letters, as_binary(dead_letter(attributes), {}))
    assert response.status_code == 204
    assert warnings_in(cluster, "default") == []  # nothing the cluster cannot confirm goes there
    [event] = warnings_in(cluster, "amtd-system")
    assert event["involvedObject"]["kind"] == "Broker"
    assert event["message"].startswith("unverified (SecurityEvent gone does not exist): ")


def test_the_same_dead_letter_twice_is_one_event(dead_letters: FlaskClient, cluster: Cluster):
    attributes, data = decided_request(cluster, "sev-2")
    request = as_binary(dead_letter(attributes), data)
    assert [post(dead_letters, request).status_code for _ in range(2)] == [204, 204]
    assert len(warnings_in(cluster, "default")) == 1


def test_junk_is_400(dead_letters: FlaskClient, cluster: Cluster):
    response = dead_letters.post("/", headers={"Content-Type": "text/plain"}, data=b"junk")
    assert response.status_code == 400
    assert response.get_json()["error"] == "NotACloudEvent"
    assert warnings_in(cluster, "amtd-system") == []


def test_api_down_is_503(dead_letters: FlaskClient, cluster: Cluster, apiserver: Any):
    request = as_binary(dead_letter(action_requested("sev-3")), {})
    apiserver.inject_faults(1.0, statuses=(503,), match=lambda r: r.user == "dead-letters")
    try:
        response = post(dead_letters, request)
    finally:
        apiserver.clear_faults()
    assert response.status_code == 503
    assert warnings_in(cluster, "default") == []


def forged_variants(attributes: dict[str, str], data: dict[str, Any]) -> dict[str, Any]:
    """A real request's dead letter, altered as someone who can POST to the sink would."""
    step = data["steps"][0]
    return {
        "unknown step": {**data, "steps": [{**step, "stepId": "forged/1/demo/x"}]},
        "other target": {**data, "steps": [{**step, "target": "kube-system/coredns"}]},
        "other uid": {**data, "securityEvent": {**data["securityEvent"], "uid": "u-forged"}},
        "no steps": {"securityEvent": data["securityEvent"]},
        "not an object": "junk",
    }


@pytest.mark.parametrize(
    ("variant", "why"),
    [("unknown step", "step forged/1/demo/x (demo/sev-f-pod) is not in the status"),
     ("other target", "kube-system/coredns) is not in the status"),
     ("other uid", "is uid"), ("no steps", "names no step"), ("not an object", "names no step")],
)  # fmt: skip
def test_a_forged_action_dead_letter_is_recorded_on_the_broker_as_unverified(
    dead_letters: FlaskClient, cluster: Cluster, variant: str, why: str
):
    attributes, data = decided_request(cluster, "sev-f")
    forged = forged_variants(attributes, data)[variant]
    response = post(dead_letters, as_structured(dead_letter(attributes), forged))
    assert response.status_code == 204
    assert warnings_in(cluster, "default") == []
    [event] = warnings_in(cluster, "amtd-system")
    assert event["involvedObject"]["kind"] == "Broker"
    assert event["message"].startswith("unverified (") and why in event["message"]


def test_a_completion_dead_letter_is_verified_by_its_executions(
    dead_letters: FlaskClient, cluster: Cluster
):
    attributes, data = decided_request(cluster, "sev-c")
    step = data["steps"][0]
    completion = {"securityEvent": data["securityEvent"], "executions": [
        {"stepId": step["stepId"], "target": step["target"], "result": "Succeeded"}]}  # fmt: skip
    completed = {**attributes, "type": "com.r6security.amtd.action.completed.v1", "id": "c-1"}
    assert post(dead_letters, as_binary(dead_letter(completed), completion)).status_code == 204
    [event] = warnings_in(cluster, "default")
    assert event["involvedObject"]["name"] == "sev-c" and "unverified" not in event["message"]


def test_control_characters_and_long_strings_never_reach_the_message(
    dead_letters: FlaskClient, cluster: Cluster
):
    hostile = "\x1b[2J\x1b[31mFAKE\u202e\n2026-01-01 INFO all good\r\x85\x00" + "x" * 2000
    attributes = {"type": f"t{hostile}", "source": f"/s{hostile}", "id": f"i{hostile}",
                  "datacontenttype": "application/json"}  # fmt: skip
    letter = {**dead_letter(attributes), "knativeerrordest": f"http://d{hostile}",
              "knativeerrorcode": f"5{hostile}",
              "knativeerrordata": base64.b64encode(hostile.encode()).decode()}  # fmt: skip
    assert post(dead_letters, as_structured(letter, {})).status_code == 204
    [event] = warnings_in(cluster, "amtd-system")
    message = event["message"]
    assert "FAKE" in message and len(message) <= 1024
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or c == "\u202e" for c in message)
    assert "[2J" not in message and "[31m" not in message
    assert "HTTP 5FAKE2026-01-01…" in message  # the status code, cut at 16 characters
