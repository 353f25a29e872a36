"""The OTLP/HTTP ``/v1/logs`` path of ingest-kubearmor and ingest-falco, against the API server
stand-in (official client over HTTP, no mocks): what an OpenTelemetry Collector's ``otlphttp``
exporter sends, in protobuf and OTLP/JSON, with string and key-value-list bodies.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask.testing import FlaskClient

from amtd.kube.api import Cluster
from support.builders import falco_alert, kubearmor_alert
from support.fixtures import client_fixture, world_fixture
from support.ingesting import bearer, security_events
from support.otlp import JSON, PROTOBUF, encode, json_request, read_response, record_body

ROOT = Path(__file__).resolve().parents[2]
LOGS_PATH = "/v1/logs"
RELAY_POD = {"k8s.namespace.name": "kubearmor", "k8s.pod.name": "kubearmor-relay-5d8f9-abcde"}
KUBEARMOR_RULE = {
    "type": "block-pkg-mgmt-tools-exec",
    "threatLevel": "1",
    "source": "KubeArmorIntegrator",
    "operation": "Process",
    "node": "worker-2",
}
KUBEARMOR_DESCRIPTION = (
    "package manager execution blocked (Process /usr/bin/apt update; Block: Permission denied)"
)  # fmt: skip
VARIANTS = [(PROTOBUF, False), (PROTOBUF, True), (JSON, False), (JSON, True)]
VARIANT_IDS = ["protobuf-string", "protobuf-kvlist", "json-string", "json-kvlist"]


kubearmor = client_fixture("ingest-kubearmor")
falco = client_fixture("ingest-falco")
# The functions expect the token; this test's identity is ingest-kubearmor (or, for Falco's
# logs, ingest-falco).
cluster = world_fixture("ingest-kubearmor", token=True, unset=("OTLP_TARGET_FROM_RESOURCE",))
falco_cluster = world_fixture("ingest-falco", token=True)


def export(
    client: FlaskClient, bodies: list[dict[str, Any]], content_type: str,
    resource: dict[str, str] | None = None,
) -> Any:  # fmt: skip
    """POST a logs export the way the collector does (its bearer token in ``headers:``)."""
    data = encode(json_request(bodies, resource), content_type)
    return client.post(LOGS_PATH, data=data, content_type=content_type, headers=bearer())


@pytest.mark.parametrize(("content_type", "as_kvlist"), VARIANTS, ids=VARIANT_IDS)
def test_each_encoding_and_body_creates_the_event(
    kubearmor: FlaskClient, cluster: Cluster, content_type: str, as_kvlist: bool
) -> None:
    response = export(kubearmor, [record_body(kubearmor_alert(), as_kvlist)], content_type)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == content_type
    assert read_response(response.get_data(), content_type) == {}  # all accepted
    (event,) = security_events(cluster)
    assert event["spec"]["targets"] == ["shop/cart-6b8f7d9c4-hx2lp"]
    assert event["spec"]["description"] == KUBEARMOR_DESCRIPTION
    assert {key: event["spec"]["rule"].get(key) for key in KUBEARMOR_RULE} == KUBEARMOR_RULE
    assert event["metadata"]["annotations"]["amtd.r6security.com/alert-time"] == (
        "2025-03-14T09:13:20Z"
    )


@pytest.mark.parametrize("content_type", [PROTOBUF, JSON])
def test_a_mixed_batch_is_a_partial_success(
    kubearmor: FlaskClient, cluster: Cluster, content_type: str
) -> None:
    bodies = [
        record_body(kubearmor_alert(pod="a"), as_kvlist=False),
        {"stringValue": "not json at all"},
        record_body(kubearmor_alert(pod="b"), as_kvlist=True),
        {"doubleValue": 3.5},
        record_body(kubearmor_alert(pod="c", Severity="11"), as_kvlist=False),
        record_body(kubearmor_alert(pod="a"), as_kvlist=True),  # a repeat: accepted, counted
    ]
    response = export(kubearmor, bodies, content_type)
    assert response.status_code == 200
    partial = read_response(response.get_data(), content_type)["partialSuccess"]
    assert partial["rejectedLogRecords"] == "3"
    message = partial["errorMessage"]
    for index in (1, 3, 4):
        assert f"logRecords[{index}]" in message
    assert "Severity" in message and "logRecords[0]" not in message
    assert response.headers["X-Amtd-Result"] == (
        "created=2,duplicate=1,ignored=0,rejected=3,failed=0"
    )
    assert sorted(e["spec"]["targets"][0] for e in security_events(cluster)) == ["shop/a", "shop/b"]


@pytest.mark.parametrize(
    ("content_type", "data"),
    [(PROTOBUF, b"\xff\xff\xff\xff"), (JSON, b"{not json"), (JSON, b'{"resourceLogs": 7}')],
    ids=["protobuf", "json-syntax", "json-shape"],
)
def test_an_undecodable_body_is_400_and_creates_nothing(
    kubearmor: FlaskClient, cluster: Cluster, content_type: str, data: bytes
) -> None:
    response = kubearmor.post(LOGS_PATH, data=data, content_type=content_type, headers=bearer())
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"] == "InvalidField"
    assert security_events(cluster) == []


def test_other_content_types_are_415(kubearmor: FlaskClient, cluster: Cluster) -> None:
    response = kubearmor.post(LOGS_PATH, data=b"x", content_type="text/plain", headers=bearer())
    assert response.status_code == 415


def test_the_token_is_required(kubearmor: FlaskClient, cluster: Cluster) -> None:
    data = encode(json_request([record_body(kubearmor_alert(), False)]), PROTOBUF)
    response = kubearmor.post(LOGS_PATH, data=data, content_type=PROTOBUF)
    assert response.status_code == 401
    wrong = kubearmor.post(LOGS_PATH, data=data, content_type=PROTOBUF, headers=bearer("nope"))
    assert wrong.status_code == 401
    assert security_events(cluster) == []


def test_the_relay_pod_is_never_the_target_by_default(
    kubearmor: FlaskClient, cluster: Cluster
) -> None:
    # A host alert read from the relay's stdout: its resource is the relay's pod, not a target.
    host_alert = kubearmor_alert(NamespaceName=None, PodName=None, Type="MatchedHostPolicy")
    response = export(kubearmor, [record_body(host_alert, True)], PROTOBUF, RELAY_POD)
    assert response.status_code == 200
    assert response.headers["X-Amtd-Result"].startswith("created=0,duplicate=0,ignored=1")
    assert security_events(cluster) == []


def test_the_resource_may_name_the_pod_when_enabled(
    kubearmor: FlaskClient, cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTLP_TARGET_FROM_RESOURCE", "true")
    alert = kubearmor_alert(NamespaceName=None, PodName=None)
    resource = {"k8s.namespace.name": "shop", "k8s.pod.name": "web-1"}
    named = kubearmor_alert(pod="own-pod")  # the alert's own pod wins over the resource's
    response = export(kubearmor, [record_body(alert, False), record_body(named, True)], JSON,
                      resource)  # fmt: skip
    assert response.status_code == 200
    assert sorted(e["spec"]["targets"][0] for e in security_events(cluster)) == [
        "shop/own-pod", "shop/web-1",
    ]  # fmt: skip


def test_a_relay_log_line_is_ignored_not_rejected(kubearmor: FlaskClient, cluster: Cluster) -> None:
    line = {"level": "info", "msg": "Connected to the gRPC server", "ts": 1741943600.5}
    response = export(kubearmor, [record_body(line, False)], PROTOBUF)
    assert response.status_code == 200
    assert read_response(response.get_data(), PROTOBUF) == {}
    assert security_events(cluster) == []


@pytest.mark.parametrize(("content_type", "as_kvlist"), VARIANTS, ids=VARIANT_IDS)
def test_falco_output_through_the_collector(
    falco: FlaskClient, falco_cluster: Cluster, content_type: str, as_kvlist: bool
) -> None:
    bodies = [record_body(falco_alert(uuid=None), as_kvlist), {"stringValue": "Falco started"}]
    response = export(falco, bodies, content_type, {"k8s.namespace.name": "falco"})
    assert response.status_code == 200, response.get_data(as_text=True)
    partial = read_response(response.get_data(), content_type)["partialSuccess"]
    assert partial["rejectedLogRecords"] == "1" and "logRecords[1]" in partial["errorMessage"]
    (event,) = security_events(falco_cluster)
    assert event["spec"]["targets"] == ["shop/cart-6b8f7d9c4-hx2lp"]
    assert event["spec"]["rule"]["type"] == "Terminal shell in container"


def collector_config() -> dict[str, Any]:
    """The OpenTelemetry Collector configuration shown in docs/ingest.md."""
    text = (ROOT / "docs" / "ingest.md").read_text(encoding="utf-8")
    section = re.split(r"^## \d+\. OpenTelemetry Collector$", text, flags=re.M)[1]
    (block,) = re.findall(r"```yaml\n(.*?)```", section, flags=re.S)[:1]
    config: dict[str, Any] = yaml.safe_load(block)
    return config


def test_the_documented_collector_config_sends_what_these_tests_send() -> None:
    config = collector_config()
    exporters = config["exporters"]
    kubearmor = exporters["otlphttp/amtd-kubearmor"]
    assert kubearmor["endpoint"].endswith("ingest-kubearmor.amtd-system.svc.cluster.local")
    assert kubearmor["encoding"] == "proto" and kubearmor["compression"] == "none"
    assert kubearmor["headers"] == {"Authorization": "Bearer ${env:AMTD_INGEST_TOKEN}"}
    assert exporters["otlphttp/amtd-falco"]["encoding"] == "json"
    operators = config["receivers"]["filelog/kubearmor"]["operators"]
    assert [operator["type"] for operator in operators] == ["container", "json_parser"]
    assert operators[1]["parse_to"] == "body"  # a kvlist body, as test_each_encoding... sends
    pipelines = config["service"]["pipelines"]
    assert pipelines["logs/kubearmor"]["exporters"] == ["otlphttp/amtd-kubearmor"]
    assert "k8sattributes" not in json.dumps(pipelines)  # the resource would be the tool's pod
