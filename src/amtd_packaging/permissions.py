"""Permissions: what RBAC grants a ServiceAccount, and which API calls a function's code makes.

Both sides are sets of :class:`Permission` ``(group, resource, subresource, verb)``, so they can
be compared both ways. The code side is static: starting from the function's target in main.py,
every function it references (called or passed as a callback, across the core modules it
imports, methods matched by name) is followed, and each call of a ``Cluster`` verb whose first
argument is one of :mod:`amtd.kube.api`'s Resource constants becomes a Permission. It
over-approximates (a branch chosen at run time counts as taken), so "granted but never
referenced" is exact while "referenced but not granted" may include branches never run.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from amtd.kube import api as kubeapi
from amtd_packaging.pinning import find_core_file, trace_imports
from amtd_stack.manifests import Manifest

RBAC_GROUP = "rbac.authorization.k8s.io"
# Cluster method -> (verb on the resource, verb on the ``sub=`` subresource or None).
CLUSTER_VERBS: dict[str, tuple[str, ...]] = {
    "get": ("get",),
    "find": ("get",),
    "list": ("list",),
    "create": ("create",),
    "patch": ("patch",),
    "replace": ("update",),
    "delete": ("delete",),
}
RESOURCES = {
    name: value for name, value in vars(kubeapi).items() if isinstance(value, kubeapi.Resource)
}


@dataclass(frozen=True, order=True)
class Permission:
    """One verb on one (sub)resource of one API group ("" = core)."""

    group: str
    resource: str
    subresource: str
    verb: str

    def describe(self) -> str:
        """``verb group/resource[/sub]`` for messages."""
        sub = f"/{self.subresource}" if self.subresource else ""
        return f"{self.verb} {self.group or 'core'}/{self.resource}{sub}"


def granted_permissions(manifests: Iterable[Manifest], namespace: str, account: str) -> set[str]:
    """Names of the Roles/ClusterRoles bound to ServiceAccount ``namespace/account``."""
    names = set()
    for manifest in manifests:
        if manifest.kind not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        subjects = manifest.obj.get("subjects") or []
        if any(is_subject(s, namespace, account, manifest.namespace) for s in subjects):
            ref = manifest.obj.get("roleRef") or {}
            scope = manifest.namespace if ref.get("kind") == "Role" else ""
            names.add(f"{ref.get('kind')}:{scope}:{ref.get('name')}")
    return names


def is_subject(subject: dict[str, str], namespace: str, account: str, default_ns: str) -> bool:
    """True when a binding subject is this ServiceAccount."""
    return (
        subject.get("kind") == "ServiceAccount"
        and subject.get("name") == account
        and (subject.get("namespace") or default_ns) == namespace
    )


def rbac_permissions(manifests: list[Manifest], namespace: str, account: str) -> set[Permission]:
    """Every Permission the RBAC objects grant the ServiceAccount (wildcards kept literally)."""
    bound = granted_permissions(manifests, namespace, account)
    found: set[Permission] = set()
    for manifest in manifests:
        if manifest.kind not in ("Role", "ClusterRole"):
            continue
        scope = manifest.namespace if manifest.kind == "Role" else ""
        if f"{manifest.kind}:{scope}:{manifest.name}" in bound:
            found.update(expand_rules(manifest.obj.get("rules") or []))
    return found


def expand_rules(rules: Iterable[dict[str, list[str]]]) -> Iterator[Permission]:
    """One Permission per group x resource x verb of each rule."""
    for rule in rules:
        for group in rule.get("apiGroups") or []:
            for resource in rule.get("resources") or []:
                plural, _, sub = resource.partition("/")
                for verb in rule.get("verbs") or []:
                    yield Permission(group, plural, sub, verb)


@dataclass
class CodeIndex:
    """Every def of the traced files: what it references and which API calls it makes."""

    references: dict[str, set[str]]
    calls: dict[str, set[Permission]]

    def reach(self, start: str) -> set[Permission]:
        """Permissions of ``start`` and of every def it references, transitively."""
        seen, pending, found = {start, "<module>"}, [start, "<module>"], set()
        while pending:
            name = pending.pop()
            found |= self.calls.get(name, set())
            for other in self.references.get(name, set()) - seen:
                seen.add(other)
                pending.append(other)
        return found


def code_permissions(
    main: Path, target: str, core_root: Path, core: str = "amtd"
) -> set[Permission]:
    """The Permissions the function's target can reach in main.py and the core it imports."""
    trace = trace_imports(main, core_root, core)
    files = [main] + [f for m in sorted(trace.core_modules) if (f := find_core_file(m, core_root))]
    index = CodeIndex({}, {})
    for path in files:
        index_file(ast.parse(path.read_text(encoding="utf-8")), index)
    return index.reach(target)


def index_file(tree: ast.Module, index: CodeIndex) -> None:
    """Add a module's defs (by bare name; methods too) and its module-level code to the index."""
    for node in tree.body:
        for name, body in named_bodies(node):
            index.references.setdefault(name, set()).update(referenced_names(body))
            index.calls.setdefault(name, set()).update(api_calls(body))


def named_bodies(node: ast.stmt) -> Iterator[tuple[str, ast.AST]]:
    """(name, node) of a top-level def, of each method of a class, or ``<module>`` for the rest."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        yield node.name, node
    elif isinstance(node, ast.ClassDef):
        for item in node.body:
            yield from named_bodies(item)
    else:
        yield "<module>", node


def referenced_names(body: ast.AST) -> set[str]:
    """Bare names and attribute names a body loads: candidates for defs it may run."""
    names = set()
    for node in ast.walk(body):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
    return names


def api_calls(body: ast.AST) -> set[Permission]:
    """Permissions of the ``<cluster>.<verb>(RESOURCE, ...)`` calls in a body."""
    found: set[Permission] = set()
    for node in ast.walk(body):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            found |= call_permissions(node.func.attr, node)
    return found


def call_permissions(method: str, call: ast.Call) -> set[Permission]:
    """The Permissions one Cluster method call needs; empty when it is not one."""
    resource = read_resource(call)
    if resource is None or (method not in CLUSTER_VERBS and method != "mutate_status"):
        return set()
    if method == "mutate_status":  # read the object, write its status
        return {as_permission(resource, "", "get"), as_permission(resource, "status", "update")}
    sub = next((read_string(k.value) for k in call.keywords if k.arg == "sub"), "")
    return {as_permission(resource, sub, CLUSTER_VERBS[method][0])}


def read_resource(call: ast.Call) -> kubeapi.Resource | None:
    """The Resource constant a call passes first (or as ``resource=``), if it is one."""
    argument = call.args[0] if call.args else None
    argument = next((k.value for k in call.keywords if k.arg == "resource"), argument)
    name = argument.id if isinstance(argument, ast.Name) else None
    name = argument.attr if isinstance(argument, ast.Attribute) else name
    return RESOURCES.get(name or "")


def read_string(node: ast.expr) -> str:
    """A string literal's value ("" for anything else)."""
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else ""


def as_permission(resource: kubeapi.Resource, sub: str, verb: str) -> Permission:
    """The Permission for a verb on a kubeapi Resource (or its subresource)."""
    return Permission(resource.group, resource.plural, sub, verb)
