"""batch/v1 Jobs and apps/v1 DaemonSets: pods made by a controller, owned, collected with it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from amtd.act.guarding import is_standalone
from amtd_stack.apiserver.jobs import wanted_pods

from .conftest import KubectlRun
from .helpers import poll

CONTAINERS = [{"name": "work", "image": "busybox:1.36"}]


def job(name: str, **spec: Any) -> dict[str, Any]:
    """A Job manifest whose pods never restart."""
    template = {"spec": {"restartPolicy": "Never", "containers": CONTAINERS}}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"template": template, **spec},
    }


def daemonset(name: str, node_selector: dict[str, str] | None = None) -> dict[str, Any]:
    """A DaemonSet manifest."""
    labels = {"app": name}
    pod_spec: dict[str, Any] = {"containers": CONTAINERS}
    if node_selector:
        pod_spec["nodeSelector"] = node_selector
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


def pods_of(core: client.CoreV1Api, uid: str) -> list[Any]:
    """Live pods whose controller is `uid`, as dicts."""
    found = core.api_client.sanitize_for_serialization(core.list_namespaced_pod("default").items)
    return [
        p
        for p in found
        if not p["metadata"].get("deletionTimestamp")
        and any(
            r.get("controller") and r["uid"] == uid
            for r in p["metadata"].get("ownerReferences") or []
        )
    ]


def test_wanted_pods() -> None:
    assert wanted_pods({"parallelism": 3}) == 3
    assert wanted_pods({"parallelism": 3, "completions": 2}) == 2
    assert wanted_pods({"parallelism": 3, "suspend": True}) == 0


def test_job_runs_parallelism_pods_owned_by_it(
    kubectl_run: KubectlRun, core: client.CoreV1Api
) -> None:
    kubectl_run("apply", "-f", "-", stdin=json.dumps(job("batch", parallelism=2, completions=5)))
    created = json.loads(kubectl_run("get", "job", "batch", "-o", "json").stdout)
    uid = created["metadata"]["uid"]
    assert created["spec"]["selector"] == {
        "matchLabels": {"batch.kubernetes.io/controller-uid": uid}
    }
    assert created["spec"]["backoffLimit"] == 6
    pods = poll(lambda: len(pods_of(core, uid)) == 2 and pods_of(core, uid))
    assert all(not is_standalone(p) for p in pods)  # the executors' guard sees a controller
    assert {p["metadata"]["labels"]["job-name"] for p in pods} == {"batch"}
    assert all(p["status"]["phase"] == "Running" for p in pods)
    status = poll(
        lambda: (
            json.loads(kubectl_run("get", "job", "batch", "-o", "json").stdout)["status"].get(
                "active"
            )
            == 2
        )
    )
    assert status
    core.delete_namespaced_pod(pods[0]["metadata"]["name"], "default")  # the Job replaces it
    poll(
        lambda: (
            len(pods_of(core, uid)) == 2
            and pods[0]["metadata"]["name"]
            not in {p["metadata"]["name"] for p in pods_of(core, uid)}
        )
    )
    kubectl_run("delete", "job", "batch")
    poll(lambda: pods_of(core, uid) == [])


def test_suspended_job_has_no_pods_until_resumed(
    kubectl_run: KubectlRun, core: client.CoreV1Api
) -> None:
    kubectl_run("apply", "-f", "-", stdin=json.dumps(job("later", suspend=True)))
    uid = kubectl_run("get", "job", "later", "-o", "jsonpath={.metadata.uid}").stdout
    kubectl_run("patch", "job", "later", "--type=merge", "-p", '{"spec":{"suspend":false}}')
    poll(lambda: len(pods_of(core, uid)) == 1)
    kubectl_run("patch", "job", "later", "--type=merge", "-p", '{"spec":{"suspend":true}}')
    poll(lambda: pods_of(core, uid) == [])


def test_job_pods_may_not_restart_always(api_client: client.ApiClient) -> None:
    body = job("bad")
    del body["spec"]["template"]["spec"]["restartPolicy"]  # defaults to Always: refused
    with pytest.raises(ApiException) as refused:
        client.BatchV1Api(api_client).create_namespaced_job("default", body)
    assert refused.value.status == 422
    assert "spec.template.spec.restartPolicy" in refused.value.body


def test_daemonset_one_pod_per_node_and_new_nodes(
    kubectl_run: KubectlRun, core: client.CoreV1Api
) -> None:
    nodes = [n.metadata.name for n in core.list_node().items]
    assert nodes == ["node-1"]  # the stand-in's one Node
    kubectl_run("apply", "-f", "-", stdin=json.dumps(daemonset("agent")))
    uid = kubectl_run("get", "ds", "agent", "-o", "jsonpath={.metadata.uid}").stdout
    (pod,) = poll(lambda: pods_of(core, uid))
    assert pod["spec"]["nodeName"] == "node-1" and not is_standalone(pod)
    core.create_node({"metadata": {"name": "node-2", "labels": {"zone": "b"}}})
    poll(lambda: sorted(p["spec"]["nodeName"] for p in pods_of(core, uid)) == ["node-1", "node-2"])
    ready = kubectl_run("get", "ds", "agent", "-o", "jsonpath={.status.numberReady}")
    assert poll(
        lambda: (
            kubectl_run("get", "ds", "agent", "-o", "jsonpath={.status.numberReady}").stdout == "2"
        )
    )
    assert ready.returncode == 0
    core.delete_node("node-2")
    poll(lambda: [p["spec"]["nodeName"] for p in pods_of(core, uid)] == ["node-1"])
    kubectl_run("delete", "ds", "agent")
    poll(lambda: pods_of(core, uid) == [])


def test_daemonset_node_selector_and_template_change(
    kubectl_run: KubectlRun, core: client.CoreV1Api
) -> None:
    core.create_node({"metadata": {"name": "edge-1", "labels": {"role": "edge"}}})
    kubectl_run("apply", "-f", "-", stdin=json.dumps(daemonset("edge", {"role": "edge"})))
    uid = kubectl_run("get", "ds", "edge", "-o", "jsonpath={.metadata.uid}").stdout
    (first,) = poll(lambda: pods_of(core, uid))
    assert first["spec"]["nodeName"] == "edge-1"
    kubectl_run("set", "image", "ds/edge", "work=busybox:1.37")
    (second,) = poll(
        lambda: [
            p for p in pods_of(core, uid) if p["metadata"]["name"] != first["metadata"]["name"]
        ]
    )
    assert second["spec"]["containers"][0]["image"] == "busybox:1.37"
    assert second["metadata"]["labels"]["pod-template-generation"] == "2"


def test_deleting_a_job_without_a_policy_orphans_its_pods(
    api_client: client.ApiClient, core: client.CoreV1Api
) -> None:
    batch = client.BatchV1Api(api_client)
    uid = batch.create_namespaced_job("default", job("kept")).metadata.uid
    (pod,) = poll(lambda: pods_of(core, uid))
    batch.delete_namespaced_job("kept", "default")  # batch/v1's default policy is Orphan
    poll(lambda: not batch.list_namespaced_job("default").items)
    left = core.read_namespaced_pod(pod["metadata"]["name"], "default")
    assert left.metadata.deletion_timestamp is None and not left.metadata.owner_references
