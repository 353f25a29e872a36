"""Permissions: what RBAC grants a ServiceAccount, and which API calls a function's code makes.

Both sides are sets of :class:`Permission` ``(group, resource, subresource, verb, scope)``, so
they can be compared both ways; scope is a namespace, or "" for cluster-wide (a ClusterRole bound
by a ClusterRoleBinding: the only grant that covers cluster-scoped resources or a namespace only
known at run time). The code side is static: starting from the function's target in main.py,
every function it references (called or passed as a callback, across the core modules it
imports, methods matched by name) is followed, and each call of a ``Cluster`` verb becomes a
Permission. Its resource is one of :mod:`amtd.kube.api`'s Resource constants, passed directly,
through a local assignment, or through a parameter whose every call site passes one; its
namespace is a string literal or module constant, else cluster-wide. A call on a ``cluster``
whose resource cannot be resolved fails the check (:class:`UnresolvedCallError`): nothing can
hide a call. It over-approximates (a branch chosen at run time counts as taken), so "granted but
never referenced" is exact while "referenced but not granted" may include branches never run.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
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
    "collection_version": ("list",),
    "watch": ("watch",),
    "create": ("create",),
    "patch": ("patch",),
    "replace": ("update",),
    "delete": ("delete",),
}
# Cluster method reading an object and writing its status -> the verb of the write.
STATUS_WRITES = {"mutate_status": "update", "patch_status": "patch"}
# Cluster method -> position of its ``namespace`` argument (None: read from the body at run time).
NAMESPACE_POSITIONS: dict[str, int | None] = {
    "get": 2, "find": 2, "list": 1, "create": 2, "patch": 3, "replace": None, "delete": 2,
    "mutate_status": 3, "patch_status": 3, "collection_version": 1, "watch": 2,
}  # fmt: skip
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
    scope: str = ""  # a namespace, or "" for cluster-wide

    def describe(self) -> str:
        """``verb group/resource[/sub][ in <namespace>]`` for messages."""
        sub = f"/{self.subresource}" if self.subresource else ""
        where = f" in {self.scope}" if self.scope else ""
        return f"{self.verb} {self.group or 'core'}/{self.resource}{sub}{where}"


class UnresolvedCallError(ValueError):
    """A Cluster call whose resource the static check cannot name: it would go unchecked."""


def granted_permissions(manifests: Iterable[Manifest], namespace: str, account: str) -> set[str]:
    """Names of the Roles/ClusterRoles bound to ServiceAccount ``namespace/account``."""
    return set(bound_scopes(manifests, namespace, account))


def is_subject(subject: dict[str, str], namespace: str, account: str, default_ns: str) -> bool:
    """True when a binding subject is this ServiceAccount."""
    return (
        subject.get("kind") == "ServiceAccount"
        and subject.get("name") == account
        and (subject.get("namespace") or default_ns) == namespace
    )


def bound_scopes(
    manifests: Iterable[Manifest], namespace: str, account: str
) -> dict[str, set[str]]:
    """``Kind:namespace:name`` of each role bound to the ServiceAccount -> where it applies.

    A ClusterRoleBinding grants cluster-wide (""); a RoleBinding only in its own namespace, also
    when it refers to a ClusterRole.
    """
    scopes: dict[str, set[str]] = {}
    for manifest in manifests:
        if manifest.kind not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        subjects = manifest.obj.get("subjects") or []
        if any(is_subject(s, namespace, account, manifest.namespace) for s in subjects):
            ref = manifest.obj.get("roleRef") or {}
            home = manifest.namespace if ref.get("kind") == "Role" else ""
            where = manifest.namespace if manifest.kind == "RoleBinding" else ""
            scopes.setdefault(f"{ref.get('kind')}:{home}:{ref.get('name')}", set()).add(where)
    return scopes


def rbac_permissions(manifests: list[Manifest], namespace: str, account: str) -> set[Permission]:
    """Every Permission the RBAC objects grant the ServiceAccount, with its scope (wildcards
    kept literally)."""
    bound = bound_scopes(manifests, namespace, account)
    found: set[Permission] = set()
    for manifest in manifests:
        if manifest.kind not in ("Role", "ClusterRole"):
            continue
        home = manifest.namespace if manifest.kind == "Role" else ""
        for scope in bound.get(f"{manifest.kind}:{home}:{manifest.name}", set()):
            found.update(expand_rules(manifest.obj.get("rules") or [], scope))
    return found


def expand_rules(rules: Iterable[dict[str, list[str]]], scope: str = "") -> Iterator[Permission]:
    """One Permission per group x resource x verb of each rule, in ``scope``."""
    for rule in rules:
        for group in rule.get("apiGroups") or []:
            for resource in rule.get("resources") or []:
                plural, _, sub = resource.partition("/")
                for verb in rule.get("verbs") or []:
                    yield Permission(group, plural, sub, verb, scope)


Def = ast.FunctionDef | ast.AsyncFunctionDef | None  # None: module-level code


@dataclass
class CodeIndex:
    """Every def of the traced files: what it references and which API calls it makes."""

    references: dict[str, set[str]]
    calls: dict[str, set[Permission]]
    unresolved: dict[str, set[str]] = field(default_factory=dict)
    constants: dict[str, set[str]] = field(default_factory=dict)  # module-level strings
    sites: dict[str, list[tuple[ast.Call, Def]]] = field(default_factory=dict)  # callee -> calls
    defs: dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]] = field(default_factory=dict)
    cluster_calls: list[tuple[str, ast.Call, Def]] = field(default_factory=list)

    def reach(self, start: str) -> set[Permission]:
        """Permissions of ``start`` and of every def it references, transitively.

        Raises UnresolvedCallError when a reached def makes a call the check cannot resolve.
        """
        seen, pending, found, hidden = {start, "<module>"}, [start, "<module>"], set(), set()
        while pending:
            name = pending.pop()
            found |= self.calls.get(name, set())
            hidden |= self.unresolved.get(name, set())
            for other in self.references.get(name, set()) - seen:
                seen.add(other)
                pending.append(other)
        if hidden:
            raise UnresolvedCallError("unresolved Cluster calls: " + "; ".join(sorted(hidden)))
        return found


def code_permissions(
    main: Path, target: str, core_root: Path, core: str = "amtd",
    runtime_namespaces: Iterable[str] = (),
) -> set[Permission]:  # fmt: skip
    """The Permissions the function's target can reach in main.py and the core it imports.

    A namespace known only at run time needs a cluster-wide grant, unless ``runtime_namespaces``
    says where this function's run-time namespaces can be (then one Permission per namespace).
    """
    trace = trace_imports(main, core_root, core)
    files = [main] + [f for m in sorted(trace.core_modules) if (f := find_core_file(m, core_root))]
    index = CodeIndex({}, {})
    for path in files:
        index_file(ast.parse(path.read_text(encoding="utf-8")), index, str(path.name))
    resolve_calls(index, tuple(runtime_namespaces))
    return index.reach(target)


def index_file(tree: ast.Module, index: CodeIndex, label: str = "") -> None:
    """Add a module's defs (by bare name; methods too) and its module-level code to the index."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            value = read_string(node.value)
            if isinstance(node.targets[0], ast.Name) and value:
                index.constants.setdefault(node.targets[0].id, set()).add(value)
        if isinstance(node, ast.ClassDef) and node.name == "Cluster":
            continue  # its methods are the verbs themselves
        for name, body in named_bodies(node):
            scope = body if isinstance(body, ast.FunctionDef | ast.AsyncFunctionDef) else None
            if scope is not None:
                index.defs.setdefault(name, []).append(scope)
            index.references.setdefault(name, set()).update(referenced_names(body))
            index.calls.setdefault(name, set())
            for call in (n for n in ast.walk(body) if isinstance(n, ast.Call)):
                index.sites.setdefault(callee_name(call), []).append((call, scope))
                if is_cluster_call(call, scope):
                    index.cluster_calls.append((name, call, scope))


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


