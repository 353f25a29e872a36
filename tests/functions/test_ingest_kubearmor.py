"""ingest-kubearmor against the API server stand-in (official client over HTTP, no mocks).

One alert, a JSON array, NDJSON, back-to-back objects, ``log``-wrapped lines (string or object)
and CloudEvents; batches are answered per item (created / duplicate / ignored / rejected).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from amtd.kube.api import Cluster
from support.builders import KUBEARMOR_ALERT, kubearmor_alert
from support.cloudevents import as_binary, as_structured
from support.functions import load_function_client
from support.ingesting import TOKEN, bearer, expect_token, security_events
from support.standins import open_world

USER = "ingest-kubearmor"
EXPECTED_SPEC = {
    "targets": ["shop/cart-6b8f7d9c4-hx2lp"],
    "rule": {
        "type": "block-pkg-mgmt-tools-exec",
        "threatLevel": "1",
        "source": "KubeArmorIntegrator",
        "operation": "Process",
        "node": "worker-2",
        "tags": "NIST,NIST_800-53_CM-7",
    },
    "description": "package manager execution blocked "
    "(Process /usr/bin/apt update; Block: Permission denied)",
}


# Fluent Bit tailing the relay's container log (CRI): each line of the relay's own zap logger
# (JSON, on stderr) arrives beside the alerts, wrapped like them in "log".
RELAY_LOG_RECORD = {
    "date": 1741943600.61,
    "time": "2025-03-14T09:13:20.610512345Z",
    "stream": "stderr",
    "_p": "F",
    "log": '{"level":"info","ts":"2025-03-14 09:13:20.610512",'
    '"caller":"server/relayServer.go:412","msg":"Connected to KubeArmor (10.0.2.7:32767)"}',
    "kubernetes": {"pod_name": "kubearmor-relay-5f9c7d8b6-qw2xz", "namespace_name": "kubearmor"},
}
RELAY_TEXT_RECORD = {**RELAY_LOG_RECORD, "log": "goroutine 1 [running]:\n"}


@pytest.fixture(scope="module")
def kubearmor() -> FlaskClient:
    """The function in-process."""
    return load_function_client("ingest-kubearmor")


@pytest.fixture
def cluster(apiserver: Any, kubeconfig: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    """CRDs installed; the function connects as ``ingest-kubearmor`` and expects TOKEN."""
    expect_token(monkeypatch)
    with open_world(apiserver, kubeconfig, USER, monkeypatch) as own:
        yield own


def post(client: FlaskClient, body: bytes | str, content_type: str = "application/json") -> Any:
    """POST a body with the right token."""
    return client.post("/", data=body, content_type=content_type, headers=bearer())


def pod_alert(pod: str, **changes: Any) -> dict[str, Any]:
    """The §4.4 alert about another pod."""
    return kubearmor_alert(PodName=pod, **changes)


def test_one_alert_creates_a_phoenix_compatible_event(
    kubearmor: FlaskClient, cluster: Cluster
) -> None:
    response = post(kubearmor, json.dumps(KUBEARMOR_ALERT))
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert body["result"] == "created" and body["name"].startswith("kubearmor-cart-")
    (event,) = security_events(cluster)
    assert event["spec"] == EXPECTED_SPEC
    assert event["metadata"]["annotations"]["amtd.r6security.com/alert-time"] == (
        "2025-03-14T09:13:20Z"
    )


def test_a_json_array_is_answered_per_item(kubearmor: FlaskClient, cluster: Cluster) -> None:
    batch = [pod_alert("a"), pod_alert("b"), pod_alert("a")]
    response = post(kubearmor, json.dumps(batch))
    assert response.status_code == 200
    body = response.get_json()
    assert [item["result"] for item in body["results"]] == ["created", "created", "duplicate"]
    assert [item["label"] for item in body["results"]] == ["[0]", "[1]", "[2]"]
    assert body["counts"]["created"] == 2 and body["counts"]["duplicate"] == 1
    assert response.headers["X-Amtd-Result"].startswith("created=2,duplicate=1")
    assert [e["spec"]["targets"] for e in security_events(cluster)] in (
        [["shop/a"], ["shop/b"]], [["shop/b"], ["shop/a"]],
    )  # fmt: skip


@pytest.mark.parametrize("content_type", ["application/x-ndjson", "application/json"])
def test_ndjson_lines_from_fluent_bit(
    kubearmor: FlaskClient, cluster: Cluster, content_type: str
) -> None:
    lines = "\n".join(json.dumps(pod_alert(name)) for name in ("a", "b", "c")) + "\n"
    response = post(kubearmor, lines, content_type)
    assert response.status_code == 200
    assert response.get_json()["counts"]["created"] == 3
    assert len(security_events(cluster)) == 3


def test_back_to_back_objects_from_json_stream(kubearmor: FlaskClient, cluster: Cluster) -> None:
    stream = "".join(json.dumps(pod_alert(name)) for name in ("a", "b"))
    response = post(kubearmor, stream)
    assert response.status_code == 200
    assert [item["result"] for item in response.get_json()["results"]] == ["created", "created"]


def test_log_wrapped_alerts_as_string_or_object(kubearmor: FlaskClient, cluster: Cluster) -> None:
    records = [
        {"date": 1741943600.51, "log": json.dumps(pod_alert("a")) + "\n", "stream": "stdout"},
        {"date": 1741943600.52, "log": pod_alert("b")},
        {"body": json.dumps(pod_alert("c"))},  # an OTel filelog record
    ]
    response = post(kubearmor, json.dumps(records))
    assert response.status_code == 200
    assert [item["result"] for item in response.get_json()["results"]] == ["created"] * 3
    assert sorted(e["spec"]["targets"][0] for e in security_events(cluster)) == [
        "shop/a", "shop/b", "shop/c",
    ]  # fmt: skip


def test_a_mixed_batch_answers_every_item(kubearmor: FlaskClient, cluster: Cluster) -> None:
    lines = [
        json.dumps(pod_alert("good")),
        "{not json",
        json.dumps(pod_alert("Bad_Name")),
        json.dumps(kubearmor_alert(Type="MatchedHostPolicy", PodName=None, NamespaceName=None)),
        json.dumps(kubearmor_alert(Type="SystemEvent", PolicyName=None)),
        json.dumps(pod_alert("sev", Severity="11")),
        json.dumps(pod_alert("nopolicy", PolicyName=None)),
        json.dumps([1, 2]),
        json.dumps(pod_alert("good")),
    ]
    response = post(kubearmor, "\n".join(lines), "application/x-ndjson")
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert [(item["label"], item["result"], item.get("field", "")) for item in results] == [
        ("line 1", "created", ""),
        ("line 2", "rejected", "line 2"),
        ("line 3", "rejected", "PodName"),
        ("line 4", "ignored", ""),
        ("line 5", "ignored", ""),
        ("line 6", "rejected", "Severity"),
        ("line 7", "rejected", "PolicyName"),
        ("line 8", "rejected", "item"),
        ("line 9", "duplicate", ""),
    ]
    assert "pod" in results[3]["reason"] and "SystemEvent" in results[4]["reason"]
    assert [e["spec"]["targets"] for e in security_events(cluster)] == [["shop/good"]]


def test_other_alert_types_can_be_admitted(
    kubearmor: FlaskClient, cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBEARMOR_EXTRA_TYPES", "SystemEvent")
    alert = kubearmor_alert(Type="SystemEvent", PolicyName=None, Operation="AlertThreshold")
    response = post(kubearmor, json.dumps(alert))
    assert response.status_code == 201
    assert security_events(cluster)[0]["spec"]["rule"]["type"] == "SystemEvent"


def test_a_batch_of_only_bad_items_is_400(kubearmor: FlaskClient, cluster: Cluster) -> None:
    response = post(kubearmor, json.dumps([pod_alert("X"), {"Type": 5}]))
    assert response.status_code == 400
    assert [item["result"] for item in response.get_json()["results"]] == ["rejected"] * 2


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"NamespaceName": "Shop"}, "NamespaceName"),
        ({"PodName": "../x"}, "PodName"),
        ({"Severity": "high"}, "Severity"),
        ({"Type": None}, "Type"),
        ({"Timestamp": "yesterday"}, "Timestamp"),
        ({"Timestamp": 1e300}, "Timestamp"),
        ({"Message": ["x"]}, "Message"),
        ({"PolicyName": {"name": "x"}}, "PolicyName"),
    ],
)
def test_one_bad_alert_is_400_naming_the_field(
    kubearmor: FlaskClient, cluster: Cluster, changes: dict[str, Any], field: str
) -> None:
    response = post(kubearmor, json.dumps(kubearmor_alert(**changes)))
    assert response.status_code == 400
    assert response.get_json()["detail"].startswith(f"{field}: ")
    assert security_events(cluster) == []


def test_cloudevents_get_no_body_and_the_counts_in_a_header(
    kubearmor: FlaskClient, cluster: Cluster
) -> None:
    attributes = {"type": "com.kubearmor.alert", "source": "/kubearmor/relay", "id": "k1",
                  "datacontenttype": "application/json", "amtdtoken": TOKEN}  # fmt: skip
    headers, body = as_binary(attributes, KUBEARMOR_ALERT)
    single = kubearmor.post("/", data=body, headers=headers)
    assert single.status_code == 202 and single.get_data() == b""
    headers, body = as_structured({**attributes, "id": "k2"}, [pod_alert("a"), KUBEARMOR_ALERT])
    batch = kubearmor.post("/", data=body, headers=headers)
    assert batch.status_code == 202 and batch.get_data() == b""
    assert batch.headers["X-Amtd-Result"].startswith("created=1,duplicate=1")
    assert len(security_events(cluster)) == 2


def test_same_alert_at_another_time_is_a_new_event(
    kubearmor: FlaskClient, cluster: Cluster
) -> None:
    later = kubearmor_alert(Timestamp=KUBEARMOR_ALERT["Timestamp"] + 120)
    response = post(kubearmor, json.dumps([KUBEARMOR_ALERT, later]))
    assert [item["result"] for item in response.get_json()["results"]] == ["created", "created"]


def test_too_many_items_are_413(kubearmor: FlaskClient, cluster: Cluster) -> None:
    response = post(kubearmor, json.dumps([{}] * 501))
    assert response.status_code == 413
    assert security_events(cluster) == []


def test_unauthenticated_batches_create_nothing(kubearmor: FlaskClient, cluster: Cluster) -> None:
    response = kubearmor.post("/", data=json.dumps([KUBEARMOR_ALERT]),
                              content_type="application/json")  # fmt: skip
    assert response.status_code == 401
    assert security_events(cluster) == []


def test_transient_failure_of_one_item_makes_the_batch_503(
    kubearmor: FlaskClient, cluster: Cluster, apiserver: Any
) -> None:
    apiserver.inject_faults(
        1.0, statuses=(503,), match=lambda r: r.user == USER and r.verb == "create"
    )
    response = post(kubearmor, json.dumps([pod_alert("a"), pod_alert("b")]))
    assert response.status_code == 503
    assert response.get_json()["counts"]["failed"] == 2
    apiserver.clear_faults()
    retried = post(kubearmor, json.dumps([pod_alert("a"), pod_alert("b")]))
    assert retried.status_code == 200 and retried.get_json()["counts"]["created"] == 2


@pytest.mark.parametrize("content_type", ["text/plain", "application/msgpack"])
def test_other_content_types_are_415(
    kubearmor: FlaskClient, cluster: Cluster, content_type: str
) -> None:
    assert post(kubearmor, json.dumps(KUBEARMOR_ALERT), content_type).status_code == 415


SURROGATE = "\ud800"  # valid JSON ("\\ud800"), but no UTF-8 can encode it


@pytest.mark.parametrize(
    ("framing", "content_type"),
    [("array", "application/json"), ("lines", "application/x-ndjson"),
     ("stream", "application/json"), ("wrapped", "application/json")],
)  # fmt: skip
def test_an_unencodable_string_rejects_only_its_item(
    kubearmor: FlaskClient, cluster: Cluster, framing: str, content_type: str
) -> None:
    items = [pod_alert("before"), pod_alert("bad", PolicyName=f"x{SURROGATE}y"), pod_alert("after")]
    texts = [json.dumps(item) for item in items]
    body = {
        "array": json.dumps(items),
        "lines": "\n".join(texts),
        "stream": "".join(texts),
        "wrapped": json.dumps([{"log": text} for text in texts]),
    }[framing]
    response = post(kubearmor, body, content_type)
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert [item["result"] for item in results] == ["created", "rejected", "created"]
    assert results[1]["field"] == "PolicyName" and "lone surrogate" in results[1]["detail"]
    assert sorted(e["spec"]["targets"][0] for e in security_events(cluster)) == [
        "shop/after", "shop/before",
    ]  # fmt: skip


def test_an_unencodable_key_or_single_alert_is_400(
    kubearmor: FlaskClient, cluster: Cluster
) -> None:
    single = post(kubearmor, json.dumps(pod_alert("a", Message=f"{SURROGATE}")))
    assert single.status_code == 400
    assert single.get_json()["detail"].startswith("Message: is not valid Unicode")
    keyed = post(kubearmor, json.dumps({**pod_alert("b"), f"k{SURROGATE}": "v"}))
    assert keyed.status_code == 400 and keyed.get_json()["detail"].startswith("k\\ud800: ")
    assert security_events(cluster) == []


def test_an_unencodable_cloudevent_attribute_is_400_its_batch_items_one_by_one(
    kubearmor: FlaskClient, cluster: Cluster
) -> None:
    attributes = {"type": "com.kubearmor.alert", "source": "/kubearmor/relay", "id": "k3",
                  "datacontenttype": "application/json", "amtdtoken": TOKEN}  # fmt: skip
    bad_item = pod_alert("bad", Resource=SURROGATE)
    headers, body = as_structured(attributes, [pod_alert("a"), bad_item])
    batch = kubearmor.post("/", data=body, headers=headers)
    assert batch.status_code == 202
    assert batch.headers["X-Amtd-Result"] == "created=1,duplicate=0,ignored=0,rejected=1,failed=0"
    headers, body = as_structured({**attributes, "id": "k4", "subject": SURROGATE}, [])
    refused = kubearmor.post("/", data=body, headers={**headers, **bearer()})
    assert refused.status_code == 400 and refused.get_json()["detail"].startswith("subject: ")
    assert [e["spec"]["targets"] for e in security_events(cluster)] == [["shop/a"]]


@pytest.mark.parametrize("content_type", ["application/json", "application/x-ndjson"])
def test_a_chunk_of_only_relay_log_lines_is_acknowledged_and_ignored(
    kubearmor: FlaskClient, cluster: Cluster, apiserver: Any, content_type: str
) -> None:
    records = [RELAY_LOG_RECORD, RELAY_TEXT_RECORD, json.loads(RELAY_LOG_RECORD["log"])]
    body = (
        json.dumps(records) if content_type == "application/json"
        else "\n".join(json.dumps(record) for record in records)
    )  # fmt: skip
    response = post(kubearmor, body, content_type)
    assert response.status_code == 200, response.get_data(as_text=True)
    results = response.get_json()["results"]
    assert [item["result"] for item in results] == ["ignored"] * 3
    assert all("not" in item["reason"] and "alert" in item["reason"] for item in results)
    assert [r for r in apiserver.requests if r.user == USER] == []  # nothing to ask the API


def test_relay_log_lines_beside_alerts_leave_the_alerts_alone(
    kubearmor: FlaskClient, cluster: Cluster
) -> None:
    alert_record = {**RELAY_LOG_RECORD, "stream": "stdout", "log": json.dumps(pod_alert("a"))}
    records = [RELAY_LOG_RECORD, alert_record, RELAY_TEXT_RECORD]
    response = post(kubearmor, "\n".join(json.dumps(r) for r in records), "application/x-ndjson")
    assert response.status_code == 200
    assert response.headers["X-Amtd-Result"] == (
        "created=1,duplicate=0,ignored=2,rejected=0,failed=0"
    )
    assert [e["spec"]["targets"] for e in security_events(cluster)] == [["shop/a"]]


def test_a_single_relay_log_line_is_ignored_not_400(
    kubearmor: FlaskClient, cluster: Cluster
) -> None:
    for record in (RELAY_LOG_RECORD, RELAY_TEXT_RECORD):
        response = post(kubearmor, json.dumps(record))
        assert response.status_code == 200 and response.get_json()["result"] == "ignored"
    assert security_events(cluster) == []


def test_an_unencodable_wrapped_line_is_still_rejected(
    kubearmor: FlaskClient, cluster: Cluster
) -> None:
    record = {**RELAY_LOG_RECORD, "log": '{"level": "info", "msg": "\\ud800"}'}
    response = post(kubearmor, json.dumps([record, pod_alert("a")]))
    assert response.status_code == 200
    assert [item["result"] for item in response.get_json()["results"]] == ["rejected", "created"]


@pytest.mark.parametrize(
    "changes",
    [{"NamespaceName": "container_namespace", "PodName": "nginx"},
     {"NamespaceName": "Unknown", "PodName": "Unknown"},
     {"NamespaceName": "shop", "PodName": "Unknown"}],
)  # fmt: skip
def test_kubearmor_placeholders_for_no_pod_are_ignored_not_400(
    kubearmor: FlaskClient, cluster: Cluster, changes: dict[str, Any]
) -> None:
    response = post(kubearmor, json.dumps(kubearmor_alert(**changes)))
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["result"] == "ignored" and "placeholder" in body["reason"]
    assert security_events(cluster) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [({"Tags": "b, a,,a", "ATags": ["c", "a"]}, "a,b,c"), ({"Tags": "", "ATags": None}, None),
     ({"Tags": None, "ATags": ["MITRE"]}, "MITRE"), ({"Tags": ["x", "y"], "ATags": None}, "x,y")],
)  # fmt: skip
def test_tags_and_atags_become_one_sorted_rule_value(
    kubearmor: FlaskClient, cluster: Cluster, changes: dict[str, Any], expected: str | None
) -> None:
    response = post(kubearmor, json.dumps(kubearmor_alert(**changes)))
    assert response.status_code == 201
    assert security_events(cluster)[0]["spec"]["rule"].get("tags") == expected


@pytest.mark.parametrize(
    ("changes", "field"), [({"Tags": 7}, "Tags"), ({"ATags": ["ok", {"x": 1}]}, "ATags[1]")]
)
def test_bad_tags_are_400_naming_them(
    kubearmor: FlaskClient, cluster: Cluster, changes: dict[str, Any], field: str
) -> None:
    response = post(kubearmor, json.dumps(kubearmor_alert(**changes)))
    assert response.status_code == 400
    assert response.get_json()["detail"].startswith(f"{field}: ")
