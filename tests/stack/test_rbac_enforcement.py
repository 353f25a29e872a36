"""The stand-in authenticates each function as its ServiceAccount and enforces knative/rbac/.

An enforcing stand-in (``authorization=True``, as the local stack runs it) with the committed
RBAC applied: tokens it issued authenticate (else 401), every request is allowed or refused by
the stored Roles and bindings with the real server's 403 wording, ``kubectl auth can-i`` and
``kubectl auth whoami`` answer from the same RBAC, and on the running stack a function's own
credentials cannot do what its Role does not grant.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from amtd.kube.api import EVENTS, PODS, Cluster, Resource
from amtd.kube.apierrors import InvalidError
from amtd_stack.apiserver import ApiServer, start_apiserver
from amtd_stack.apiserver.authenticating import master_user, service_account_user
from amtd_stack.apiserver.authorizing import Attributes, build_index, decide
from amtd_stack.manifests import load_manifests
from amtd_stack.running.kubeclients import apply_objects
from support.builders import SHELL_RULE, create_policy, falco_alert
from support.functions import ROOT
from support.stacks import (
    LiveStack,
    create_workload,
    run_stack,
    wait_for_executions,
    wait_for_security_event,
)
from support.standins import connect, create_namespace, create_pod

KUBECTL = shutil.which("kubectl")
SYSTEM = "amtd-system"
NAMESPACES = Resource("", "v1", "namespaces", namespaced=False)
ROLES = Resource("rbac.authorization.k8s.io", "v1", "roles", namespaced=True)
ROLE_BINDINGS = Resource("rbac.authorization.k8s.io", "v1", "rolebindings", namespaced=True)
UNAUTHORIZED = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "Unauthorized", "reason": "Unauthorized", "code": 401}  # fmt: skip


def account(name: str) -> str:
    """The user name of ServiceAccount amtd-system/<name>."""
    return f"system:serviceaccount:{SYSTEM}:{name}"


@pytest.fixture(scope="module")
def enforcing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiServer, Path]]:
    """An enforcing stand-in with the CRDs, knative/rbac/ and namespace demo; its admin
    kubeconfig."""
    folder = tmp_path_factory.mktemp("rbac-enforced")
    with start_apiserver(authorization=True) as server:
        admin = server.write_kubeconfig(folder / "admin")
        applied = [  # what the stack applies: all but the Knative objects it runs itself
            (m.obj, str(m.path))
            for m in load_manifests(ROOT / "knative")
            if ".knative.dev/" not in m.api_version
        ]
        demo = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}}
        apply_objects(admin, [*applied, (demo, "test")])
        yield server, admin


@pytest.fixture(scope="module")
def admin(enforcing: tuple[ApiServer, Path]) -> Iterator[Cluster]:
    """The administrator's connection (system:masters)."""
    own = connect(enforcing[1])
    yield own
    own.api_client.close()


def as_account(server: ApiServer, folder: Path, name: str) -> Cluster:
    """A connection with ServiceAccount amtd-system/<name>'s own token."""
    return connect(server.write_kubeconfig(folder / name, name, SYSTEM))


@pytest.fixture
def pod(admin: Cluster) -> Iterator[dict[str, Any]]:
    """A pod in demo, gone after the test."""
    created = create_pod(admin, "demo", "victim")
    yield created
    if admin.find(PODS, "victim", "demo") is not None:
        admin.delete(PODS, "victim", "demo", grace_period_seconds=0)


def test_a_service_account_does_what_its_role_grants(
    enforcing: tuple[ApiServer, Path], pod: dict[str, Any], tmp_path: Path
) -> None:
    server, _ = enforcing
    executor = as_account(server, tmp_path, "executor-delete")

    assert executor.get(PODS, "victim", "demo")["metadata"]["uid"] == pod["metadata"]["uid"]
    executor.delete(PODS, "victim", "demo")
    mine = [r for r in server.requests if r.user == "executor-delete"]
    assert [(r.verb, r.status) for r in mine[-2:]] == [("get", 200), ("delete", 200)]


