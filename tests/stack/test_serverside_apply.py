"""Server-side apply with the real kubectl (and the official client): create, update, field
removal, conflicts and --force-conflicts, diff, managedFields, custom resources."""

from __future__ import annotations

import json
from typing import Any

import yaml
from kubernetes import client

from amtd_stack.apiserver import ApiServer
from support.builders import build_deployment

from .conftest import KubectlRun
from .helpers import CRD_DIR, raw

APPLY = "application/apply-patch+yaml"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"


def deployment(replicas: int = 2, image: str = "nginx:1.27", **labels: str) -> dict[str, Any]:
    """A Deployment applied configuration."""
    return build_deployment("web", replicas, {"name": "nginx", "image": image}, labels=labels)


def ssa(kubectl_run: KubectlRun, manifest: dict[str, Any], *flags: str, check: bool = True) -> Any:
    """`kubectl apply --server-side -f -` with the manifest as YAML."""
    text = yaml.safe_dump(manifest)
    return kubectl_run("apply", "--server-side", *flags, "-f", "-", stdin=text, check=check)


def get_web(kubectl_run: KubectlRun, *flags: str) -> Any:
    """The web Deployment as kubectl shows it in YAML."""
    return yaml.safe_load(kubectl_run("get", "deploy", "web", "-o", "yaml", *flags).stdout)


