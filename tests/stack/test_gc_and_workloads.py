"""Garbage collection, namespace termination and workload emulation (polling with deadlines)."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from .helpers import pod_manifest, poll


def _exists(read: Any, *args: Any) -> bool:
    try:
        read(*args)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def _owned_map(core: client.CoreV1Api, name: str, owner: Any) -> None:
    ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": owner.metadata.name,
        "uid": owner.metadata.uid,
    }
    core.create_namespaced_config_map(
        "default", {"metadata": {"name": name, "ownerReferences": [ref]}}
    )


def test_dependents_of_deleted_owner_are_collected(core: client.CoreV1Api) -> None:
    owner = core.create_namespaced_config_map("default", {"metadata": {"name": "owner"}})
    _owned_map(core, "child", owner)
    core.delete_namespaced_config_map("owner", "default")
    poll(lambda: not _exists(core.read_namespaced_config_map, "child", "default"))


def test_object_with_one_live_owner_survives(core: client.CoreV1Api) -> None:
    first = core.create_namespaced_config_map("default", {"metadata": {"name": "o1"}})
    second = core.create_namespaced_config_map("default", {"metadata": {"name": "o2"}})
    refs = [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": o.metadata.name, "uid": o.metadata.uid}
        for o in (first, second)
    ]
    core.create_namespaced_config_map(
        "default", {"metadata": {"name": "c", "ownerReferences": refs}}
    )
    core.delete_namespaced_config_map("o1", "default")
    _owned_map(core, "probe", first)  # owner already gone: collected, proves the sweep ran
    poll(lambda: not _exists(core.read_namespaced_config_map, "probe", "default"))
    assert _exists(core.read_namespaced_config_map, "c", "default")


def test_orphan_propagation_keeps_dependents(core: client.CoreV1Api) -> None:
    owner = core.create_namespaced_config_map("default", {"metadata": {"name": "owner"}})
    _owned_map(core, "child", owner)
    core.delete_namespaced_config_map("owner", "default", propagation_policy="Orphan")
    poll(lambda: not _exists(core.read_namespaced_config_map, "owner", "default"))
    child = core.read_namespaced_config_map("child", "default")
    assert not child.metadata.owner_references


def test_foreground_deletes_dependents_first(core: client.CoreV1Api) -> None:
    owner = core.create_namespaced_config_map("default", {"metadata": {"name": "owner"}})
    _owned_map(core, "child", owner)
    answer = core.delete_namespaced_config_map("owner", "default", propagation_policy="Foreground")
    assert answer["metadata"]["deletionTimestamp"]  # still there, waiting for its dependents
    poll(lambda: not _exists(core.read_namespaced_config_map, "owner", "default"))
    assert not _exists(core.read_namespaced_config_map, "child", "default")


def test_namespace_deletion_removes_content(core: client.CoreV1Api) -> None:
    core.create_namespace({"metadata": {"name": "gone"}})
    core.create_namespaced_secret("gone", {"metadata": {"name": "s"}})
    core.delete_namespace("gone")
    poll(lambda: not _exists(core.read_namespace, "gone"))
    assert core.list_namespaced_secret("gone").items == []
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_secret("gone", {"metadata": {"name": "s"}})
    assert caught.value.status == 404


def _running_pods(core: client.CoreV1Api, selector: str) -> list[Any]:
    pods = core.list_namespaced_pod("default", label_selector=selector).items
    return [p for p in pods if p.status and p.status.phase == "Running"]


def _deployment(replicas: int = 2) -> dict[str, Any]:
    return {
        "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web", "mtdSecured": "true"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx"}]},
            },
        },
    }


def test_deployment_runs_pods(core: client.CoreV1Api, apps: client.AppsV1Api) -> None:
    deployment = apps.create_namespaced_deployment("default", _deployment())
    pods = poll(lambda: len(_running_pods(core, "app=web")) == 2 and _running_pods(core, "app=web"))
    replicasets = apps.list_namespaced_replica_set("default").items
    assert len(replicasets) == 1
    rs = replicasets[0]
    pod_hash = rs.metadata.labels["pod-template-hash"]
    assert rs.metadata.name == f"web-{pod_hash}" and len(pod_hash) == 10
    assert rs.metadata.owner_references[0].uid == deployment.metadata.uid
    for pod in pods:
        assert pod.metadata.name.startswith(f"{rs.metadata.name}-")
        assert pod.metadata.labels == {
            "app": "web",
            "mtdSecured": "true",
            "pod-template-hash": pod_hash,
        }
        assert pod.metadata.owner_references[0].uid == rs.metadata.uid
        assert pod.metadata.owner_references[0].controller is True
        assert pod.spec.node_name == "node-1" and pod.status.pod_ip
        assert any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions)
    status = poll(lambda: _ready_status(apps))
    assert (status.replicas, status.ready_replicas, status.available_replicas) == (2, 2, 2)


def _ready_status(apps: client.AppsV1Api) -> Any:
    status = apps.read_namespaced_deployment("web", "default").status
    return status if status and status.ready_replicas == 2 else None


def test_deleted_pod_is_replaced(core: client.CoreV1Api, apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment("default", _deployment())
    pods = poll(lambda: len(_running_pods(core, "app=web")) == 2 and _running_pods(core, "app=web"))
    victim = pods[0].metadata.name
    core.delete_namespaced_pod(victim, "default")

    def replaced() -> bool:
        names = {p.metadata.name for p in _running_pods(core, "app=web")}
        return len(names) == 2 and victim not in names

    poll(replaced)


def test_relabelled_pod_is_orphaned_and_replaced(
    core: client.CoreV1Api, apps: client.AppsV1Api
) -> None:
    apps.create_namespaced_deployment("default", _deployment())
    pods = poll(lambda: len(_running_pods(core, "app=web")) == 2 and _running_pods(core, "app=web"))
    quarantined = pods[0].metadata.name
    core.patch_namespaced_pod(
        quarantined, "default", {"metadata": {"labels": {"app": None, "quarantine": "true"}}}
    )
    poll(lambda: not core.read_namespaced_pod(quarantined, "default").metadata.owner_references)
    poll(lambda: len(_running_pods(core, "app=web")) == 2)
    assert core.read_namespaced_pod(quarantined, "default").status.phase == "Running"


def test_scaling_and_deleting_a_deployment(core: client.CoreV1Api, apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment("default", _deployment(3))
    poll(lambda: len(_running_pods(core, "app=web")) == 3)
    apps.patch_namespaced_deployment("web", "default", {"spec": {"replicas": 1}})
    poll(lambda: len(_running_pods(core, "app=web")) == 1)
    apps.delete_namespaced_deployment("web", "default")
    poll(lambda: not core.list_namespaced_pod("default", label_selector="app=web").items)
    assert apps.list_namespaced_replica_set("default").items == []


def test_new_template_rolls_to_a_new_replicaset(
    core: client.CoreV1Api, apps: client.AppsV1Api
) -> None:
    apps.create_namespaced_deployment("default", _deployment())
    poll(lambda: len(_running_pods(core, "app=web")) == 2)
    patch = {"spec": {"template": {"metadata": {"labels": {"app": "web", "v": "2"}}}}}
    apps.patch_namespaced_deployment("web", "default", patch)
    poll(
        lambda: (
            len(_running_pods(core, "app=web,v=2")) == 2
            and len(_running_pods(core, "app=web")) == 2
        )
    )
    hashes = {rs.spec.replicas for rs in apps.list_namespaced_replica_set("default").items}
    assert hashes == {0, 2}


def test_replicaset_created_directly_and_standalone_pod(
    core: client.CoreV1Api, apps: client.AppsV1Api
) -> None:
    rs = {
        "metadata": {"name": "direct"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "direct"}},
            "template": {"metadata": {"labels": {"app": "direct"}}, "spec": {"containers": []}},
        },
    }
    apps.create_namespaced_replica_set("default", rs)
    poll(lambda: len(_running_pods(core, "app=direct")) == 1)
    core.create_namespaced_pod("default", pod_manifest("solo", {"app": "solo"}))
    poll(lambda: len(_running_pods(core, "app=solo")) == 1)
