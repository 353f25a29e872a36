"""RBAC as kube-apiserver's authorizer evaluates it, from the stored Roles and bindings (pure).

``build_index`` turns the stored Roles, ClusterRoles, RoleBindings and ClusterRoleBindings into
grants by subject (a ClusterRoleBinding grants its ClusterRole everywhere, a RoleBinding its Role
or ClusterRole only in its own namespace); ``decide`` allows a request when one grant of the
user's name or groups has a rule matching its verb, API group, resource (``pods/status``,
``*/status``, ``*``), resourceNames and scope, as upstream's ``RuleAllows`` does. system:masters
is allowed everything, as upstream's privileged-group authorizer does; every authenticated user
may read discovery, version and health and ask what it may do (the bootstrap roles
system:discovery, system:public-info-viewer and system:basic-user, which are not stored here).
Aggregated ClusterRoles (``aggregationRule``) are not evaluated. ``RbacCache`` keeps the index
until an RBAC object changes; it does no I/O of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from amtd.model.objects import Object

from .apierrors import ApiError
from .authenticating import AUTHENTICATED, UserInfo, service_account_user

RBAC_GROUP = "rbac.authorization.k8s.io"


@dataclass(frozen=True)
class Rule:
    """One PolicyRule, as sets for cheap matching."""

    verbs: frozenset[str]
    groups: frozenset[str] = frozenset()
    resources: frozenset[str] = frozenset()
    names: frozenset[str] = frozenset()
    urls: tuple[str, ...] = ()


@dataclass(frozen=True)
class Grant:
    """Rules a binding gives, in ``namespace`` ("" = everywhere); ``error`` names a missing role."""

    namespace: str
    rules: tuple[Rule, ...]
    error: str = ""


@dataclass(frozen=True)
class Attributes:
    """What one request asks to do, as upstream's authorizer.Attributes."""

    user: UserInfo
    verb: str
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""
    resource_request: bool = True


@dataclass(frozen=True)
class RbacIndex:
    """Grants by user name (ServiceAccount subjects as their user name) and by group."""

    users: Mapping[str, tuple[Grant, ...]]
    groups: Mapping[str, tuple[Grant, ...]]


def _rule(raw: Object) -> Rule:
    return Rule(
        frozenset(raw.get("verbs") or ()),
        frozenset(raw.get("apiGroups") or ()),
        frozenset(raw.get("resources") or ()),
        frozenset(raw.get("resourceNames") or ()),
        tuple(raw.get("nonResourceURLs") or ()),
    )


