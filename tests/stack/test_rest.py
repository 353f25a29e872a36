"""REST verbs and metadata rules of the API server stand-in, through the official client."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from amtd_stack.apiserver import ApiServer

from .helpers import pod_manifest, poll, raw


def _running(core: client.CoreV1Api, name: str) -> Any:
    pod = core.read_namespaced_pod(name, "default")
    return pod if pod.status and pod.status.phase == "Running" else None


def _status(exc: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body)
    return body


def test_create_get_list_delete_pod(core: client.CoreV1Api) -> None:
    created = core.create_namespaced_pod("default", pod_manifest("p1", {"app": "a"}))
    assert created.metadata.uid and re.fullmatch(r"[0-9a-f-]{36}", created.metadata.uid)
    assert created.metadata.generation == 1
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ",
        created.metadata.creation_timestamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    fetched = core.read_namespaced_pod("p1", "default")
    assert fetched.metadata.uid == created.metadata.uid
    listed = core.list_namespaced_pod("default")
    assert [p.metadata.name for p in listed.items] == ["p1"]
    assert int(listed.metadata.resource_version) >= int(created.metadata.resource_version)
    core.delete_namespaced_pod("p1", "default")
    with pytest.raises(ApiException) as caught:
        core.read_namespaced_pod("p1", "default")
    assert caught.value.status == 404
    assert _status(caught.value)["reason"] == "NotFound"


def test_list_has_kind_and_api_version(apiserver: ApiServer) -> None:
    answer = raw(apiserver.url, "GET", "/apis/apps/v1/namespaces/default/deployments")
    assert answer.status_code == 200
    data = answer.json()
    assert data["kind"] == "DeploymentList" and data["apiVersion"] == "apps/v1"
    assert data["metadata"]["resourceVersion"].isdigit()


def test_create_twice_is_already_exists(core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "c"}, "data": {"a": "1"}})
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_config_map("default", {"metadata": {"name": "c"}})
    assert caught.value.status == 409
    assert _status(caught.value)["reason"] == "AlreadyExists"


def test_create_in_missing_namespace_is_404(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_secret("nope", {"metadata": {"name": "s"}})
    assert caught.value.status == 404
    assert "namespaces" in _status(caught.value)["message"]


def test_initial_namespaces_exist(core: client.CoreV1Api) -> None:
    names = {n.metadata.name for n in core.list_namespace().items}
    assert {"default", "kube-system", "kube-public"} <= names
    assert core.read_namespace("default").status.phase == "Active"


def test_generate_name(core: client.CoreV1Api) -> None:
    created = core.create_namespaced_pod(
        "default", {"metadata": {"generateName": "web-"}, "spec": {"containers": []}}
    )
    assert re.fullmatch(r"web-[a-z0-9]{5}", created.metadata.name)


def test_invalid_name_is_422(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_config_map("default", {"metadata": {"name": "Not_Valid"}})
    assert caught.value.status == 422
    assert _status(caught.value)["details"]["causes"][0]["field"] == "metadata.name"


def test_resource_version_increases_and_stale_update_conflicts(core: client.CoreV1Api) -> None:
    first = core.create_namespaced_config_map("default", {"metadata": {"name": "c"}})
    second = core.create_namespaced_config_map("default", {"metadata": {"name": "d"}})
    assert int(second.metadata.resource_version) > int(first.metadata.resource_version)
    first.data = {"k": "v"}
    updated = core.replace_namespaced_config_map("c", "default", first)
    assert updated.data == {"k": "v"}
    first.data = {"k": "stale"}  # still carries the old resourceVersion
    with pytest.raises(ApiException) as caught:
        core.replace_namespaced_config_map("c", "default", first)
    assert caught.value.status == 409
    assert _status(caught.value)["reason"] == "Conflict"


def test_update_missing_is_404_and_name_mismatch_is_400(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        core.replace_namespaced_config_map("x", "default", {"metadata": {"name": "x"}})
    assert caught.value.status == 404
    core.create_namespaced_config_map("default", {"metadata": {"name": "x"}})
    with pytest.raises(ApiException) as caught:
        core.replace_namespaced_config_map("x", "default", {"metadata": {"name": "y"}})
    assert caught.value.status == 400


def test_generation_follows_spec_only(apps: client.AppsV1Api) -> None:
    body = {
        "metadata": {"name": "d"},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "d"}},
            "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": []}},
        },
    }
    created = apps.create_namespaced_deployment("default", body)
    assert created.metadata.generation == 1
    labelled = apps.patch_namespaced_deployment(
        "d", "default", {"metadata": {"labels": {"x": "y"}}}
    )
    assert labelled.metadata.generation == 1
    scaled = apps.patch_namespaced_deployment(
        "d", "default", {"spec": {"replicas": 0, "paused": True}}
    )
    assert scaled.metadata.generation == 2


def test_generation_without_spec_counts_data(core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "c"}, "data": {"a": "1"}})
    relabelled = core.patch_namespaced_config_map(
        "c", "default", {"metadata": {"labels": {"l": "v"}}}
    )
    assert relabelled.metadata.generation == 1
    changed = core.patch_namespaced_config_map("c", "default", {"data": {"a": "2"}})
    assert changed.metadata.generation == 2


def test_patch_types(core: client.CoreV1Api, apiserver: ApiServer) -> None:
    data = {"a": "1", "b": "2"}
    core.create_namespaced_config_map("default", {"metadata": {"name": "c"}, "data": data})
    merged = core.patch_namespaced_config_map("c", "default", {"data": {"a": None, "c": "3"}})
    assert merged.data == {"b": "2", "c": "3"}
    ops = [
        {"op": "replace", "path": "/data/b", "value": "20"},
        {"op": "add", "path": "/data/d", "value": "4"},
    ]
    patched = core.patch_namespaced_config_map("c", "default", ops)  # a list goes as JSON patch
    assert patched.data == {"b": "20", "c": "3", "d": "4"}
    path = "/api/v1/namespaces/default/configmaps/c"
    body = {"data": {"e": "5"}}
    smp = raw(apiserver.url, "PATCH", path, body, "application/strategic-merge-patch+json")
    assert smp.status_code == 200
    assert core.read_namespaced_config_map("c", "default").data["e"] == "5"
    refused = raw(apiserver.url, "PATCH", path, body, "text/plain")
    assert refused.status_code == 415
    assert refused.json()["reason"] == "UnsupportedMediaType"
    bogus = [{"op": "bogus", "path": "/x"}]
    answer = raw(apiserver.url, "PATCH", path, bogus, "application/json-patch+json")
    assert answer.status_code == 400 and answer.json()["kind"] == "Status"


def test_patch_with_stale_resource_version_conflicts(core: client.CoreV1Api) -> None:
    created = core.create_namespaced_config_map("default", {"metadata": {"name": "c"}})
    core.patch_namespaced_config_map("c", "default", {"data": {"a": "1"}})
    stale = {"metadata": {"resourceVersion": created.metadata.resource_version}, "data": {"a": "2"}}
    with pytest.raises(ApiException) as caught:
        core.patch_namespaced_config_map("c", "default", stale)
    assert caught.value.status == 409


def test_finalizers_delay_deletion_until_removed(core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map(
        "default", {"metadata": {"name": "c", "finalizers": ["example.com/keep"]}}
    )
    core.delete_namespaced_config_map("c", "default")
    pending = core.read_namespaced_config_map("c", "default")
    assert pending.metadata.deletion_timestamp is not None
    core.patch_namespaced_config_map("c", "default", {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as caught:
        core.read_namespaced_config_map("c", "default")
    assert caught.value.status == 404


def test_wrong_scope_is_404(apiserver: ApiServer) -> None:
    for path in (
        "/api/v1/namespaces/default/nodes",
        "/api/v1/pods/x",
        "/apis/rbac.authorization.k8s.io/v1/namespaces/default/clusterroles",
        "/api/v1/nonsense",
    ):
        answer = raw(apiserver.url, "GET", path)
        assert answer.status_code == 404, path
        assert answer.json()["reason"] == "NotFound"


def test_cluster_scoped_and_rbac_resources(api_client: client.ApiClient) -> None:
    rbac = client.RbacAuthorizationV1Api(api_client)
    role = {
        "metadata": {"name": "system:reader"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
    }
    rbac.create_cluster_role(role)
    rbac.create_namespaced_role("default", {**role, "metadata": {"name": "r"}})
    assert [r.metadata.name for r in rbac.list_cluster_role().items] == ["system:reader"]
    assert rbac.read_namespaced_role("r", "default").rules[0].verbs == ["get"]
    netpol = client.NetworkingV1Api(api_client)
    netpol.create_namespaced_network_policy(
        "default", {"metadata": {"name": "deny"}, "spec": {"podSelector": {}}}
    )
    assert netpol.read_namespaced_network_policy("deny", "default").metadata.namespace == "default"


def test_list_across_namespaces(core: client.CoreV1Api) -> None:
    core.create_namespace({"metadata": {"name": "other"}})
    core.create_namespaced_service_account("default", {"metadata": {"name": "a"}})
    core.create_namespaced_service_account("other", {"metadata": {"name": "b"}})
    everywhere = core.list_service_account_for_all_namespaces()
    assert sorted((s.metadata.namespace, s.metadata.name) for s in everywhere.items) == [
        ("default", "a"),
        ("other", "b"),
    ]


def test_delete_collection(core: client.CoreV1Api) -> None:
    for name, tier in (("a", "x"), ("b", "x"), ("c", "y")):
        core.create_namespaced_config_map(
            "default", {"metadata": {"name": name, "labels": {"tier": tier}}}
        )
    core.delete_collection_namespaced_config_map("default", label_selector="tier=x")
    assert [c.metadata.name for c in core.list_namespaced_config_map("default").items] == ["c"]


def test_status_writes_to_main_resource_are_ignored(core: client.CoreV1Api) -> None:
    core.create_namespaced_pod("default", pod_manifest("p"))
    before = poll(lambda: _running(core, "p"))
    patched = core.patch_namespaced_pod("p", "default", {"status": {"phase": "Failed"}})
    assert patched.status.phase == before.status.phase
    via_status = core.patch_namespaced_pod_status("p", "default", {"status": {"phase": "Failed"}})
    assert via_status.status.phase == "Failed"
    assert via_status.metadata.generation == before.metadata.generation
