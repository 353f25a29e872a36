"""ApiServerSource against the real API stand-in, and PingSource (fired on demand)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from amtd_stack.errors import ManifestError
from amtd_stack.eventing.apiserversources import ApiServerSourceRunner, parse_apiserversource
from amtd_stack.eventing.delivering import AttemptLog
from amtd_stack.eventing.pingsources import PingSourceRunner, next_fire, parse_pingsource
from amtd_stack.eventing.sources import EmittedLog, SourceContext, make_sink_sender
from amtd_stack.manifests import Manifest
from amtd_stack.running.kubeclients import find_resource
from support.builders import SHELL_RULE, make_security_event
from support.receivers import Receiver
from support.waiting import wait_until

from .conftest import StandIn

SECURITY_EVENT = ("amtd.r6security.com/v1beta1", "SecurityEvent")
SHELL_EVENT: dict[str, Any] = {  # make_security_event's keywords: a Falco shell alert
    "targets": ["demo/web"], "rule_type": SHELL_RULE, "threat_level": "Warning",
    "source": "FalcoIntegrator", "description": "shell in container",
}  # fmt: skip


def source_manifest(kind: str, spec: dict[str, Any], name: str = "src") -> Manifest:
    """A sources.knative.dev/v1 manifest in amtd-system."""
    obj = {
        "apiVersion": "sources.knative.dev/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "amtd-system"},
        "spec": spec,
    }
    return Manifest(obj, Path("sources.yaml"))


def context_for(stand_in: StandIn, sink: Receiver) -> SourceContext:
    """A SourceContext sending to the receiver."""
    sender = make_sink_sender("source test", sink.url, AttemptLog(), threading.Event())
    return SourceContext(stand_in.kubeconfig, stand_in.server.url, sender, EmittedLog())


@pytest.fixture
def run_source(
    stand_in: StandIn,
) -> Iterator[Callable[[Manifest, Receiver], ApiServerSourceRunner]]:
    """Start ApiServerSource runners; stopped at teardown."""
    runners: list[ApiServerSourceRunner] = []

    def start(manifest: Manifest, sink: Receiver) -> ApiServerSourceRunner:
        runners.append(
            ApiServerSourceRunner(parse_apiserversource(manifest), context_for(stand_in, sink))
        )
        runners[-1].start()
        return runners[-1]

    yield start
    for runner in runners:
        runner.stop()


def test_resource_mode_emits_add_update_delete_but_not_for_existing_objects(
    stand_in: StandIn, receiver: Callable[..., Receiver], run_source: Any
) -> None:
    events = find_resource(stand_in.client, *SECURITY_EVENT)
    stand_in.client.create(events, body=make_security_event("before", **SHELL_EVENT))
    sink = receiver()
    manifest = source_manifest(
        "ApiServerSource",
        {
            "mode": "Resource",
            "serviceAccountName": "securityevents-source",
            "resources": [{"apiVersion": SECURITY_EVENT[0], "kind": SECURITY_EVENT[1]}],
            "sink": {"uri": sink.url},
            "ceOverrides": {"extensions": {"origin": "tests"}},
        },
    )
    run_source(manifest, sink)
    stand_in.client.create(events, body=make_security_event("after", **SHELL_EVENT))
    patch = {"spec": {"description": "changed"}}
    stand_in.client.patch(
        events, name="after", body=patch, content_type="application/merge-patch+json"
    )
    stand_in.client.delete(events, name="after")
    assert wait_until(lambda: len(sink.requests) == 3)
    add, update, delete = (r.headers for r in sink.requests)
    assert [h["ce-type"] for h in (add, update, delete)] == [
        "dev.knative.apiserver.resource.add",
        "dev.knative.apiserver.resource.update",
        "dev.knative.apiserver.resource.delete",
    ]
    # Knative's subject has namespaces/<ns>/ always: empty for a cluster-scoped kind
    subject = "/apis/amtd.r6security.com/v1beta1/namespaces//securityevents/after"
    assert add["ce-subject"] == subject
    assert add["ce-source"] == stand_in.server.url
    assert (add["ce-kind"], add["ce-apiversion"], add["ce-name"]) == (
        "SecurityEvent",
        "amtd.r6security.com/v1beta1",
        "after",
    )
    assert add["ce-namespace"] == ""  # cluster-scoped: present and empty
    assert add["ce-origin"] == "tests" and add["content-type"] == "application/json"
    assert len({add["ce-id"], update["ce-id"], delete["ce-id"]}) == 3
    assert json.loads(sink.requests[0].body)["spec"]["targets"] == ["demo/web"]
    assert json.loads(sink.requests[1].body)["spec"]["description"] == "changed"


def test_reference_mode_watches_own_namespace_with_label_selector(
    stand_in: StandIn, receiver: Callable[..., Receiver], run_source: Any
) -> None:
    sink = receiver()
    manifest = source_manifest(
        "ApiServerSource",
        {
            "resources": [
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "selector": {"matchLabels": {"watch": "yes"}},
                }
            ],
            "sink": {"uri": sink.url},
        },
    )
    run_source(manifest, sink)
    config_maps = find_resource(stand_in.client, "v1", "ConfigMap")
    for namespace, name, labels in [
        ("default", "elsewhere", {"watch": "yes"}),
        ("amtd-system", "unlabelled", {}),
        ("amtd-system", "wanted", {"watch": "yes"}),
    ]:
        body = {"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}
        stand_in.client.create(config_maps, body=body, namespace=namespace)
    assert wait_until(lambda: len(sink.requests) >= 1)
    stand_in.client.delete(config_maps, name="wanted", namespace="amtd-system")
    assert wait_until(lambda: len(sink.requests) >= 2)
    add, delete = sink.requests[:2]
    assert add.headers["ce-type"] == "dev.knative.apiserver.ref.add"
    assert delete.headers["ce-type"] == "dev.knative.apiserver.ref.delete"
    assert add.headers["ce-subject"] == "/apis/v1/namespaces/amtd-system/configmaps/wanted"
    assert add.headers["ce-namespace"] == "amtd-system"
    assert json.loads(add.body) == {
        "kind": "ConfigMap",
        "namespace": "amtd-system",
        "name": "wanted",
        "apiVersion": "v1",
    }
    assert len(sink.requests) == 2


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"sink": {"uri": "http://x"}}, "spec.resources"),
        ({"resources": [{"kind": "Pod"}], "sink": {"uri": "http://x"}}, "spec.resources[0]"),
        (
            {
                "resources": [{"apiVersion": "v1", "kind": "Pod"}],
                "mode": "Full",
                "sink": {"uri": "x"},
            },
            "spec.mode",
        ),
        ({"resources": [{"apiVersion": "v1", "kind": "Pod"}]}, "spec.sink"),
        (
            {
                "resources": [{"apiVersion": "v1", "kind": "Pod"}],
                "sink": {"uri": "x"},
                "ceOverrides": {"extensions": {"Bad_Name": "x"}},
            },
            "spec.ceOverrides.extensions.Bad_Name",
        ),
    ],
)
def test_bad_apiserversources_are_refused(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_apiserversource(source_manifest("ApiServerSource", spec))
    assert caught.value.field == field and caught.value.path == "sources.yaml"


def test_pingsource_fires_on_demand(receiver: Callable[..., Receiver]) -> None:
    sink = receiver()
    manifest = source_manifest(
        "PingSource",
        {
            "schedule": "0 0 1 1 *",
            "contentType": "application/json",
            "data": '{"task": "timer"}',
            "sink": {"uri": sink.url},
            "ceOverrides": {"extensions": {"origin": "tests"}},
        },
        name="amtd-timer",
    )
    sender = make_sink_sender("ping", sink.url, AttemptLog(), threading.Event())
    emitted = EmittedLog()
    runner = PingSourceRunner(
        parse_pingsource(manifest), SourceContext(Path(), "", sender, emitted)
    )
    runner.start()
    try:
        event = runner.fire()
    finally:
        runner.stop()
    (request,) = sink.requests
    assert request.headers["ce-type"] == "dev.knative.sources.ping"
    assert request.headers["ce-source"] == "/apis/v1/namespaces/amtd-system/pingsources/amtd-timer"
    assert request.headers["ce-id"] == event["id"] and request.headers["ce-origin"] == "tests"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.body) == {"task": "timer"}
    assert [e["id"] for e in emitted.snapshot()] == [event["id"]]


def test_pingsource_data_base64_and_schedule() -> None:
    manifest = source_manifest(
        "PingSource",
        {
            "schedule": "*/5 * * * *",
            "timezone": "Europe/Budapest",
            "dataBase64": "aGk=",
            "sink": {"uri": "http://x"},
        },
    )
    ping = parse_pingsource(manifest)
    assert ping.data == b"hi"
    after = datetime(2026, 1, 1, 10, 2, tzinfo=ZoneInfo("UTC"))
    assert next_fire(ping, after) == datetime(2026, 1, 1, 11, 5, tzinfo=ZoneInfo("Europe/Budapest"))


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"schedule": "every minute", "sink": {"uri": "x"}}, "spec.schedule"),
        ({"timezone": "Mars/Olympus", "sink": {"uri": "x"}}, "spec.timezone"),
        ({"data": "a", "dataBase64": "YQ==", "sink": {"uri": "x"}}, "spec.dataBase64"),
        ({"dataBase64": "***", "sink": {"uri": "x"}}, "spec.dataBase64"),
    ],
)
def test_bad_pingsources_are_refused(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_pingsource(source_manifest("PingSource", spec))
    assert caught.value.field == field