def callee_name(call: ast.Call) -> str:
    """``f`` of ``f(...)`` or ``x.f(...)``."""
    func = call.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")


def is_cluster_call(call: ast.Call, scope: Def) -> bool:
    """A Cluster verb called with a Resource constant, on a ``cluster``, or with a parameter
    annotated ``Resource``: one the check must resolve."""
    if not isinstance(call.func, ast.Attribute) or call.func.attr not in NAMESPACE_POSITIONS:
        return False
    owner = call.func.value  # ``cluster``, ``self.cluster``: not ``cluster.get(...)``
    receiver = getattr(owner, "id", getattr(owner, "attr", "")).lower()
    first = resource_argument(call)
    return "cluster" in receiver or resource_constant(first) is not None or (
        isinstance(first, ast.Name) and parameter_annotation(scope, first.id) == "Resource"
    )  # fmt: skip


def resource_argument(call: ast.Call) -> ast.expr | None:
    """What a call passes first (or as ``resource=``)."""
    argument = call.args[0] if call.args else None
    return next((k.value for k in call.keywords if k.arg == "resource"), argument)


def resource_constant(node: ast.expr | None) -> kubeapi.Resource | None:
    """The kubeapi Resource constant an expression names, if it is one."""
    name = node.id if isinstance(node, ast.Name) else None
    name = node.attr if isinstance(node, ast.Attribute) else name
    return RESOURCES.get(name or "")


def parameter_annotation(scope: Def, name: str) -> str | None:
    """The annotation of parameter ``name`` of the def (None when it is not a parameter)."""
    if scope is None:
        return None
    found = next((a for a in all_parameters(scope) if a.arg == name), None)
    return None if found is None else (ast.unparse(found.annotation) if found.annotation else "")


