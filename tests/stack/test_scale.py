"""The scale subresource of Deployments and ReplicaSets, with the real kubectl and the client."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from .conftest import KubectlRun
from .helpers import poll


def deployment(name: str, replicas: int = 1) -> dict[str, Any]:
    """A small Deployment manifest."""
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
            },
        },
    }


def running_pods(core: client.CoreV1Api, app: str) -> int:
    """How many live pods carry app=<app>."""
    pods = core.list_namespaced_pod("default", label_selector=f"app={app}").items
    return sum(1 for p in pods if p.metadata.deletion_timestamp is None)


def test_kubectl_scale_deployment_converges_pods(
    kubectl_run: KubectlRun, core: client.CoreV1Api, apps: client.AppsV1Api
) -> None:
    kubectl_run("apply", "-f", "-", stdin=json.dumps(deployment("web")))
    poll(lambda: running_pods(core, "web") == 1)
    out = kubectl_run("scale", "deploy/web", "--replicas=3").stdout
    assert "deployment.apps/web scaled" in out
    poll(lambda: running_pods(core, "web") == 3)
    poll(lambda: (apps.read_namespaced_deployment("web", "default").status.ready_replicas) == 3)
    kubectl_run("scale", "deployment", "web", "--replicas=1")
    poll(lambda: running_pods(core, "web") == 1)
    assert apps.read_namespaced_deployment("web", "default").spec.replicas == 1


def test_kubectl_get_scale_subresource_and_current_replicas(kubectl_run: KubectlRun) -> None:
    kubectl_run("apply", "-f", "-", stdin=json.dumps(deployment("api", 2)))
    scale = json.loads(kubectl_run("get", "deploy/api", "--subresource=scale", "-o", "json").stdout)
    assert (scale["apiVersion"], scale["kind"]) == ("autoscaling/v1", "Scale")
    assert scale["spec"] == {"replicas": 2}
    assert scale["status"]["selector"] == "app=api"
    wrong = kubectl_run("scale", "deploy/api", "--current-replicas=5", "--replicas=4", check=False)
    assert wrong.returncode != 0 and "Expected replicas to be 5, was 2" in wrong.stderr
    kubectl_run("scale", "deploy/api", "--current-replicas=2", "--replicas=4")  # GET + PUT
    assert kubectl_run("get", "deploy/api", "-o", "jsonpath={.spec.replicas}").stdout == "4"


def test_kubectl_scale_dry_run_changes_nothing(kubectl_run: KubectlRun) -> None:
    kubectl_run("apply", "-f", "-", stdin=json.dumps(deployment("dry", 2)))
    out = kubectl_run("scale", "deploy/dry", "--replicas=7", "--dry-run=server").stdout
    assert "scaled (server dry run)" in out
    assert kubectl_run("get", "deploy/dry", "-o", "jsonpath={.spec.replicas}").stdout == "2"


def test_kubectl_scale_replicaset(kubectl_run: KubectlRun, core: client.CoreV1Api) -> None:
    manifest = deployment("solo", 1)
    manifest.update(apiVersion="apps/v1", kind="ReplicaSet")
    kubectl_run("apply", "-f", "-", stdin=json.dumps(manifest))
    poll(lambda: running_pods(core, "solo") == 1)
    assert "replicaset.apps/solo scaled" in kubectl_run("scale", "rs/solo", "--replicas=2").stdout
    poll(lambda: running_pods(core, "solo") == 2)


def test_client_scale_read_patch_replace(apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment("default", deployment("cl", 1))
    scale = apps.read_namespaced_deployment_scale("cl", "default")
    assert scale.spec.replicas == 1 and scale.metadata.uid
    patched = apps.patch_namespaced_deployment_scale("cl", "default", {"spec": {"replicas": 3}})
    assert patched.spec.replicas == 3
    assert apps.read_namespaced_deployment("cl", "default").metadata.generation == 2
    scale.spec.replicas = 5  # the resourceVersion it carries is stale now
    with pytest.raises(ApiException) as stale:
        apps.replace_namespaced_deployment_scale("cl", "default", scale)
    assert stale.value.status == 409


def test_negative_replicas_are_invalid(apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment("default", deployment("neg", 1))
    with pytest.raises(ApiException) as bad:
        apps.patch_namespaced_deployment_scale("neg", "default", {"spec": {"replicas": -1}})
    assert bad.value.status == 422 and "spec.replicas" in bad.value.body


def test_discovery_names_the_scale_kind(api_client: client.ApiClient) -> None:
    resources = client.AppsV1Api(api_client).get_api_resources().resources
    sub = next(r for r in resources if r.name == "deployments/scale")
    assert (sub.group, sub.version, sub.kind) == ("autoscaling", "v1", "Scale")
    assert sorted(sub.verbs) == ["get", "patch", "update"]