BOOTSTRAP = Grant(
    "",
    (
        _rule({"verbs": ["create"], "apiGroups": ["authorization.k8s.io"],
               "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]}),
        _rule({"verbs": ["create"], "apiGroups": ["authentication.k8s.io"],
               "resources": ["selfsubjectreviews"]}),
        _rule({"verbs": ["get"], "nonResourceURLs": [
            "/api", "/api/*", "/apis", "/apis/*", "/openapi", "/openapi/*", "/version",
            "/version/", "/healthz", "/livez", "/readyz"]}),
    ),
)  # fmt: skip


def _subject_keys(subject: Object, binding_namespace: str) -> tuple[str, str] | None:
    kind, name = subject.get("kind"), str(subject.get("name", ""))
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return "user", service_account_user(str(namespace), name).name
    if kind in ("User", "Group"):
        return ("user" if kind == "User" else "group"), name
    return None


def build_index(
    roles: Iterable[Object], cluster_roles: Iterable[Object],
    role_bindings: Iterable[Object], cluster_role_bindings: Iterable[Object],
) -> RbacIndex:  # fmt: skip
    """Grants by subject from the stored RBAC objects."""
    rules_of = {
        ("ClusterRole", "", c["metadata"]["name"]): tuple(map(_rule, c.get("rules") or ()))
        for c in cluster_roles
    }
    for role in roles:
        meta = role["metadata"]
        rules_of[("Role", meta.get("namespace", ""), meta["name"])] = tuple(
            map(_rule, role.get("rules") or ())
        )
    found: dict[tuple[str, str], list[Grant]] = {("group", AUTHENTICATED): [BOOTSTRAP]}
    bindings = [(b, "") for b in cluster_role_bindings]
    bindings += [(b, str(b["metadata"].get("namespace", ""))) for b in role_bindings]
    for binding, namespace in bindings:
        grant = _grant(binding, namespace, rules_of)
        for subject in binding.get("subjects") or ():
            key = _subject_keys(subject, namespace)
            if key is not None:
                found.setdefault(key, []).append(grant)
    users = {name: tuple(g) for (kind, name), g in found.items() if kind == "user"}
    groups = {name: tuple(g) for (kind, name), g in found.items() if kind == "group"}
    return RbacIndex(users, groups)


RoleKey = tuple[str, str, str]  # (kind, namespace or "", name)


def _grant(binding: Object, namespace: str, rules_of: Mapping[RoleKey, tuple[Rule, ...]]) -> Grant:
    ref = binding.get("roleRef") or {}
    kind, name = str(ref.get("kind", "")), str(ref.get("name", ""))
    key = (kind, namespace if kind == "Role" else "", name)
    if key not in rules_of:
        return Grant(namespace, (), f'{kind.lower()}.{RBAC_GROUP} "{name}" not found')
    return Grant(namespace, rules_of[key])


def grants_of(index: RbacIndex, user: UserInfo) -> list[Grant]:
    """Every grant the user holds through its name or its groups."""
    grants = list(index.users.get(user.name, ()))
    for group in user.groups:
        grants.extend(index.groups.get(group, ()))
    return grants


def _matches_resource(rule: Rule, resource: str, subresource: str) -> bool:
    if "*" in rule.resources:
        return True
    if (f"{resource}/{subresource}" if subresource else resource) in rule.resources:
        return True
    return bool(subresource) and f"*/{subresource}" in rule.resources


def _matches_url(rule: Rule, path: str) -> bool:
    return any(
        url == "*" or url == path or (url.endswith("*") and path.startswith(url[:-1]))
        for url in rule.urls
    )


def rule_allows(rule: Rule, attrs: Attributes) -> bool:
    """Whether one rule allows the request (upstream's RuleAllows)."""
    if not ("*" in rule.verbs or attrs.verb in rule.verbs):
        return False
    if not attrs.resource_request:
        return _matches_url(rule, attrs.path)
    return (
        ("*" in rule.groups or attrs.group in rule.groups)
        and _matches_resource(rule, attrs.resource, attrs.subresource)
        and (not rule.names or attrs.name in rule.names)
    )


def decide(index: RbacIndex, attrs: Attributes) -> tuple[bool, str]:
    """(allowed, reason): the reason names bindings whose role is missing, as upstream's does."""
    if attrs.user.is_master:
        return True, ""
    errors: list[str] = []
    for grant in grants_of(index, attrs.user):
        if grant.namespace and grant.namespace != attrs.namespace:
            continue
        if any(rule_allows(rule, attrs) for rule in grant.rules):
            return True, ""
        if grant.error:
            errors.append(grant.error)
    if not errors:
        return False, ""
    return False, "RBAC: " + (errors[0] if len(errors) == 1 else f"[{', '.join(errors)}]")


def rules_in(index: RbacIndex, user: UserInfo, namespace: str) -> list[Rule]:
    """The rules that apply to the user in ``namespace`` (SelfSubjectRulesReview)."""
    if user.is_master:
        anything = frozenset("*")
        return [Rule(anything, anything, anything), Rule(anything, urls=("*",))]
    grants = grants_of(index, user)
    return [r for g in grants if g.namespace in ("", namespace) for r in g.rules]


def forbidden(attrs: Attributes, reason: str = "") -> ApiError:
    """403 worded as the real server words it."""
    user = attrs.user.name
    if not attrs.resource_request:
        message = f'forbidden: User "{user}" cannot {attrs.verb} path "{attrs.path}"'
        return ApiError(403, message + (f": {reason}" if reason else ""), "Forbidden")
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    scope = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    why = f'User "{user}" cannot {attrs.verb} resource "{resource}" in API group "{attrs.group}" {scope}'  # noqa: E501
    qualified = f"{attrs.resource}.{attrs.group}" if attrs.group else attrs.resource
    subject = f'{qualified} "{attrs.name}"' if attrs.name else qualified
    details = {"name": attrs.name, "group": attrs.group, "kind": attrs.resource}
    message = f"{subject} is forbidden: {why}" + (f": {reason}" if reason else "")
    return ApiError(403, message, "Forbidden", {k: v for k, v in details.items() if v})


class RbacCache:
    """The index, rebuilt on first use after an RBAC object changed (``invalidate``)."""

    def __init__(self, load: Callable[[], RbacIndex]) -> None:
        self._load = load
        self._lock = threading.Lock()
        self._generation = 0
        self._built: tuple[int, RbacIndex] | None = None

    def invalidate(self) -> None:
        """An RBAC object was written or removed."""
        with self._lock:
            self._generation += 1

    def index(self) -> RbacIndex:
        """The current index (built outside the lock; a write meanwhile rebuilds it again)."""
        with self._lock:
            generation, built = self._generation, self._built
        if built is not None and built[0] == generation:
            return built[1]
        index = self._load()
        with self._lock:
            self._built = (generation, index)
        return index
