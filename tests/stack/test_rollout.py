"""`kubectl rollout history/undo/status` against the Deployment controller's revisions."""

from __future__ import annotations

import json
from typing import Any

from amtd_stack.apiserver.revisions import next_annotations, surplus_replicasets

from .conftest import KubectlRun
from .helpers import poll

REVISION = "deployment.kubernetes.io/revision"


def deployment(name: str, image: str, history: int | None = None) -> str:
    """A Deployment manifest as JSON."""
    labels = {"app": name}
    spec: dict[str, Any] = {
        "replicas": 2,
        "selector": {"matchLabels": labels},
        "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": "app", "image": image}]},
        },
    }
    if history is not None:
        spec["revisionHistoryLimit"] = history
    manifest = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}}
    return json.dumps({**manifest, "spec": spec})


def revisions(kubectl_run: KubectlRun, app: str) -> dict[str, tuple[str, int]]:
    """ReplicaSet revision -> (image, replicas)."""
    listed = json.loads(kubectl_run("get", "rs", "-l", f"app={app}", "-o", "json").stdout)
    return {
        rs["metadata"]["annotations"][REVISION]: (
            rs["spec"]["template"]["spec"]["containers"][0]["image"],
            rs["spec"]["replicas"],
        )
        for rs in listed["items"]
    }


def image_of(kubectl_run: KubectlRun, name: str) -> str:
    """The Deployment's container image."""
    path = "jsonpath={.spec.template.spec.containers[0].image}"
    return str(kubectl_run("get", "deploy", name, "-o", path).stdout)


def three_revisions(kubectl_run: KubectlRun, name: str) -> None:
    """Create the Deployment and roll it twice: nginx 1.25, 1.26, 1.27."""
    kubectl_run("apply", "-f", "-", stdin=deployment(name, "nginx:1.25"))
    poll(lambda: "1" in revisions(kubectl_run, name))
    kubectl_run("set", "image", f"deploy/{name}", "app=nginx:1.26")
    kubectl_run("annotate", f"deploy/{name}", "kubernetes.io/change-cause=move to 1.27")
    kubectl_run("set", "image", f"deploy/{name}", "app=nginx:1.27")
    poll(lambda: len(revisions(kubectl_run, name)) == 3)


def test_history_lists_revisions_with_change_cause(kubectl_run: KubectlRun) -> None:
    three_revisions(kubectl_run, "web")
    lines = kubectl_run("rollout", "history", "deploy/web").stdout.splitlines()
    rows = [line.split(None, 1) for line in lines[2:] if line.strip()]
    assert rows == [["1", "<none>"], ["2", "<none>"], ["3", "move to 1.27"]]
    detail = kubectl_run("rollout", "history", "deploy/web", "--revision=2").stdout
    assert "nginx:1.26" in detail and "revision #2" in detail
    done = kubectl_run("rollout", "status", "deploy/web", "--timeout=20s").stdout
    assert 'deployment "web" successfully rolled out' in done
    annotations = json.loads(kubectl_run("get", "deploy", "web", "-o", "json").stdout)
    assert annotations["metadata"]["annotations"][REVISION] == "3"


def test_undo_reuses_the_old_replicaset(kubectl_run: KubectlRun) -> None:
    three_revisions(kubectl_run, "api")
    assert "rolled back" in kubectl_run("rollout", "undo", "deploy/api").stdout
    assert image_of(kubectl_run, "api") == "nginx:1.26"
    poll(lambda: revisions(kubectl_run, "api").get("4") == ("nginx:1.26", 2))
    assert set(revisions(kubectl_run, "api")) == {"1", "3", "4"}  # revision 2 moved to 4
    kubectl_run("rollout", "undo", "deploy/api", "--to-revision=1")
    assert image_of(kubectl_run, "api") == "nginx:1.25"
    poll(lambda: revisions(kubectl_run, "api").get("5") == ("nginx:1.25", 2))
    same = kubectl_run("rollout", "undo", "deploy/api", "--to-revision=5").stdout
    assert "skipped rollback (current template already matches revision 5)" in same


def test_undo_to_a_missing_revision_fails(kubectl_run: KubectlRun) -> None:
    kubectl_run("apply", "-f", "-", stdin=deployment("one", "nginx:1.25"))
    poll(lambda: "1" in revisions(kubectl_run, "one"))
    done = kubectl_run("rollout", "undo", "deploy/one", "--to-revision=9", check=False)
    assert done.returncode != 0 and "unable to find specified revision 9" in done.stderr


def test_history_limit_deletes_the_oldest_empty_replicasets(kubectl_run: KubectlRun) -> None:
    kubectl_run("apply", "-f", "-", stdin=deployment("lim", "nginx:1.25", history=1))
    for tag in ("1.26", "1.27"):
        kubectl_run("set", "image", "deploy/lim", f"app=nginx:{tag}")
    poll(lambda: set(revisions(kubectl_run, "lim")) == {"2", "3"})


def _rs(revision: str, replicas: int = 0) -> dict[str, Any]:
    meta = {"name": f"rs-{revision}", "annotations": {REVISION: revision} if revision else {}}
    return {"metadata": meta, "spec": {"replicas": replicas}, "status": {"replicas": replicas}}


def test_revision_numbers() -> None:
    assert next_annotations(_rs(""), [], None)[REVISION] == "1"
    assert (
        next_annotations(_rs(""), [_rs("1"), _rs("2")], "why")["kubernetes.io/change-cause"]
        == "why"
    )
    back = next_annotations(_rs("1"), [_rs("2")], None)
    assert (back[REVISION], back["deployment.kubernetes.io/revision-history"]) == ("3", "1")
    assert next_annotations(_rs("3"), [_rs("1"), _rs("2")], "x") == {REVISION: "3"}  # current
    old = [_rs("3"), _rs("1"), _rs("2", replicas=1)]
    assert [r["metadata"]["name"] for r in surplus_replicasets(old, 1)] == ["rs-1"]