def managers(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """managedFields by manager and operation."""
    entries = obj["metadata"].get("managedFields", [])
    return {f"{e['manager']}/{e['operation']}": e for e in entries}


def test_apply_creates_then_updates_and_removes_dropped_fields(kubectl_run: KubectlRun) -> None:
    assert "deployment.apps/web serverside-applied" in ssa(kubectl_run, deployment(tier="a")).stdout
    first = get_web(kubectl_run)
    assert first["spec"]["replicas"] == 2 and first["metadata"]["labels"]["tier"] == "a"
    assert "managedFields" not in first["metadata"]  # kubectl hides them unless asked
    ssa(kubectl_run, deployment(replicas=3, image="nginx:1.28"))
    second = get_web(kubectl_run)
    assert second["spec"]["replicas"] == 3
    assert second["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"
    assert "tier" not in second["metadata"]["labels"]  # no longer applied: removed
    assert second["metadata"]["resourceVersion"] != first["metadata"]["resourceVersion"]
    unchanged = get_web(kubectl_run)["metadata"]["resourceVersion"]
    ssa(kubectl_run, deployment(replicas=3, image="nginx:1.28"))
    assert get_web(kubectl_run)["metadata"]["resourceVersion"] == unchanged  # a no-op


def test_managed_fields_name_the_managers(kubectl_run: KubectlRun) -> None:
    ssa(kubectl_run, deployment())
    kubectl_run("label", "deploy/web", "owner=team-a")
    shown = get_web(kubectl_run, "--show-managed-fields")
    entries = managers(shown)
    applied = entries["kubectl/Apply"]
    assert applied["apiVersion"] == "apps/v1" and applied["fieldsType"] == "FieldsV1"
    fields = applied["fieldsV1"]
    assert fields["f:spec"]["f:replicas"] == {}
    containers = fields["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert containers['k:{"name":"nginx"}'] == {".": {}, "f:image": {}, "f:name": {}}
    assert "f:name" not in fields.get("f:metadata", {})
    labeller = entries["kubectl-label/Update"]["fieldsV1"]
    assert labeller == {"f:metadata": {"f:labels": {"f:owner": {}}}}  # only what it changed
    kubectl_run("label", "deploy/web", "owner=team-b", "--overwrite")
    assert len(get_web(kubectl_run, "--show-managed-fields")["metadata"]["managedFields"]) == 2


def test_conflict_with_another_manager_and_force(kubectl_run: KubectlRun) -> None:
    ssa(kubectl_run, deployment())
    done = ssa(kubectl_run, deployment(replicas=5), "--field-manager=other", check=False)
    assert done.returncode != 0
    assert 'conflict with "kubectl" using apps/v1: .spec.replicas' in done.stderr
    assert get_web(kubectl_run)["spec"]["replicas"] == 2
    ssa(kubectl_run, deployment(replicas=2), "--field-manager=other")  # same value: shared
    ssa(kubectl_run, deployment(replicas=5), "--field-manager=other", "--force-conflicts")
    shown = get_web(kubectl_run, "--show-managed-fields")
    assert shown["spec"]["replicas"] == 5
    entries = managers(shown)
    assert "f:replicas" in entries["other/Apply"]["fieldsV1"]["f:spec"]
    assert "f:replicas" not in entries["kubectl/Apply"]["fieldsV1"]["f:spec"]  # moved


def test_diff_server_side_shows_the_change_and_writes_nothing(kubectl_run: KubectlRun) -> None:
    ssa(kubectl_run, deployment())
    before = get_web(kubectl_run)["metadata"]["resourceVersion"]
    text = yaml.safe_dump(deployment(replicas=4))
    done = kubectl_run("diff", "--server-side", "-f", "-", stdin=text, check=False)
    assert done.returncode == 1, done.stderr  # 1: differences found
    assert "-  replicas: 2" in done.stdout and "+  replicas: 4" in done.stdout
    after = get_web(kubectl_run)
    assert after["spec"]["replicas"] == 2 and after["metadata"]["resourceVersion"] == before


def test_custom_resource_applied_server_side(kubectl_run: KubectlRun) -> None:
    kubectl_run("apply", "--server-side", "-f", str(CRD_DIR))
    amtd = {
        "apiVersion": "amtd.r6security.com/v1beta1",
        "kind": "AdaptiveMovingTargetDefense",
        "metadata": {"name": "guard", "namespace": "default"},
        "spec": {
            "podSelector": {"app": "web"},
            "strategy": [{"rule": {"type": "default"}, "action": {"delete": {}}}],
        },
    }
    assert "serverside-applied" in ssa(kubectl_run, amtd).stdout
    amtd["spec"]["strategy"][0]["action"] = {"quarantine": {}}
    ssa(kubectl_run, amtd)
    got = json.loads(
        kubectl_run("get", "amtd", "guard", "-o", "json", "--show-managed-fields").stdout
    )
    assert got["spec"]["strategy"] == [{"rule": {"type": "default"}, "action": {"quarantine": {}}}]
    (entry,) = got["metadata"]["managedFields"]
    assert entry["fieldsV1"]["f:spec"]["f:strategy"] == {}  # a CR list without keys is atomic


def test_official_client_apply_patch(apiserver: ApiServer, apps: client.AppsV1Api) -> None:
    body = yaml.safe_dump(deployment()).encode()
    created = raw(apiserver.url, "PATCH", f"{DEPLOYMENTS}/web?fieldManager=py", body, APPLY)
    assert created.status_code == 201, created.text
    again = raw(apiserver.url, "PATCH", f"{DEPLOYMENTS}/web?fieldManager=py", body, APPLY)
    assert again.status_code == 200
    applied = apps.patch_namespaced_deployment(
        "web", "default", deployment(replicas=6), field_manager="py", _content_type=APPLY
    )
    assert applied.spec.replicas == 6
    (entry,) = applied.metadata.managed_fields
    assert (entry.manager, entry.operation) == ("py", "Apply")


def test_apply_patch_errors(apiserver: ApiServer) -> None:
    body = yaml.safe_dump(deployment()).encode()
    nameless = raw(apiserver.url, "PATCH", f"{DEPLOYMENTS}/web", body, APPLY)
    assert nameless.status_code == 422 and "fieldManager" in nameless.json()["message"]
    wrong = raw(apiserver.url, "PATCH", f"{DEPLOYMENTS}/other?fieldManager=x", body, APPLY)
    assert wrong.status_code == 400 and "does not match" in wrong.json()["message"]
    kindless = {k: v for k, v in deployment().items() if k != "kind"}
    missing = raw(apiserver.url, "PATCH", f"{DEPLOYMENTS}/web?fieldManager=x", kindless, APPLY)
    assert missing.status_code == 400 and "kind" in missing.json()["message"]
    forced = raw(
        apiserver.url, "PATCH", f"{DEPLOYMENTS}/web?force=true", {}, "application/merge-patch+json"
    )
    assert forced.status_code == 422 and "force" in forced.json()["message"]
    dry = raw(apiserver.url, "PATCH", f"{DEPLOYMENTS}/web?fieldManager=x&dryRun=All", body, APPLY)
    assert dry.status_code == 201
    gone = raw(apiserver.url, "GET", f"{DEPLOYMENTS}/web")
    assert gone.status_code == 404  # dry run wrote nothing


def test_conflict_status_shape(apiserver: ApiServer) -> None:
    url = f"{DEPLOYMENTS}/web?fieldManager="
    assert raw(apiserver.url, "PATCH", url + "a", deployment(), APPLY).status_code == 201
    answer = raw(apiserver.url, "PATCH", url + "b", deployment(replicas=9, image="x"), APPLY)
    assert answer.status_code == 409
    status = answer.json()
    assert status["reason"] == "Conflict" and status["message"].startswith("Apply failed with 2")
    causes = {c["field"]: c for c in status["details"]["causes"]}
    assert set(causes) == {".spec.replicas", '.spec.template.spec.containers[name="nginx"].image'}
    assert causes[".spec.replicas"] == {
        "reason": "FieldManagerConflict",
        "message": 'conflict with "a" using apps/v1',
        "field": ".spec.replicas",
    }


def test_status_is_applied_only_through_its_subresource(kubectl_run: KubectlRun) -> None:
    kubectl_run("apply", "--server-side", "-f", str(CRD_DIR))
    event = {
        "apiVersion": "amtd.r6security.com/v1beta1",
        "kind": "SecurityEvent",
        "metadata": {"name": "e1"},
        "spec": {"targets": ["default/p"], "rule": {"type": "test"}},
        "status": {"phase": "Decided"},
    }
    ssa(kubectl_run, event)
    shown = json.loads(
        kubectl_run("get", "sev", "e1", "-o", "json", "--show-managed-fields").stdout
    )
    assert "status" not in shown  # the main resource's apply leaves the status alone
    assert "f:status" not in shown["metadata"]["managedFields"][0]["fieldsV1"]
    ssa(kubectl_run, event, "--subresource=status", "--field-manager=matcher")
    shown = json.loads(
        kubectl_run("get", "sev", "e1", "-o", "json", "--show-managed-fields").stdout
    )
    assert shown["status"] == {"phase": "Decided"}
    entries = {e["manager"]: e for e in shown["metadata"]["managedFields"]}
    assert entries["matcher"]["subresource"] == "status"
    assert entries["matcher"]["fieldsV1"] == {"f:status": {"f:phase": {}}}
