"""The defaults the stand-in fills in on create, as upstream's defaulting and admission do."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest
from kubernetes import client

from amtd_stack.apiserver.defaulting import image_pull_policy

from .conftest import KubectlRun
from .helpers import poll

POD_SPEC_DEFAULTS = {
    "restartPolicy": "Always",
    "dnsPolicy": "ClusterFirst",
    "schedulerName": "default-scheduler",
    "terminationGracePeriodSeconds": 30,
    "securityContext": {},
}
CONTAINER_DEFAULTS = {
    "terminationMessagePath": "/dev/termination-log",
    "terminationMessagePolicy": "File",
}


def pod(name: str, image: str) -> dict[str, Any]:
    """A bare pod manifest."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }


def get_json(kubectl_run: KubectlRun, *what: str) -> dict[str, Any]:
    """`kubectl get ... -o json`, parsed."""
    return dict(json.loads(kubectl_run("get", *what, "-o", "json").stdout))


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.27", "IfNotPresent"),
        ("registry.local:5000/team/app", "Always"),
        ("registry.local:5000/team/app:v2", "IfNotPresent"),
        ("nginx@sha256:" + "a" * 64, "IfNotPresent"),
    ],
)
def test_image_pull_policy(image: str, policy: str) -> None:
    assert image_pull_policy(image) == policy


def test_pod_defaults_through_kubectl(kubectl_run: KubectlRun) -> None:
    kubectl_run("apply", "-f", "-", stdin=json.dumps(pod("p", "nginx:1.27")))
    spec = get_json(kubectl_run, "pod", "p")["spec"]
    assert {k: spec[k] for k in POD_SPEC_DEFAULTS} == POD_SPEC_DEFAULTS
    assert spec["serviceAccountName"] == "default" and spec["enableServiceLinks"] is True
    (container,) = spec["containers"]
    assert {k: container[k] for k in CONTAINER_DEFAULTS} == CONTAINER_DEFAULTS
    assert container["imagePullPolicy"] == "IfNotPresent"


def test_set_values_are_kept(core: client.CoreV1Api) -> None:
    manifest = pod("kept", "nginx")
    manifest["spec"].update(restartPolicy="Never", terminationGracePeriodSeconds=5)
    manifest["spec"]["containers"][0]["imagePullPolicy"] = "Never"
    created = core.create_namespaced_pod("default", manifest)
    assert created.spec.restart_policy == "Never"
    assert created.spec.termination_grace_period_seconds == 5
    assert created.spec.containers[0].image_pull_policy == "Never"


def test_deployment_defaults_and_its_pods(kubectl_run: KubectlRun, core: client.CoreV1Api) -> None:
    manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "nginx:latest"}]},
            },
        },
    }
    kubectl_run("apply", "-f", "-", stdin=json.dumps(manifest))
    spec = get_json(kubectl_run, "deploy", "web")["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    assert (spec["revisionHistoryLimit"], spec["progressDeadlineSeconds"]) == (10, 600)
    template = spec["template"]["spec"]
    assert template["restartPolicy"] == "Always"
    assert template["containers"][0]["imagePullPolicy"] == "Always"
    assert "serviceAccountName" not in template  # admission sets it on pods, not templates
    (made,) = poll(lambda: core.list_namespaced_pod("default", label_selector="app=web").items)
    assert made.spec.service_account_name == "default"
    assert made.spec.scheduler_name == "default-scheduler"


def test_replicaset_replicas_default(apps: client.AppsV1Api) -> None:
    labels = {"app": "rs"}
    body = {
        "metadata": {"name": "rs"},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "a"}]}},
        },
    }
    assert apps.create_namespaced_replica_set("default", body).spec.replicas == 1


def test_service_defaults_and_cluster_ip(kubectl_run: KubectlRun) -> None:
    manifest = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "svc"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
    }
    kubectl_run("apply", "-f", "-", stdin=json.dumps(manifest))
    spec = get_json(kubectl_run, "svc", "svc")["spec"]
    assert (spec["type"], spec["sessionAffinity"]) == ("ClusterIP", "None")
    assert spec["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    assert ipaddress.ip_address(spec["clusterIP"]) in ipaddress.ip_network("10.96.0.0/12")
    assert spec["clusterIPs"] == [spec["clusterIP"]]
    kubectl_run("label", "svc", "svc", "tier=front")
    assert get_json(kubectl_run, "svc", "svc")["spec"]["clusterIP"] == spec["clusterIP"]


def test_headless_service_keeps_none(core: client.CoreV1Api) -> None:
    body = {"metadata": {"name": "hl"}, "spec": {"clusterIP": "None", "ports": [{"port": 53}]}}
    created = core.create_namespaced_service("default", body)
    assert created.spec.cluster_ip == "None" and created.spec.cluster_ips == ["None"]