def test_a_call_outside_the_role_is_forbidden_as_on_a_real_server(
    enforcing: tuple[ApiServer, Path], pod: dict[str, Any], admin: Cluster, tmp_path: Path
) -> None:
    server, _ = enforcing
    own = server.write_kubeconfig(tmp_path / "quarantine", "executor-quarantine", SYSTEM)
    token = yaml.safe_load(own.read_text())["users"][0]["user"]["token"]
    url = f"{server.url}/api/v1/namespaces/demo/pods/victim"

    answer = requests.delete(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)

    assert answer.status_code == 403
    assert answer.json() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'pods "victim" is forbidden: User "system:serviceaccount:amtd-system:'
        'executor-quarantine" cannot delete resource "pods" in API group "" in the namespace '
        '"demo"',
        "reason": "Forbidden", "details": {"name": "victim", "kind": "pods"}, "code": 403,
    }  # fmt: skip
    last = server.requests[-1]
    assert (last.user, last.verb, last.status) == ("executor-quarantine", "delete", 403)
    assert admin.get(PODS, "victim", "demo")["metadata"]["uid"] == pod["metadata"]["uid"]


def test_cluster_scope_and_role_namespaces(
    enforcing: tuple[ApiServer, Path], tmp_path: Path
) -> None:
    server, _ = enforcing
    ingest = as_account(server, tmp_path, "ingest-falco")
    event = {"metadata": {"generateName": "repeat-"}, "involvedObject": {"kind": "Pod"},
             "reason": "Repeated", "message": "again"}  # fmt: skip

    ingest.create(EVENTS, event, "default")  # its Role in default grants it
    with pytest.raises(InvalidError) as elsewhere:
        ingest.create(EVENTS, event, "demo")
    with pytest.raises(InvalidError) as cluster_wide:
        ingest.list(NAMESPACES)

    assert elsewhere.value.status == 403 and elsewhere.value.message == (
        f'events is forbidden: User "{account("ingest-falco")}" cannot create resource "events" '
        'in API group "" in the namespace "demo"'
    )
    assert cluster_wide.value.message == (
        f'namespaces is forbidden: User "{account("ingest-falco")}" cannot list resource '
        '"namespaces" in API group "" at the cluster scope'
    )


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer forged"}, {"Authorization": "Bearer admin"}],
    ids=["no token", "unknown token", "a name is no token"],
)
def test_a_missing_or_unknown_token_is_401(
    enforcing: tuple[ApiServer, Path], headers: dict[str, str]
) -> None:
    server, _ = enforcing
    for path in ("/api/v1/namespaces/demo/pods", "/apis"):
        answer = requests.get(server.url + path, headers=headers, timeout=10)
        assert (answer.status_code, answer.json()) == (401, UNAUTHORIZED)
    assert requests.get(server.url + "/healthz", headers=headers, timeout=10).json() == "ok"


def test_rbac_writes_take_effect_at_once(
    enforcing: tuple[ApiServer, Path], admin: Cluster, pod: dict[str, Any], tmp_path: Path
) -> None:
    server, _ = enforcing
    quarantine = as_account(server, tmp_path, "executor-quarantine")
    role = {"metadata": {"name": "list-pods"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]}  # fmt: skip
    binding = {"metadata": {"name": "list-pods"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                           "name": "list-pods"},
               "subjects": [{"kind": "ServiceAccount", "name": "executor-quarantine",
                             "namespace": SYSTEM}]}  # fmt: skip
    admin.create(ROLE_BINDINGS, binding, "demo")
    with pytest.raises(InvalidError) as missing_role:
        quarantine.list(PODS, "demo")
    admin.create(ROLES, role, "demo")

    assert [p["metadata"]["name"] for p in quarantine.list(PODS, "demo")] == ["victim"]
    admin.delete(ROLE_BINDINGS, "list-pods", "demo")
    with pytest.raises(InvalidError):
        quarantine.list(PODS, "demo")
    admin.delete(ROLES, "list-pods", "demo")
    assert missing_role.value.message.endswith(
        ': RBAC: role.rbac.authorization.k8s.io "list-pods" not found'
    )


def kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real kubectl with ``kubeconfig``."""
    assert KUBECTL, "kubectl is needed"
    command = [KUBECTL, "--kubeconfig", str(kubeconfig), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(
    ("name", "question", "answer"),
    [
        ("executor-quarantine", ["delete", "pods", "-n", "demo"], "no"),
        ("executor-delete", ["delete", "pods", "-n", "demo"], "yes"),
        ("executor-delete", ["create", "pods", "--subresource=eviction", "-n", "demo"], "yes"),
        ("executor-quarantine", ["create", "networkpolicies.networking.k8s.io", "-n", "x"], "yes"),
        ("executor-debug", ["patch", "pods", "--subresource=ephemeralcontainers"], "yes"),
        ("executor-debug", ["update", "pods"], "no"),
        ("matcher", ["update", "securityevents", "--subresource=status"], "yes"),
        ("matcher", ["update", "securityevents"], "no"),
        ("matcher", ["list", "adaptivemovingtargetdefenses", "-n", "demo"], "yes"),
        ("ingest-falco", ["create", "events", "-n", "default"], "yes"),
        ("ingest-falco", ["create", "events", "-n", "demo"], "no"),
        ("ingest-falco", ["patch", "securityevents"], "no"),
        ("securityevents-source", ["watch", "securityevents"], "yes"),
        ("timer", ["list", "pods", "--all-namespaces"], "yes"),
    ],
)
def test_kubectl_auth_can_i_answers_per_service_account(
    enforcing: tuple[ApiServer, Path], name: str, question: list[str], answer: str
) -> None:
    done = kubectl(enforcing[1], "auth", "can-i", *question, f"--as={account(name)}")

    assert (done.stdout.strip(), done.returncode) == (answer, 0 if answer == "yes" else 1)


def test_kubectl_auth_can_i_list_and_whoami(enforcing: tuple[ApiServer, Path]) -> None:
    listed = kubectl(enforcing[1], "auth", "can-i", "--list", "-n", "demo",
                     f"--as={account('executor-delete')}").stdout  # fmt: skip
    whoami = kubectl(enforcing[1], "auth", "whoami", f"--as={account('matcher')}").stdout
    admin = kubectl(enforcing[1], "auth", "whoami").stdout

    rows = {line.split()[0]: re.findall(r"\[([^]]*)\]", line)[-1].split()
            for line in listed.splitlines()[1:]}  # fmt: skip
    assert sorted(rows["pods"]) == ["delete", "get"]
    assert rows["pods/eviction"] == ["create"] and "networkpolicies.networking.k8s.io" not in rows
    assert f"Username    {account('matcher')}" in whoami
    assert "system:serviceaccounts:amtd-system" in whoami
    assert "Username    admin" in admin and "system:masters" in admin


def test_an_administrator_impersonates_users_and_groups(enforcing: tuple[ApiServer, Path]) -> None:
    whoami = kubectl(enforcing[1], "auth", "whoami", "--as=alice", "--as-group=auditors").stdout
    can_i = kubectl(enforcing[1], "auth", "can-i", "get", "pods", "-n", "demo", "--as=alice")

    assert "Username    alice" in whoami
    assert "[auditors system:authenticated]" in whoami
    assert can_i.stdout.strip() == "no"  # alice is bound to nothing


def test_only_an_administrator_may_impersonate(
    enforcing: tuple[ApiServer, Path], tmp_path: Path
) -> None:
    server, _ = enforcing
    own = server.write_kubeconfig(tmp_path / "delete", "executor-delete", SYSTEM)

    mine = kubectl(own, "auth", "whoami")
    escalated = kubectl(own, "get", "pods", "-n", "demo", "--as=admin")

    assert f"Username    {account('executor-delete')}" in mine.stdout
    assert escalated.returncode == 1
    assert (
        f'users "admin" is forbidden: User "{account("executor-delete")}" cannot impersonate '
        'resource "users" in API group "" at the cluster scope'
    ) in escalated.stderr


def test_the_decision_follows_upstreams_rule_matching() -> None:
    """resourceNames, ``*`` verbs and ``*/status``, a ClusterRole bound by a RoleBinding."""
    rules = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"], "resourceNames": ["a"]},
             {"apiGroups": ["*"], "resources": ["*/status"], "verbs": ["*"]}]  # fmt: skip
    role = {"metadata": {"name": "probe"}, "rules": rules}
    subject = {"kind": "ServiceAccount", "name": "probe", "namespace": SYSTEM}
    binding = {"metadata": {"name": "probe", "namespace": "demo"}, "subjects": [subject],
               "roleRef": {"kind": "ClusterRole", "name": "probe"}}  # fmt: skip
    index = build_index([], [role], [binding], [])
    probe = service_account_user(SYSTEM, "probe")

    def allowed(verb: str, resource: str, namespace: str, name: str = "", sub: str = "") -> bool:
        return decide(index, Attributes(probe, verb, "", resource, sub, namespace, name))[0]

    assert allowed("get", "pods", "demo", "a")
    assert not allowed("get", "pods", "demo", "b")
    assert not allowed("list", "pods", "demo")  # a named rule never allows a list
    assert not allowed("get", "pods", "other", "a")  # the RoleBinding counts in demo only
    assert allowed("update", "deployments", "demo", "x", "status")
    assert not allowed("update", "deployments", "demo", "x")
    assert decide(index, Attributes(master_user("root"), "delete", "", "nodes", name="n"))[0]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    """The whole local stack, which runs the stand-in enforcing."""
    with run_stack(tmp_path_factory.mktemp("rbac-stack")) as running:
        yield running


def test_on_the_running_stack_a_function_is_held_to_its_role(live: LiveStack) -> None:
    create_namespace(live.cluster, "demo")
    create_pod(live.cluster, "demo", "target")
    identities = live.stack.state_dir / "kubeconfigs"
    quarantine = connect(identities / "executor-quarantine.yaml")
    delete = connect(identities / "executor-delete.yaml")

    with pytest.raises(InvalidError) as refused:
        quarantine.delete(PODS, "target", "demo")
    delete.delete(PODS, "target", "demo", grace_period_seconds=0)

    assert refused.value.status == 403 and account("executor-quarantine") in refused.value.message
    assert kubectl(identities / "executor-quarantine.yaml", "auth", "can-i", "delete", "pods",
                   "-n", "demo").stdout.strip() == "no"  # fmt: skip
    assert denied_calls(live) == [("executor-quarantine", "delete", "pods")]


def test_the_whole_chain_runs_within_the_functions_rbac(live: LiveStack) -> None:
    seen = len(live.api_calls())
    (victim,) = create_workload(live.cluster, "chain", "web", replicas=1)
    create_policy(live.cluster, "chain", [({"type": SHELL_RULE}, "delete")])
    name = victim["metadata"]["name"]

    answer = live.post_alert("ingest-falco", json.dumps(falco_alert("chain", name)))

    assert answer.status_code == 201, answer.text
    event = wait_for_security_event(live.cluster, f"chain/{name}")
    status = wait_for_executions(live.cluster, event["metadata"]["name"])["status"]
    assert [e["result"] for e in status["executions"]] == ["Succeeded"]
    assert live.stack.wait_idle(20)
    users = {r.user for r in live.api_calls(seen)}
    assert {"ingest-falco", "matcher", "executor-delete"} <= users
    assert [r for r in live.api_calls(seen) if r.status in (401, 403)] == []


def denied_calls(live: LiveStack) -> list[tuple[str, str, str]]:
    """(user, verb, resource) of every request the stack's stand-in refused (401 or 403)."""
    return [(r.user, r.verb, r.resource) for r in live.api_calls() if r.status in (401, 403)]
