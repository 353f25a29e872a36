"""`kubectl apply --server-side` of a pod (more in test_serverside_apply.py); kubectl's protobuf
generators are decoded."""

from __future__ import annotations

import json
from typing import Any

import pytest

from amtd_stack.apiserver import ApiServer
from amtd_stack.apiserver.apierrors import ApiError
from amtd_stack.apiserver.protobufs import MAGIC, decode_object

from .conftest import KubectlRun
from .helpers import raw

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p"},
    "spec": {"containers": [{"name": "a", "image": "nginx"}]},
}


def get_json(kubectl_run: KubectlRun, *what: str) -> Any:
    """`kubectl get ... -o json`, parsed."""
    return json.loads(kubectl_run("get", *what, "-o", "json").stdout)


def test_server_side_apply_of_a_pod(kubectl_run: KubectlRun) -> None:
    diff = kubectl_run("diff", "--server-side", "-f", "-", stdin=json.dumps(POD), check=False)
    assert diff.returncode == 1 and "+  name: p" in diff.stdout, diff.stderr
    assert kubectl_run("get", "pod", "p", check=False).returncode != 0  # diff wrote nothing
    done = kubectl_run("apply", "--server-side", "-f", "-", stdin=json.dumps(POD))
    assert "pod/p serverside-applied" in done.stdout
    again = kubectl_run("diff", "--server-side", "-f", "-", stdin=json.dumps(POD), check=False)
    assert again.returncode == 0, again.stdout


def test_apply_patch_without_field_manager_is_422_before_the_lookup(apiserver: ApiServer) -> None:
    answer = raw(
        apiserver.url,
        "PATCH",
        "/api/v1/namespaces/default/pods/none",
        POD,
        content_type="application/apply-patch+yaml",
    )
    assert answer.status_code == 422
    assert "fieldManager: Required value" in answer.json()["message"]


def test_create_deployment_generator(kubectl_run: KubectlRun) -> None:
    kubectl_run("create", "deployment", "web", "--image=nginx:1.27", "--replicas=2", "--port=80")
    spec = get_json(kubectl_run, "deploy", "web")["spec"]
    assert spec["replicas"] == 2 and spec["selector"] == {"matchLabels": {"app": "web"}}
    (container,) = spec["template"]["spec"]["containers"]
    assert (container["name"], container["image"]) == ("nginx", "nginx:1.27")
    assert container["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    kubectl_run("create", "deployment", "none", "--image=nginx", "--replicas=0")
    assert get_json(kubectl_run, "deploy", "none")["spec"]["replicas"] == 0  # a zero kept
    kubectl_run("create", "deployment", "cmd", "--image=busybox", "--", "sleep", "60")
    (cmd,) = get_json(kubectl_run, "deploy", "cmd")["spec"]["template"]["spec"]["containers"]
    assert cmd["command"] == ["sleep", "60"]


def test_create_service_generators(kubectl_run: KubectlRun) -> None:
    kubectl_run("create", "service", "clusterip", "web", "--tcp=80:8080")
    spec = get_json(kubectl_run, "svc", "web")["spec"]
    assert spec["ports"] == [{"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080}]
    assert spec["selector"] == {"app": "web"} and spec["type"] == "ClusterIP"
    kubectl_run("create", "service", "nodeport", "np", "--tcp=81:http")
    (port,) = get_json(kubectl_run, "svc", "np")["spec"]["ports"]
    assert port["targetPort"] == "http" and 30000 <= port["nodePort"] <= 32767
    kubectl_run("create", "service", "externalname", "ext", "--external-name=db.example.com")
    assert get_json(kubectl_run, "svc", "ext")["spec"]["externalName"] == "db.example.com"


def test_create_rbac_generators(kubectl_run: KubectlRun) -> None:
    kubectl_run("create", "role", "reader", "--verb=get,list", "--resource=pods,deployments.apps")
    rules = get_json(kubectl_run, "role", "reader")["rules"]
    shapes = {(tuple(r["apiGroups"]), tuple(r["resources"])) for r in rules}
    assert shapes == {(("",), ("pods",)), (("apps",), ("deployments",))}
    assert all(r["verbs"] == ["get", "list"] for r in rules)
    kubectl_run(
        "create",
        "rolebinding",
        "rb",
        "--role=reader",
        "--user=alice",
        "--serviceaccount=default:bot",
    )
    binding = get_json(kubectl_run, "rolebinding", "rb")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "reader",
    }
    assert {s["kind"]: s["name"] for s in binding["subjects"]} == {
        "User": "alice",
        "ServiceAccount": "bot",
    }
    kubectl_run("create", "clusterrole", "nodes", "--verb=get", "--resource=nodes")
    assert get_json(kubectl_run, "clusterrole", "nodes")["rules"][0]["resources"] == ["nodes"]
    kubectl_run("create", "clusterrolebinding", "ops", "--clusterrole=nodes", "--group=ops")
    assert get_json(kubectl_run, "clusterrolebinding", "ops")["subjects"][0]["kind"] == "Group"


def test_create_quota_and_job_generators(kubectl_run: KubectlRun) -> None:
    kubectl_run("create", "quota", "q", "--hard=pods=2,requests.cpu=500m")
    assert get_json(kubectl_run, "quota", "q")["spec"]["hard"] == {
        "pods": "2",
        "requests.cpu": "500m",
    }
    kubectl_run("create", "job", "once", "--image=busybox", "--", "echo", "hi")
    job = get_json(kubectl_run, "job", "once")
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["echo", "hi"]


def _field(number: int, payload: bytes) -> bytes:
    return bytes([number << 3 | 2, len(payload)]) + payload


def test_unlisted_messages_are_415_naming_the_field() -> None:
    type_meta = _field(1, b"v1") + _field(2, b"Pod")
    with pytest.raises(ApiError) as pod:
        decode_object(MAGIC + _field(1, type_meta) + _field(2, b""))
    assert pod.value.code == 415 and "'Pod'" in pod.value.message
    volume = _field(1, _field(1, b"data"))  # PodSpec.volumes[0] = {name: data}
    template = _field(2, volume)  # PodTemplateSpec.spec
    spec = _field(3, template)  # DeploymentSpec.template
    deployment = _field(1, b"apps/v1") + _field(2, b"Deployment")
    with pytest.raises(ApiError) as nested:
        decode_object(MAGIC + _field(1, deployment) + _field(2, _field(2, spec)))
    assert nested.value.code == 415
    assert "spec.template.spec.volumes[0] (Volume)" in nested.value.message
