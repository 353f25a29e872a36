"""Label/field selectors and watch streams, through the official client."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from amtd_stack.apiserver import ApiServer

from .helpers import pod_manifest, raw


def _names(items: list[Any]) -> list[str]:
    return sorted(i.metadata.name for i in items)


@pytest.fixture
def labelled_maps(core: client.CoreV1Api) -> None:
    for name, labels in (
        ("a", {"app": "web", "tier": "front"}),
        ("b", {"app": "web", "tier": "back"}),
        ("c", {"app": "db"}),
        ("d", {}),
    ):
        core.create_namespaced_config_map("default", {"metadata": {"name": name, "labels": labels}})


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=web", ["a", "b"]),
        ("app==web", ["a", "b"]),
        ("app!=web", ["c", "d"]),
        ("tier in (front, back)", ["a", "b"]),
        ("tier notin (front)", ["b", "c", "d"]),
        ("tier", ["a", "b"]),
        ("!tier", ["c", "d"]),
        ("app=web,tier!=front", ["b"]),
        ("", ["a", "b", "c", "d"]),
    ],
)
def test_label_selectors(
    core: client.CoreV1Api, labelled_maps: None, selector: str, expected: list[str]
) -> None:
    found = core.list_namespaced_config_map("default", label_selector=selector)
    assert _names(found.items) == expected


def test_bad_label_selector_is_400(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        core.list_namespaced_config_map("default", label_selector="a in b")
    assert caught.value.status == 400


def test_field_selectors(core: client.CoreV1Api) -> None:
    core.create_namespace({"metadata": {"name": "other"}})
    core.create_namespaced_pod("default", pod_manifest("p1"))
    core.create_namespaced_pod("other", pod_manifest("p2"))
    by_name = core.list_pod_for_all_namespaces(field_selector="metadata.name=p2")
    assert _names(by_name.items) == ["p2"]
    by_ns = core.list_pod_for_all_namespaces(field_selector="metadata.namespace!=other")
    assert _names(by_ns.items) == ["p1"]
    with pytest.raises(ApiException) as caught:
        core.list_pod_for_all_namespaces(field_selector="spec.bogus=1")
    assert caught.value.status == 400


def test_field_selectors_on_pod_status_and_node(core: client.CoreV1Api) -> None:
    status = {"phase": "Succeeded"}
    core.create_namespaced_pod("default", {**pod_manifest("done"), "status": status})
    core.create_namespaced_pod("default", {**pod_manifest("bound"), "status": {"phase": "Pending"}})
    core.patch_namespaced_pod("bound", "default", {"spec": {"nodeName": "node-9"}})
    done = core.list_namespaced_pod("default", field_selector="status.phase=Succeeded")
    assert _names(done.items) == ["done"]
    on_node = core.list_namespaced_pod("default", field_selector="spec.nodeName=node-9")
    assert _names(on_node.items) == ["bound"]


def test_event_field_selectors(core: client.CoreV1Api) -> None:
    for name, obj in (("e1", "cart"), ("e2", "shop")):
        core.create_namespaced_event(
            "default",
            {
                "metadata": {"name": name},
                "involvedObject": {"kind": "Pod", "name": obj, "namespace": "default", "uid": "u1"},
                "reason": "Killing",
                "message": "m",
            },
        )
    selector = "involvedObject.kind=Pod,involvedObject.name=cart,involvedObject.namespace=default"
    assert _names(core.list_namespaced_event("default", field_selector=selector).items) == ["e1"]
    by_uid = core.list_namespaced_event("default", field_selector="involvedObject.uid=u1")
    assert len(by_uid.items) == 2


def _collect(stream: Any, until: int) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    for event in stream:
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) >= until:
            break
    return seen


def test_watch_sees_added_modified_deleted(core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "old"}})
    watcher = watch.Watch()
    stream = watcher.stream(core.list_namespaced_config_map, "default", timeout_seconds=20)
    first = next(stream)
    assert (first["type"], first["object"].metadata.name) == ("ADDED", "old")

    def act() -> None:
        core.create_namespaced_config_map("default", {"metadata": {"name": "new"}})
        core.patch_namespaced_config_map("new", "default", {"data": {"k": "v"}})
        core.delete_namespaced_config_map("new", "default")

    worker = threading.Thread(target=act)
    worker.start()
    seen = _collect(stream, 3)
    watcher.stop()
    worker.join()
    assert seen == [("ADDED", "new"), ("MODIFIED", "new"), ("DELETED", "new")]


def test_watch_from_resource_version_replays_later_events(core: client.CoreV1Api) -> None:
    first = core.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
    core.create_namespaced_config_map("default", {"metadata": {"name": "b"}})
    watcher = watch.Watch()
    stream = watcher.stream(
        core.list_namespaced_config_map,
        "default",
        resource_version=first.metadata.resource_version,
        timeout_seconds=20,
    )
    assert _collect(stream, 1) == [("ADDED", "b")]
    watcher.stop()


def test_watch_with_selector_reports_transitions(core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "m", "labels": {"on": "1"}}})
    watcher = watch.Watch()
    stream = watcher.stream(
        core.list_namespaced_config_map, "default", label_selector="on=1", timeout_seconds=20
    )
    assert _collect(stream, 1) == [("ADDED", "m")]
    core.patch_namespaced_config_map("m", "default", {"metadata": {"labels": {"on": "0"}}})
    core.patch_namespaced_config_map("m", "default", {"metadata": {"labels": {"on": "1"}}})
    assert _collect(stream, 2) == [("DELETED", "m"), ("ADDED", "m")]
    watcher.stop()


def test_watch_timeout_ends_stream(core: client.CoreV1Api) -> None:
    events = list(watch.Watch().stream(core.list_namespaced_secret, "default", timeout_seconds=1))
    assert events == []


def test_too_old_resource_version_is_410(apiserver: ApiServer, core: client.CoreV1Api) -> None:
    apiserver.store.history_limit = 2  # a small window, outrun quickly
    for i in range(8):
        core.create_namespaced_config_map("default", {"metadata": {"name": f"c{i}"}})
    path = "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=1&timeoutSeconds=5"
    answer = raw(apiserver.url, "GET", path)
    event = answer.json()
    assert event["type"] == "ERROR"
    assert event["object"]["code"] == 410
    with pytest.raises(ApiException) as caught:
        list(
            watch.Watch().stream(
                core.list_namespaced_config_map, "default", resource_version="1", timeout_seconds=5
            )
        )
    assert caught.value.status == 410


def test_watch_ends_cleanly_when_server_stops(tmp_path: Path) -> None:
    from kubernetes import config

    from amtd_stack.apiserver import start_apiserver

    server = start_apiserver()
    api = config.new_client_from_config(config_file=str(server.write_kubeconfig(tmp_path / "kc")))
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map("default", {"metadata": {"name": "c"}})
    stream = watch.Watch().stream(core.list_namespaced_config_map, "default", timeout_seconds=60)
    assert next(stream)["type"] == "ADDED"  # connected
    finished = threading.Event()

    def drain() -> None:
        for _ in stream:
            pass
        finished.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    server.stop()
    assert finished.wait(15)
    api.close()
