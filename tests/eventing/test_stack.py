"""The whole local stack on a tmp project: manifests applied, a real function process, routing."""

from __future__ import annotations

import base64
import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent

from amtd_stack.errors import ManifestError
from amtd_stack.running.cli import main, parse_env_overrides
from amtd_stack.running.kubeclients import find_resource, new_dynamic_client
from amtd_stack.running.stack import Stack
from support.receivers import Answer, Receiver, answers
from support.waiting import wait_until

ECHO_MAIN = '''
"""Echo: reply to any CloudEvent with com.example.echoed.v1 describing what arrived."""
import os

import flask
import functions_framework
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent, from_http


@functions_framework.http
def echo(request: flask.Request) -> flask.Response:
    incoming = from_http(dict(request.headers), request.get_data())
    if incoming["type"] == "com.example.echoed.v1":
        return flask.Response(status=204)
    data = {
        "got": incoming["type"],
        "greeting": os.environ.get("GREETING"),
        "override": os.environ.get("OVERRIDE"),
        "namespace": os.environ.get("AMTD_NAMESPACE"),
        "kubeconfig": os.path.basename(os.environ.get("KUBECONFIG", "")),
    }
    attributes = {"type": "com.example.echoed.v1", "source": "/echo", "id": f"e-{incoming['id']}"}
    reply = CloudEvent({**attributes, "datacontenttype": "application/json"}, data)
    headers, body = to_binary(reply)
    return flask.Response(body, status=200, headers=headers)
'''

ECHO_FUNC = """
specVersion: 0.36.0
name: echo
runtime: python
run:
  envs:
    - {name: FUNCTION_TARGET, value: echo}
    - {name: GREETING, value: "{{ secret:echo-secret:greeting }}"}
    - {name: OVERRIDE, value: from-func-yaml}
deploy: {namespace: amtd-system, serviceAccountName: echo-sa}
"""


def manifests(receiver_url: str) -> str:
    """The tmp project's knative objects; echoed replies go to the test receiver."""
    greeting = base64.b64encode(b"hello from a secret").decode()
    return textwrap.dedent(f"""
    apiVersion: v1
    kind: Namespace
    metadata: {{name: amtd-system}}
    ---
    apiVersion: v1
    kind: Secret
    metadata: {{name: echo-secret, namespace: amtd-system}}
    data: {{greeting: {greeting}}}
    ---
    apiVersion: eventing.knative.dev/v1
    kind: Broker
    metadata: {{name: default, namespace: amtd-system}}
    spec:
      delivery: {{retry: 2, backoffPolicy: linear, backoffDelay: PT0.05S, timeout: PT10S}}
    ---
    apiVersion: eventing.knative.dev/v1
    kind: Trigger
    metadata: {{name: to-echo, namespace: amtd-system}}
    spec:
      broker: default
      filters:
        - any:
            - exact: {{type: com.example.ping.v1}}
            - exact: {{type: dev.knative.sources.ping}}
            - prefix: {{type: dev.knative.apiserver.ref.}}
      subscriber: {{ref: {{apiVersion: serving.knative.dev/v1, kind: Service, name: echo}}}}
    ---
    apiVersion: eventing.knative.dev/v1
    kind: Trigger
    metadata: {{name: echoed, namespace: amtd-system}}
    spec:
      broker: default
      filter: {{attributes: {{type: com.example.echoed.v1}}}}
      subscriber: {{uri: "{receiver_url}/echoed"}}
    ---
    apiVersion: sources.knative.dev/v1
    kind: PingSource
    metadata: {{name: clock, namespace: amtd-system}}
    spec:
      schedule: "0 0 1 1 *"
      contentType: application/json
      data: '{{"task": "timer"}}'
      sink: {{ref: {{apiVersion: eventing.knative.dev/v1, kind: Broker, name: default}}}}
    ---
    apiVersion: sources.knative.dev/v1
    kind: ApiServerSource
    metadata: {{name: configmaps, namespace: amtd-system}}
    spec:
      serviceAccountName: configmaps-source
      resources: [{{apiVersion: v1, kind: ConfigMap}}]
      sink: {{ref: {{apiVersion: eventing.knative.dev/v1, kind: Broker, name: default}}}}
    ---
    # the source's adapter lists and watches as its ServiceAccount (the stand-in enforces RBAC)
    apiVersion: v1
    kind: ServiceAccount
    metadata: {{name: configmaps-source, namespace: amtd-system}}
    ---
    apiVersion: rbac.authorization.k8s.io/v1
    kind: ClusterRole
    metadata: {{name: configmaps-source}}
    rules: [{{apiGroups: [""], resources: [configmaps], verbs: [get, list, watch]}}]
    ---
    apiVersion: rbac.authorization.k8s.io/v1
    kind: ClusterRoleBinding
    metadata: {{name: configmaps-source}}
    roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: configmaps-source}}
    subjects: [{{kind: ServiceAccount, name: configmaps-source, namespace: amtd-system}}]
    """)


def write_project(root: Path, receiver_url: str) -> Path:
    """A tmp project root with knative/ and functions/echo/."""
    (root / "knative").mkdir(parents=True)
    (root / "knative" / "kustomization.yaml").write_text("resources: [all.yaml]\n")
    (root / "knative" / "all.yaml").write_text(manifests(receiver_url))
    (root / "functions" / "echo").mkdir(parents=True)
    (root / "functions" / "echo" / "func.yaml").write_text(ECHO_FUNC)
    (root / "functions" / "echo" / "main.py").write_text(ECHO_MAIN)
    return root


