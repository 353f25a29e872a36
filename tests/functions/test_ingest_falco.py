"""ingest-falco against the API server stand-in (official client over HTTP, no mocks).

Falco's ``http_output`` JSON, the Falcosidekick webhook and Falcosidekick CloudEvents (binary with
percent-encoded ``ce-*`` values, structured) become Phoenix-compatible SecurityEvents that pass the
CRD's validation; bad input is a 400 naming the field; auth, limits and dedup hold.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient

from amtd.kube.api import SECURITY_EVENTS, Cluster
from support.builders import FALCO_ALERT, falco_alert
from support.cloudevents import as_binary, as_structured
from support.fixtures import client_fixture, world_fixture
from support.functions import serve_function
from support.ingesting import (
    FALCO_CE_HEADERS,
    TOKEN,
    bearer,
    repeated_events,
    security_events,
)

USER = "ingest-falco"
EXPECTED_SPEC = {
    "targets": ["shop/cart-6b8f7d9c4-hx2lp"],
    "rule": {
        "type": "Terminal shell in container",
        "threatLevel": "Notice",
        "source": "FalcoIntegrator",
        "falcoSource": "syscall",
        "node": "worker-2",
        "tags": "T1059,container,mitre_execution,shell",
    },
    "description": FALCO_ALERT["output"],
}
# The k8saudit plugin's "Attach/Exec Pod" alert as Falcosidekick forwards it: the pod is the
# object of the API request (ka.target.*), there is no k8s.* field.
EXEC_OUTPUT = (
    "09:20:01.204611000: Notice Attach/Exec to pod (user=alice pod=cart-6b8f7d9c4-hx2lp "
    "resource=pods ns=shop action=exec command=sh)"
)
AUDIT_EXEC_ALERT: dict[str, Any] = {
    "uuid": "0d4f8a77-6c1e-4f0b-9a3e-52b1c7d9e0aa",
    "output": EXEC_OUTPUT,
    "priority": "Notice",
    "rule": "Attach/Exec Pod",
    "time": "2025-03-14T09:20:01.204611Z",
    "source": "k8s_audit",
    "tags": ["NIST_800-53_AC-6", "k8s"],
    "hostname": "falco-6cbd5",
    "output_fields": {
        "evt.time": 1741944001204611000,
        "ka.target.name": "cart-6b8f7d9c4-hx2lp",
        "ka.target.namespace": "shop",
        "ka.target.resource": "pods",
        "ka.target.subresource": "exec",
        "ka.uri.param[command]": "sh",
        "ka.user.name": "alice",
    },
}


falco = client_fixture("ingest-falco")  # stateless but for its duplicate counter
cluster = world_fixture(USER, token=True)


def post_json(client: FlaskClient, document: Any, headers: dict[str, str] | None = None) -> Any:
    """POST a plain JSON alert with the right token unless headers say otherwise."""
    return client.post("/", data=json.dumps(document), content_type="application/json",
                       headers=bearer() if headers is None else headers)  # fmt: skip


def function_calls(apiserver: Any) -> list[Any]:
    """The requests the function itself sent to the API server."""
    return [record for record in apiserver.requests if record.user == USER]


def test_http_output_json_creates_a_phoenix_compatible_event(
    falco: FlaskClient, cluster: Cluster, apiserver: Any
) -> None:
    alert = falco_alert(uuid=None)  # Falco's own http_output has no uuid
    response = post_json(falco, alert)
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert body["result"] == "created" and body["name"].startswith("falco-cart-6b8f7d9c4-hx2lp-")
    stored = cluster.get(SECURITY_EVENTS, body["name"])
    assert stored["spec"] == EXPECTED_SPEC
    assert stored["metadata"]["annotations"]["amtd.r6security.com/alert-time"] == (
        "2025-03-14T09:12:44Z"
    )
    creates = [r for r in function_calls(apiserver) if r.verb == "create"]
    assert [(r.resource, r.status) for r in creates] == [("securityevents", 201)]


def test_sidekick_webhook_json_with_uuid(falco: FlaskClient, cluster: Cluster) -> None:
    response = post_json(falco, FALCO_ALERT)
    assert response.status_code == 201
    assert [event["spec"] for event in security_events(cluster)] == [EXPECTED_SPEC]


def test_rule_source_is_configurable(
    falco: FlaskClient, cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RULE_SOURCE", "falco")
    assert post_json(falco, FALCO_ALERT).status_code == 201
    assert security_events(cluster)[0]["spec"]["rule"]["source"] == "falco"


def test_binary_cloudevent_with_percent_encoded_attributes(
    falco: FlaskClient, cluster: Cluster
) -> None:
    data = falco_alert(rule=None, priority=None, source=None, hostname=None)
    headers = {**FALCO_CE_HEADERS, **bearer(), "ce-hostname": "worker%2D2%20%22a%22"}
    response = falco.post("/", data=json.dumps(data), headers=headers)
    assert response.status_code == 202
    assert response.get_data() == b""  # behind a broker, a non-CloudEvent body is a failure
    assert response.headers["X-Amtd-Result"] == "created"
    (event,) = security_events(cluster)
    assert event["metadata"]["name"] == response.headers["X-Amtd-Name"]
    assert event["spec"]["rule"] == {
        "type": "Terminal shell in container",  # from ce-rule, decoded
        "threatLevel": "Notice",
        "source": "FalcoIntegrator",
        "falcoSource": "syscall",
        "node": 'worker-2 "a"',
        "tags": "T1059,container,mitre_execution,shell",
    }


def test_raw_unencoded_header_values_are_tolerated(falco: FlaskClient, cluster: Cluster) -> None:
    headers = {**FALCO_CE_HEADERS, **bearer(), "ce-rule": "100% raw rule"}
    response = falco.post("/", data=json.dumps(falco_alert(rule=None)), headers=headers)
    assert response.status_code == 202
    assert security_events(cluster)[0]["spec"]["rule"]["type"] == "100% raw rule"


def test_structured_cloudevent_from_the_old_source(falco: FlaskClient, cluster: Cluster) -> None:
    attributes = {"type": "falco.rule.output.v1", "source": "falco.org", "id": "e1",
                  "datacontenttype": "application/json", "amtdtoken": TOKEN}  # fmt: skip
    headers, body = as_structured(attributes, FALCO_ALERT)
    response = falco.post("/", data=body, headers=headers)
    assert response.status_code == 202 and response.get_data() == b""
    assert [event["spec"] for event in security_events(cluster)] == [EXPECTED_SPEC]


def test_cloudevents_through_the_broker_authenticate_with_the_extension(
    falco: FlaskClient, cluster: Cluster
) -> None:
    attributes = {"type": "falco.rule.output.v1", "source": "https://falco.org", "id": "e2",
                  "datacontenttype": "application/json", "amtdtoken": "wrong"}  # fmt: skip
    headers, body = as_binary(attributes, FALCO_ALERT)
    assert falco.post("/", data=body, headers=headers).status_code == 401
    headers, body = as_binary({**attributes, "amtdtoken": TOKEN}, FALCO_ALERT)
    assert falco.post("/", data=body, headers=headers).status_code == 202
    assert len(security_events(cluster)) == 1


@pytest.mark.parametrize(
    "fields",
    [
        {"container.id": "host", "proc.cmdline": "sshd"},
        {"k8s.ns.name": None, "k8s.pod.name": None},
        {"k8s.ns.name": "<NA>", "k8s.pod.name": "<NA>"},
        {"k8s.ns.name": "shop"},
    ],
)
def test_alerts_without_pod_context_are_acknowledged_and_ignored(
    falco: FlaskClient, cluster: Cluster, fields: dict[str, Any]
) -> None:
    response = post_json(falco, falco_alert(output_fields=fields))
    assert response.status_code == 200
    body = response.get_json()
    assert body["result"] == "ignored" and "pod" in body["reason"]
    assert security_events(cluster) == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"output_fields": {"k8s.ns.name": "../../etc", "k8s.pod.name": "x"}},
         "output_fields.k8s.ns.name"),
        ({"output_fields": {"k8s.ns.name": "shop", "k8s.pod.name": "Cart_1"}},
         "output_fields.k8s.pod.name"),
        ({"output_fields": {"k8s.ns.name": "shop", "k8s.pod.name": "a/b"}},
         "output_fields.k8s.pod.name"),
        ({"output_fields": {"k8s.ns.name": 7, "k8s.pod.name": "x"}}, "output_fields.k8s.ns.name"),
        ({"output_fields": ["k8s.ns.name"]}, "output_fields"),
        ({"rule": None}, "rule"),
        ({"rule": ["Terminal shell"]}, "rule"),
        ({"rule": "x" * 5000}, "rule"),
        ({"priority": "Loud"}, "priority"),
        ({"priority": None}, "priority"),
        ({"time": "yesterday"}, "time"),
        ({"time": "2025-02-30T00:00:00Z"}, "time"),
        ({"hostname": 12}, "hostname"),
        ({"output": {"text": "x"}}, "output"),
    ],
)  # fmt: skip
def test_bad_fields_are_400_naming_the_field(
    falco: FlaskClient, cluster: Cluster, apiserver: Any, changes: dict[str, Any], field: str
) -> None:
    alert = falco_alert()
    alert.update(changes)
    alert = {key: value for key, value in alert.items() if value is not None}
    response = post_json(falco, alert)
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "InvalidField" and body["detail"].startswith(f"{field}: ")
    assert function_calls(apiserver) == []  # never reached the API


@pytest.mark.parametrize("body", [b"[1, 2]", b'"alert"', b"{not json", b"", b"\xff\xfe"])
def test_bodies_that_are_not_one_json_object_are_400(
    falco: FlaskClient, cluster: Cluster, body: bytes
) -> None:
    response = falco.post("/", data=body, content_type="application/json", headers=bearer())
    assert response.status_code == 400
    assert response.get_json()["detail"].startswith("body: ")


@pytest.mark.parametrize(
    ("attribute", "value"),
    [("ce-type", "com.example.other"), ("ce-source", "https://evil.example")],
)
def test_cloudevents_that_are_not_falcosidekicks_are_400(
    falco: FlaskClient, cluster: Cluster, attribute: str, value: str
) -> None:
    headers = {**FALCO_CE_HEADERS, **bearer(), attribute: value}
    response = falco.post("/", data=json.dumps(FALCO_ALERT), headers=headers)
    assert response.status_code == 400
    assert response.get_json()["detail"].startswith(attribute.removeprefix("ce-") + ": ")


def test_malformed_cloudevent_envelope_is_400(falco: FlaskClient, cluster: Cluster) -> None:
    headers = {k: v for k, v in FALCO_CE_HEADERS.items() if k != "ce-id"} | bearer()
    response = falco.post("/", data=json.dumps(FALCO_ALERT), headers=headers)
    assert response.status_code == 400 and response.get_json()["detail"].startswith("ce-id: ")


def test_the_same_alert_twice_is_one_event_and_a_counted_duplicate(
    falco: FlaskClient, cluster: Cluster
) -> None:
    alert = falco_alert(rule="Dedup test rule")
    first = post_json(falco, alert)
    second = post_json(falco, falco_alert(rule="Dedup test rule", uuid="another-sidekick"))
    assert first.status_code == 201 and second.status_code == 200
    assert second.get_json() == {"result": "duplicate", "name": first.get_json()["name"]}
    (event,) = security_events(cluster)
    (repeated,) = repeated_events(cluster, event["metadata"]["name"])
    # counted beside the SecurityEvent, which ingest never changes (generation 1, no annotation)
    assert repeated["count"] == 1 and repeated["type"] == "Normal"
    assert repeated["involvedObject"]["uid"] == event["metadata"]["uid"]
    assert repeated["source"] == {"component": USER}
    assert event["metadata"]["generation"] == 1
    assert "amtd.r6security.com/occurrences" not in event["metadata"].get("annotations", {})


def test_the_same_alert_in_another_window_is_a_new_event(
    falco: FlaskClient, cluster: Cluster
) -> None:
    assert post_json(falco, falco_alert(time="2025-03-14T09:12:01Z")).status_code == 201
    assert post_json(falco, falco_alert(time="2025-03-14T09:12:59Z")).status_code == 200
    assert post_json(falco, falco_alert(time="2025-03-14T09:13:00Z")).status_code == 201
    assert len(security_events(cluster)) == 2


def test_dedup_window_is_configurable(
    falco: FlaskClient, cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEDUP_WINDOW_SECONDS", "3600")
    assert post_json(falco, falco_alert(time="2025-03-14T09:00:01Z")).status_code == 201
    assert post_json(falco, falco_alert(time="2025-03-14T09:59:59Z")).status_code == 200
    assert len(security_events(cluster)) == 1


def test_different_rules_or_pods_are_different_events(falco: FlaskClient, cluster: Cluster) -> None:
    fields = {"k8s.ns.name": "shop", "k8s.pod.name": "cart-other"}
    assert post_json(falco, FALCO_ALERT).status_code == 201
    assert post_json(falco, falco_alert(rule="Another rule")).status_code == 201
    assert post_json(falco, falco_alert(output_fields=fields)).status_code == 201
    assert len(security_events(cluster)) == 3


@pytest.mark.parametrize(
    "headers",
    [{}, bearer("wrong"), {"Authorization": TOKEN}, {"Authorization": "Basic dXNlcjpwYXNz"},
     bearer("")],
)  # fmt: skip
def test_missing_or_wrong_credentials_are_401_and_create_nothing(
    falco: FlaskClient, cluster: Cluster, apiserver: Any, headers: dict[str, str]
) -> None:
    response = post_json(falco, FALCO_ALERT, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.get_json()["error"] == "Unauthorized"
    assert function_calls(apiserver) == [] and security_events(cluster) == []


def test_bearer_scheme_is_case_insensitive(falco: FlaskClient, cluster: Cluster) -> None:
    response = post_json(falco, FALCO_ALERT, headers={"Authorization": f"bearer {TOKEN}"})
    assert response.status_code == 201


@pytest.mark.parametrize("configured", [None, "", "  ", "REPLACE-WITH-A-RANDOM-TOKEN"])
def test_no_token_configured_refuses_everything(
    falco: FlaskClient, cluster: Cluster, monkeypatch: pytest.MonkeyPatch, configured: str | None
) -> None:
    if configured is None:
        monkeypatch.delenv("INGEST_TOKEN")
    else:
        monkeypatch.setenv("INGEST_TOKEN", configured)
    response = post_json(falco, FALCO_ALERT, headers=bearer(configured or ""))
    assert response.status_code == 503
    assert response.get_json()["error"] == "NotConfigured"
    readiness = falco.get("/health/readiness")
    assert readiness.status_code == 503 and readiness.get_json()["error"] == "NotConfigured"
    assert security_events(cluster) == []


def test_explicit_opt_out_accepts_without_token_and_warns(
    falco: FlaskClient, cluster: Cluster, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    monkeypatch.delenv("INGEST_TOKEN")
    monkeypatch.setenv("AMTD_INGEST_AUTH", "disabled")
    with caplog.at_level(logging.WARNING):
        response = post_json(falco, FALCO_ALERT, headers={})
    assert response.status_code == 201
    assert any("DISABLED" in record.getMessage() for record in caplog.records)


def test_health_probes(falco: FlaskClient, cluster: Cluster) -> None:
    assert falco.get("/health/liveness").status_code == 200
    assert falco.get("/health/readiness").status_code == 200


def test_bodies_over_one_mebibyte_are_413(falco: FlaskClient, cluster: Cluster) -> None:
    big = json.dumps(falco_alert(output="x" * (1 << 20)))
    response = falco.post("/", data=big, content_type="application/json", headers=bearer())
    assert response.status_code == 413 and response.get_json()["error"] == "PayloadTooLarge"


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/x-ndjson", ""]
)
def test_other_content_types_are_415(
    falco: FlaskClient, cluster: Cluster, content_type: str
) -> None:
    response = falco.post("/", data=json.dumps(FALCO_ALERT), content_type=content_type,
                          headers=bearer())  # fmt: skip
    assert response.status_code == 415
    assert response.get_json()["error"] == "UnsupportedMediaType"


def test_other_methods_are_405(falco: FlaskClient, cluster: Cluster) -> None:
    assert falco.get("/", headers=bearer()).status_code == 405
    assert falco.delete("/", headers=bearer()).status_code == 405


def test_api_server_failure_is_503_and_a_retry_succeeds(
    falco: FlaskClient, cluster: Cluster, apiserver: Any
) -> None:
    apiserver.inject_faults(1.0, statuses=(503,), match=lambda record: record.user == USER)
    response = post_json(falco, FALCO_ALERT)
    assert response.status_code == 503 and response.get_json()["error"] == "ApiUnavailable"
    apiserver.clear_faults()
    assert post_json(falco, FALCO_ALERT).status_code == 201
    assert len(security_events(cluster)) == 1


def test_a_real_functions_framework_process(
    apiserver: Any, cluster: Cluster, tmp_path: Path
) -> None:
    kubeconfig = apiserver.write_kubeconfig(tmp_path / "process.kubeconfig", user=USER)
    env = {"KUBECONFIG": str(kubeconfig), "INGEST_TOKEN": TOKEN}
    with serve_function("ingest-falco", env) as url:
        response = requests.post(url, json=FALCO_ALERT, headers=bearer(), timeout=20)
        assert response.status_code == 201, response.text
        refused = requests.post(url, json=FALCO_ALERT, timeout=20)
        assert refused.status_code == 401
    assert [event["spec"] for event in security_events(cluster)] == [EXPECTED_SPEC]


def test_a_malformed_envelope_without_credentials_is_401_not_400(
    falco: FlaskClient, cluster: Cluster
) -> None:
    envelope = json.dumps({"specversion": "1.0", "type": "falco.rule.output.v1"})
    kind = "application/cloudevents+json"
    assert falco.post("/", data=envelope, content_type=kind).status_code == 401
    authorized = falco.post("/", data=envelope, content_type=kind, headers=bearer())
    assert authorized.status_code == 400 and authorized.get_json()["detail"].startswith("id: ")


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"rule": "shell \ud800"}, "rule"), ({"output": "\udfff"}, "output"),
     ({"tags": ["ok", "\ud83d"]}, "tags[1]")],
)  # fmt: skip
def test_an_unencodable_string_is_400_naming_it(
    falco: FlaskClient, cluster: Cluster, apiserver: Any, changes: dict[str, Any], field: str
) -> None:
    response = post_json(falco, falco_alert(**changes))  # json.dumps writes "\ud800": valid JSON
    assert response.status_code == 400
    assert response.get_json()["detail"].startswith(f"{field}: is not valid Unicode")
    fields = {**FALCO_ALERT["output_fields"], "proc.name": "\ud800"}
    nested = post_json(falco, falco_alert(output_fields=fields))
    assert nested.get_json()["detail"].startswith("output_fields.proc.name: ")
    headers, body = as_structured(
        {"type": "falco.rule.output.v1", "source": "https://falco.org", "id": "u1",
         "datacontenttype": "application/json", "amtdtoken": TOKEN}, falco_alert(**changes),
    )  # fmt: skip
    assert falco.post("/", data=body, headers=headers).status_code == 400
    assert function_calls(apiserver) == []


def test_a_k8saudit_exec_alert_targets_the_pod_it_names(
    falco: FlaskClient, cluster: Cluster
) -> None:
    response = post_json(falco, AUDIT_EXEC_ALERT)
    assert response.status_code == 201, response.get_data(as_text=True)
    (event,) = security_events(cluster)
    assert event["spec"] == {
        "targets": ["shop/cart-6b8f7d9c4-hx2lp"],
        "rule": {
            "type": "Attach/Exec Pod",
            "threatLevel": "Notice",
            "source": "FalcoIntegrator",
            "falcoSource": "k8s_audit",
            "node": "falco-6cbd5",
            "tags": "NIST_800-53_AC-6,k8s",
        },
        "description": EXEC_OUTPUT,
    }


def test_an_older_k8saudit_exec_alert_without_resource_targets_the_pod(
    falco: FlaskClient, cluster: Cluster
) -> None:
    fields = {
        k: v for k, v in AUDIT_EXEC_ALERT["output_fields"].items() if k != "ka.target.resource"
    }
    response = post_json(
        falco, {**AUDIT_EXEC_ALERT, "output_fields": {**fields, "ka.target.subresource": "attach"}}
    )
    assert response.status_code == 201
    assert [e["spec"]["targets"] for e in security_events(cluster)] == [
        ["shop/cart-6b8f7d9c4-hx2lp"]
    ]


@pytest.mark.parametrize(
    "changes",
    [{"ka.target.resource": "configmaps", "ka.target.subresource": "<NA>"},
     {"ka.target.resource": "<NA>", "ka.target.subresource": "<NA>"},
     {"ka.target.namespace": "<NA>"}],
)  # fmt: skip
def test_k8saudit_alerts_about_other_objects_are_ignored(
    falco: FlaskClient, cluster: Cluster, apiserver: Any, changes: dict[str, Any]
) -> None:
    fields = {**AUDIT_EXEC_ALERT["output_fields"], **changes}
    response = post_json(falco, {**AUDIT_EXEC_ALERT, "output_fields": fields})
    assert response.status_code == 200
    assert response.get_json()["result"] == "ignored"
    assert function_calls(apiserver) == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"ka.target.name": "../secrets"}, "output_fields.ka.target.name"),
     ({"ka.target.namespace": "Shop"}, "output_fields.ka.target.namespace"),
     ({"ka.target.resource": ["pods"]}, "output_fields.ka.target.resource")],
)  # fmt: skip
def test_a_hostile_k8saudit_target_is_400(
    falco: FlaskClient, cluster: Cluster, apiserver: Any, changes: dict[str, Any], field: str
) -> None:
    fields = {**AUDIT_EXEC_ALERT["output_fields"], **changes}
    response = post_json(falco, {**AUDIT_EXEC_ALERT, "output_fields": fields})
    assert response.status_code == 400
    assert response.get_json()["detail"].startswith(f"{field}: ")
    assert function_calls(apiserver) == []


@pytest.mark.parametrize(
    ("tags", "expected"),
    [(["shell", "T1059", "shell", " container "], "T1059,container,shell"), ([], None),
     (None, None), ("b,a", "a,b")],
)  # fmt: skip
def test_tags_become_one_sorted_rule_value(
    falco: FlaskClient, cluster: Cluster, tags: Any, expected: str | None
) -> None:
    response = post_json(falco, falco_alert(tags=tags))
    assert response.status_code == 201
    assert security_events(cluster)[0]["spec"]["rule"].get("tags") == expected


@pytest.mark.parametrize(
    ("tags", "field"),
    [(["ok", 5], "tags[1]"), ({"a": "b"}, "tags"), (["x" * 300], "tags[0]"),
     ([f"t{i}" for i in range(65)], "tags")],
)  # fmt: skip
def test_bad_tags_are_400_naming_them(
    falco: FlaskClient, cluster: Cluster, apiserver: Any, tags: Any, field: str
) -> None:
    response = post_json(falco, falco_alert(tags=tags))
    assert response.status_code == 400
    assert response.get_json()["detail"].startswith(f"{field}: ")
    assert function_calls(apiserver) == []