def all_parameters(scope: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.arg]:
    """Positional then keyword-only parameters, without ``self``/``cls``."""
    positional = [*scope.args.posonlyargs, *scope.args.args]
    if positional and positional[0].arg in ("self", "cls"):
        positional = positional[1:]
    return [*positional, *scope.args.kwonlyargs]


def resolve_calls(index: CodeIndex, runtime_namespaces: tuple[str, ...]) -> None:
    """Turn each recorded Cluster call into Permissions, or an unresolved entry of its def."""
    for name, call, scope in index.cluster_calls:
        resources = resolve_resources(index, resource_argument(call), scope, depth=3)
        if resources is None:
            where = f"{name}: {ast.unparse(call)[:80]} (line {call.lineno})"
            index.unresolved.setdefault(name, set()).add(where)
            continue
        for resource in resources:
            index.calls[name] |= call_permissions(
                call, resource, read_scopes(index, call, resource, runtime_namespaces)
            )


def resolve_resources(
    index: CodeIndex, node: ast.expr | None, scope: Def, depth: int
) -> set[kubeapi.Resource] | None:
    """The Resource constants an expression can be: directly, through simple local assignments
    or conditional expressions, or through a parameter every call site fills with one."""
    constant = resource_constant(node)
    if constant is not None:
        return {constant}
    if isinstance(node, ast.IfExp):
        return merge_all(index, [node.body, node.orelse], scope, depth)
    if not isinstance(node, ast.Name) or scope is None or depth <= 0:
        return None
    assigned = [a.value for a in ast.walk(scope) if isinstance(a, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id == node.id for t in a.targets)]  # fmt: skip
    if assigned:
        return merge_all(index, assigned, scope, depth - 1)
    if parameter_annotation(scope, node.id) is None:
        return None
    return resolve_parameter(index, scope, node.id, depth - 1)


def resolve_parameter(
    index: CodeIndex, scope: ast.FunctionDef | ast.AsyncFunctionDef, name: str, depth: int
) -> set[kubeapi.Resource] | None:
    """The Resources every call site passes for parameter ``name`` (None if any is unknown)."""
    position = [a.arg for a in all_parameters(scope)].index(name)
    values: list[tuple[ast.expr, Def]] = []
    for call, caller in index.sites.get(scope.name, []):
        keyword = next((k.value for k in call.keywords if k.arg == name), None)
        value = keyword if keyword is not None else (
            call.args[position] if position < len(call.args) else None)  # fmt: skip
        if value is None:
            return None
        values.append((value, caller))
    found: set[kubeapi.Resource] = set()
    for value, caller in values:
        resources = resolve_resources(index, value, caller, depth)
        if resources is None:
            return None
        found |= resources
    return found or None


def merge_all(
    index: CodeIndex, nodes: list[ast.expr], scope: Def, depth: int
) -> set[kubeapi.Resource] | None:
    """The union of what each expression resolves to; None if any does not resolve."""
    found: set[kubeapi.Resource] = set()
    for node in nodes:
        resources = resolve_resources(index, node, scope, depth)
        if resources is None:
            return None
        found |= resources
    return found


def read_scopes(
    index: CodeIndex, call: ast.Call, resource: kubeapi.Resource, runtime: tuple[str, ...]
) -> set[str]:
    """Where the call acts: "" (cluster-wide) for cluster-scoped resources and namespaces only
    known at run time (or ``runtime``, when given); else the literal or constant namespace."""
    if not resource.namespaced:
        return {""}
    method = callee_name(call)
    position = NAMESPACE_POSITIONS.get(method)
    node = next((k.value for k in call.keywords if k.arg == "namespace"), None)
    if node is None and position is not None and position < len(call.args):
        node = call.args[position]
    if node is None:
        return {""}  # a list across all namespaces, or a namespace read from the body
    if read_string(node):
        return {read_string(node)}
    name = node.id if isinstance(node, ast.Name) else getattr(node, "attr", "")
    return index.constants.get(name) or set(runtime) or {""}


def call_permissions(
    call: ast.Call, resource: kubeapi.Resource, scopes: set[str]
) -> set[Permission]:
    """The Permissions one Cluster method call needs, in each of its scopes."""
    method = callee_name(call)
    if method in STATUS_WRITES:  # read the object, write its status
        needed = [("", "get"), ("status", STATUS_WRITES[method])]
    else:
        sub = next((read_string(k.value) for k in call.keywords if k.arg == "sub"), "")
        needed = [(sub, CLUSTER_VERBS[method][0])]
    return {as_permission(resource, sub, verb, scope) for sub, verb in needed for scope in scopes}


def read_string(node: ast.expr) -> str:
    """A string literal's value ("" for anything else)."""
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else ""


def as_permission(resource: kubeapi.Resource, sub: str, verb: str, scope: str = "") -> Permission:
    """The Permission for a verb on a kubeapi Resource (or its subresource), in ``scope``."""
    return Permission(resource.group, resource.plural, sub, verb, scope)