@pytest.fixture(scope="module")
def echoed() -> Iterator[Receiver]:
    """Receives every com.example.echoed.v1 reply the broker routes."""
    receiver = Receiver(answers(Answer(204)))
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, echoed: Receiver) -> Iterator[Stack]:
    """The running stack on the tmp project (started once for this module)."""
    root = write_project(tmp_path_factory.mktemp("project"), echoed.url)
    overrides = {"echo": {"OVERRIDE": "from-stack"}}
    with Stack(root, tmp_path_factory.mktemp("state"), env_overrides=overrides) as running:
        yield running


def replies_for(receiver: Receiver, event_type: str) -> list[dict[str, object]]:
    """Bodies of echoed replies that answered an event of ``event_type``."""
    bodies = [json.loads(r.body) for r in list(receiver.requests)]
    return [b for b in bodies if b["got"] == event_type]


def test_endpoints_and_kubeconfig_are_written(stack: Stack) -> None:
    endpoints = json.loads(stack.endpoints_path.read_text())
    assert endpoints["broker"] == stack.broker_url() and endpoints["broker"].endswith(
        "/amtd-system/default"
    )
    assert set(endpoints["functions"]) == {"echo"}
    assert endpoints["apiserver"] == stack.apiserver.url
    client = new_dynamic_client(stack.kubeconfig)
    secrets = find_resource(client, "v1", "Secret")
    assert (
        client.get(secrets, name="echo-secret", namespace="amtd-system").metadata.name
        == "echo-secret"
    )


def test_broker_event_reaches_the_function_and_its_reply_is_routed(
    stack: Stack, echoed: Receiver
) -> None:
    event = CloudEvent(
        {
            "type": "com.example.ping.v1",
            "source": "/tests",
            "id": "p-1",
            "datacontenttype": "application/json",
        },
        {"hello": "world"},
    )
    headers, body = to_binary(event)
    assert (
        requests.post(stack.broker_url(), headers=headers, data=body, timeout=10).status_code == 202
    )
    assert wait_until(lambda: replies_for(echoed, "com.example.ping.v1") != [], 20)
    (reply,) = replies_for(echoed, "com.example.ping.v1")
    assert reply == {
        "got": "com.example.ping.v1",
        "greeting": "hello from a secret",
        "override": "from-stack",
        "namespace": "amtd-system",
        "kubeconfig": "echo-sa.yaml",
    }
    assert stack.dead_letters == []
    assert any(a.subscriber == "amtd-system/to-echo" and a.status == 200 for a in stack.attempts)


def test_fired_ping_reaches_the_function(stack: Stack, echoed: Receiver) -> None:
    event = stack.fire_ping("clock")
    assert event["type"] == "dev.knative.sources.ping"
    assert wait_until(lambda: replies_for(echoed, "dev.knative.sources.ping") != [], 20)
    assert [e["id"] for e in stack.source_events("clock")] == [event["id"]]


def test_apiserversource_event_reaches_the_function(stack: Stack, echoed: Receiver) -> None:
    client = new_dynamic_client(stack.kubeconfig)
    config_maps = find_resource(client, "v1", "ConfigMap")
    client.create(config_maps, body={"metadata": {"name": "watched"}}, namespace="amtd-system")
    assert wait_until(lambda: replies_for(echoed, "dev.knative.apiserver.ref.add") != [], 20)
    (emitted,) = stack.source_events("configmaps")
    assert emitted["subject"] == "/apis/v1/namespaces/amtd-system/configmaps/watched"


def test_unknown_service_reference_refuses_to_start_naming_the_trigger(tmp_path: Path) -> None:
    root = write_project(tmp_path / "project", "http://127.0.0.1:9")
    all_yaml = root / "knative" / "all.yaml"
    all_yaml.write_text(all_yaml.read_text().replace("name: echo}", "name: missing}"))
    stack = Stack(root, tmp_path / "state")
    with pytest.raises(ManifestError) as caught:
        stack.start()
    assert "Trigger amtd-system/to-echo" in str(caught.value) and "missing" in str(caught.value)
    assert caught.value.path == str(all_yaml)
    assert stack.apiserver is None  # refused before anything started


def test_stop_ends_the_function_process(tmp_path: Path, echoed: Receiver) -> None:
    root = write_project(tmp_path / "project", echoed.url)
    with Stack(root, tmp_path / "state") as running:
        process = running.functions["echo"]
        assert process.is_running
    assert not process.is_running
    assert running.functions == {} and running.apiserver is None


def test_cli_reports_refusal_and_parses_env_overrides(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_project(tmp_path / "project", "http://127.0.0.1:9")
    (root / "knative" / "kustomization.yaml").write_text("resources: [all.yaml]\npatches: []\n")
    assert main(["up", "--state-dir", str(tmp_path / "state"), "--root", str(root)]) == 1
    assert "patches" in capsys.readouterr().err
    assert parse_env_overrides(["A=1", "ingest-falco:AUTH=off", "B=x=y"]) == {
        "*": {"A": "1", "B": "x=y"},
        "ingest-falco": {"AUTH": "off"},
    }
    with pytest.raises(ValueError, match="NAME=VALUE"):
        parse_env_overrides(["novalue"])
