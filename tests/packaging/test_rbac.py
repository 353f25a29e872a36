"""Least privilege: every RBAC rule is used by the code it is for, and the code needs no more.

Static check (amtd_packaging.permissions): from each function's target, the API calls its code can
reach, as (group, resource, subresource, verb, scope): a namespaced Role (or a RoleBinding) counts
only in its namespace, a ClusterRole bound cluster-wide only where the code needs cluster-wide
access (cluster-scoped resources, namespaces known only at run time). A call whose resource the
check cannot resolve fails it. "Granted but never referenced" is exact and
checked for every identity. "Referenced but not granted" is checked for every function except
the executors, whose one shared code path picks delete or quarantine at run time (the static
reach covers both); tests/functions/test_executor_rbac.py compares their rules with the calls
they really send to the API stand-in, both ways.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from amtd_packaging.permissions import (
    Permission,
    UnresolvedCallError,
    code_permissions,
    expand_rules,
    rbac_permissions,
)
from amtd_stack.manifests import Manifest
from amtd_stack.running.definitions import FunctionDefinition

ROOT = Path(__file__).resolve().parents[2]
EXECUTORS = {"executor-delete", "executor-quarantine", "executor-debug"}
FUNCTION_NAMES = sorted(
    path.parent.name if path.parent.parent.name != "executors" else f"executor-{path.parent.name}"
    for path in (ROOT / "functions").rglob("func.yaml")
)
SECURITY_EVENTS = ("amtd.r6security.com", "securityevents", "")
# Where a function's namespaces known only at run time can be. dead-letters writes its Event next
# to the involved object: the Broker (its own namespace, AMTD_NAMESPACE) or, for a cluster-scoped
# SecurityEvent, default (tests/functions/test_dead_letters.py shows both).
# notify reads the DeadLetter Event a notice names, in those same two (refusing any other).
RUNTIME_NAMESPACES = {
    "dead-letters": ("amtd-system", "default"),
    "notify": ("amtd-system", "default"),
}


def describe(permissions: set[Permission]) -> list[str]:
    """Sorted readable form for assertion messages."""
    return sorted(p.describe() for p in permissions)


def permissions_of(function: FunctionDefinition) -> set[Permission]:
    """What the function's code can call."""
    runtime = RUNTIME_NAMESPACES.get(function.name, ())
    main = function.folder / "main.py"
    return code_permissions(main, function.target, ROOT / "src", runtime_namespaces=runtime)


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_every_granted_permission_is_used_by_the_code(
    name: str, manifests: list[Manifest], functions: dict[str, FunctionDefinition]
) -> None:
    assert name in functions, f"functions/: no main.py for {name} yet"
    function = functions[name]
    granted = rbac_permissions(manifests, function.namespace, function.service_account)
    assert granted, f"no RBAC rules for ServiceAccount {function.service_account}"
    assert describe(granted - permissions_of(function)) == []


@pytest.mark.parametrize("name", sorted(set(FUNCTION_NAMES) - EXECUTORS))
def test_every_call_the_code_makes_is_granted(
    name: str, manifests: list[Manifest], functions: dict[str, FunctionDefinition]
) -> None:
    assert name in functions, f"functions/: no main.py for {name} yet"
    function = functions[name]
    granted = rbac_permissions(manifests, function.namespace, function.service_account)
    assert describe(permissions_of(function) - granted) == []


def test_the_source_only_watches_security_events(manifests: list[Manifest]) -> None:
    granted = rbac_permissions(manifests, "amtd-system", "securityevents-source")
    assert granted == {Permission(*SECURITY_EVENTS, verb) for verb in ("get", "list", "watch")}


@pytest.mark.parametrize("account", ["ingest-falco", "ingest-kubearmor", "ingest-alertmanager"])
def test_ingest_can_only_add(manifests: list[Manifest], account: str) -> None:
    # no patch/update: a repeat alert must never rewrite a decided event's spec or status
    granted = rbac_permissions(manifests, "amtd-system", account)
    assert granted == {
        Permission(*SECURITY_EVENTS, "create"),
        Permission(*SECURITY_EVENTS, "get"),
        Permission("", "events", "", "create", "default"),
    }
    namespaces = {m.namespace for m in manifests if m.kind == "Role" and account in m.name}
    assert namespaces == {"default"}  # its Events right only where SecurityEvents' Events live


def test_no_rule_uses_wildcards(manifests: list[Manifest]) -> None:
    rules = [
        rule for m in manifests if m.kind in ("Role", "ClusterRole") for rule in m.obj["rules"]
    ]
    assert rules
    for permission in expand_rules(rules):
        assert "*" not in (permission.group, permission.resource, permission.verb), permission


def test_an_unused_rule_is_caught(
    manifests: list[Manifest], functions: dict[str, FunctionDefinition]
) -> None:
    extra = Manifest(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "amtd-matcher"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]}],
        },
        ROOT / "knative" / "rbac" / "matcher.yaml",
    )
    matcher = functions["matcher"]
    granted = rbac_permissions([*manifests, extra], "amtd-system", "matcher")
    assert describe(granted - permissions_of(matcher)) == ["delete core/pods"]


