"""Least privilege: every RBAC rule is used by the code it is for, and the code needs no more.

Static check (amtd_packaging.permissions): from each function's target, the API calls its code can
reach, as (group, resource, subresource, verb). "Granted but never referenced" is exact and
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
    code_permissions,
    expand_rules,
    rbac_permissions,
)
from amtd_stack.manifests import Manifest
from amtd_stack.running.definitions import FunctionDefinition

ROOT = Path(__file__).resolve().parents[2]
EXECUTORS = {"executor-delete", "executor-quarantine"}
FUNCTION_NAMES = sorted(
    path.parent.name if path.parent.parent.name != "executors" else f"executor-{path.parent.name}"
    for path in (ROOT / "functions").rglob("func.yaml")
)
SECURITY_EVENTS = ("amtd.r6security.com", "securityevents", "")


def describe(permissions: set[Permission]) -> list[str]:
    """Sorted readable form for assertion messages."""
    return sorted(p.describe() for p in permissions)


def permissions_of(function: FunctionDefinition) -> set[Permission]:
    """What the function's code can call."""
    return code_permissions(function.folder / "main.py", function.target, ROOT / "src")


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
        "get core/pods",
        "patch amtd.r6security.com/securityevents/status",
        "update amtd.r6security.com/securityevents/status",
    ]