def test_static_analysis_follows_calls_and_ignores_unreached_code(tmp_path: Path) -> None:
    main = tmp_path / "main.py"
    main.write_text(
        "from amtd import kubeapi\n"
        "from amtd.kube.api import PODS, SECURITY_EVENTS\n\n"
        "def entry(request):\n"
        "    return helper(kubeapi.shared_cluster())\n\n"
        "def helper(cluster):\n"
        "    cluster.patch(kubeapi.SECURITY_EVENTS, 'n', {}, sub='status')\n"
        "    cluster.mutate_status(SECURITY_EVENTS, 'n', lambda o: None)\n"
        "    return cluster.find(PODS, 'p', 'ns')\n\n"
        "def unused(cluster):\n"
        "    cluster.delete(PODS, 'p', 'ns')\n"
    )
    found = code_permissions(main, "entry", ROOT / "src")
    assert describe(found) == [
        "get amtd.r6security.com/securityevents",
        "get core/pods in ns",
        "patch amtd.r6security.com/securityevents/status",
        "update amtd.r6security.com/securityevents/status",
    ]


def bind(kind: str, name: str, namespace: str = "", rules: list[dict[str, list[str]]] | None = None,
         binding: str = "") -> list[Manifest]:  # fmt: skip
    """A role for ServiceAccount amtd-system/probe and its binding (``binding`` kind)."""
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": meta,
        "rules": rules or [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
    }
    bound = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": binding or ("RoleBinding" if kind == "Role" else "ClusterRoleBinding"),
        "metadata": meta,
        "roleRef": {"kind": kind, "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": "probe", "namespace": "amtd-system"}],
    }
    return [Manifest(role, ROOT / "x.yaml"), Manifest(bound, ROOT / "x.yaml")]  # fmt: skip


def test_scope_is_compared_as_well_as_verbs(tmp_path: Path) -> None:
    main = tmp_path / "main.py"
    main.write_text(
        "from amtd.kube.api import EVENTS, PODS\n\n"
        "HOME = 'amtd-system'\n\n"
        "def entry(cluster, target):\n"
        "    cluster.get(PODS, target.name, target.namespace)\n"
        "    cluster.create(EVENTS, {}, HOME)\n"
    )
    needed = code_permissions(main, "entry", ROOT / "src")
    assert describe(needed) == ["create core/events in amtd-system", "get core/pods"]
    # a Role can only grant in its namespace: the run-time namespace needs a ClusterRole
    in_a_role = rbac_permissions(bind("Role", "r", "amtd-system"), "amtd-system", "probe")
    assert describe(needed - in_a_role) == ["create core/events in amtd-system", "get core/pods"]
    # a ClusterRole bound by a RoleBinding is still confined to the binding's namespace
    confined = rbac_permissions(bind("ClusterRole", "c", "amtd-system", binding="RoleBinding"),
                                "amtd-system", "probe")  # fmt: skip
    assert describe(confined) == ["get core/pods in amtd-system"]
    # a cluster-wide grant for what is only used in one namespace is too broad
    events = [{"apiGroups": [""], "resources": ["events"], "verbs": ["create"]}]
    too_broad = rbac_permissions(bind("ClusterRole", "e", rules=events), "amtd-system", "probe")
    assert describe(too_broad - needed) == ["create core/events"]


def test_cluster_scoped_resources_need_a_cluster_role(
    manifests: list[Manifest], functions: dict[str, FunctionDefinition]
) -> None:
    rules = [{"apiGroups": ["amtd.r6security.com"], "resources": ["securityevents"],
              "verbs": ["get"]}]  # fmt: skip
    granted = rbac_permissions(bind("Role", "s", "amtd-system", rules), "amtd-system", "probe")
    needed = permissions_of(functions["matcher"])
    assert Permission(*SECURITY_EVENTS, "get") in needed - granted  # the Role's grant is no use
    assert describe(granted - needed) == ["get amtd.r6security.com/securityevents in amtd-system"]


def test_a_resource_passed_through_a_variable_or_parameter_is_resolved(tmp_path: Path) -> None:
    main = tmp_path / "main.py"
    main.write_text(
        "from amtd.kube.api import NETWORK_POLICIES, PODS, Resource\n\n"
        "def entry(cluster, flag):\n"
        "    kind = PODS if flag else NETWORK_POLICIES\n"
        "    cluster.patch(kind, 'n', {}, 'ns')\n"
        "    remove(cluster, NETWORK_POLICIES, 'n')\n\n"
        "def remove(cluster, resource: Resource, name):\n"
        "    cluster.delete(resource, name, 'ns')\n"
    )
    assert describe(code_permissions(main, "entry", ROOT / "src")) == [
        "delete networking.k8s.io/networkpolicies in ns",
        "patch core/pods in ns",
        "patch networking.k8s.io/networkpolicies in ns",
    ]


@pytest.mark.parametrize(
    "body",
    [
        "    cluster.delete(pick(), 'n', 'ns')\n",  # computed at run time
        "    kind = pick()\n    cluster.delete(kind, 'n', 'ns')\n",  # assigned from a call
        "    remove(cluster, pick())\n\n"
        "def remove(cluster, resource):\n    cluster.delete(resource, 'n', 'ns')\n",
    ],
    ids=["computed", "assigned", "parameter"],
)
def test_a_call_whose_resource_cannot_be_resolved_fails_the_check(
    tmp_path: Path, body: str
) -> None:
    main = tmp_path / "main.py"
    main.write_text("def pick():\n    return None\n\ndef entry(cluster):\n" + body)
    with pytest.raises(UnresolvedCallError, match=r"cluster\.delete"):
        code_permissions(main, "entry", ROOT / "src")
