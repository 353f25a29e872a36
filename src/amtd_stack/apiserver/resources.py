"""The resource types the stand-in serves: built-in catalogue plus CRD-registered types.

A `ResourceType` is everything routing, discovery, validation and tables need to know about one
group/version/plural. The `Registry` is thread-safe; CRDs add and remove types at run time.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
SUBRESOURCE_VERBS = ("get", "patch", "update")
CREATED_SUBRESOURCES = frozenset({"eviction"})  # POST-only subresources (pods/eviction)
# Subresources served as another group/version/kind than their object's.
SUBRESOURCE_KINDS: Mapping[str, tuple[str, str, str]] = {"scale": ("autoscaling", "v1", "Scale")}

# Subresources and the part of the object each one writes (`status` -> .status only).
SUBRESOURCE_PATHS: Mapping[str, tuple[str, ...]] = {
    "status": ("status",),
    "ephemeralcontainers": ("spec", "ephemeralContainers"),
}


@dataclass(frozen=True)
class PrinterColumn:
    """One additionalPrinterColumns entry (name, JSONPath, type, priority)."""

    name: str
    json_path: str
    type: str = "string"
    format: str = ""
    description: str = ""
    priority: int = 0


@dataclass(frozen=True)
class ResourceType:
    """One servable resource: group/version/plural with its kind, scope and extras."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    printer_columns: tuple[PrinterColumn, ...] = ()
    schema: Mapping[str, Any] | None = field(default=None, compare=False, hash=False)
    crd_name: str = ""

    @property
    def api_version(self) -> str:
        """The apiVersion string objects of this type carry."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> tuple[str, str]:
        """(group, version) pair, "" group for core."""
        return (self.group, self.version)

    @property
    def is_custom(self) -> bool:
        """Whether a CustomResourceDefinition registered this type."""
        return bool(self.crd_name)


def _builtin(
    group: str,
    plural: str,
    kind: str,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    subresources: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
) -> ResourceType:
    version = "v1"
    return ResourceType(
        group=group,
        version=version,
        plural=plural,
        kind=kind,
        namespaced=namespaced,
        singular=kind.lower(),
        short_names=short,
        categories=categories,
        subresources=subresources,
    )


RBAC = "rbac.authorization.k8s.io"
BUILTINS: tuple[ResourceType, ...] = (
    _builtin("", "namespaces", "Namespace", False, ("ns",), ("status",)),
    _builtin("", "nodes", "Node", False, ("no",), ("status",)),
    _builtin(
        "", "pods", "Pod", True, ("po",), ("status", "ephemeralcontainers", "eviction"), ("all",)
    ),
    _builtin("", "events", "Event", True, ("ev",)),
    _builtin("", "services", "Service", True, ("svc",), ("status",), ("all",)),
    _builtin("", "endpoints", "Endpoints", True, ("ep",)),
    _builtin("", "serviceaccounts", "ServiceAccount", True, ("sa",)),
    _builtin("", "secrets", "Secret", True),
    _builtin("", "configmaps", "ConfigMap", True, ("cm",)),
    _builtin("", "resourcequotas", "ResourceQuota", True, ("quota",), ("status",)),
    _builtin("", "limitranges", "LimitRange", True, ("limits",)),
    _builtin("apps", "deployments", "Deployment", True, ("deploy",), ("status", "scale"), ("all",)),
    _builtin("apps", "replicasets", "ReplicaSet", True, ("rs",), ("status", "scale"), ("all",)),
    _builtin("apps", "daemonsets", "DaemonSet", True, ("ds",), ("status",), ("all",)),
    _builtin("batch", "jobs", "Job", True, (), ("status",), ("all",)),
    _builtin("networking.k8s.io", "networkpolicies", "NetworkPolicy", True, ("netpol",)),
    _builtin("coordination.k8s.io", "leases", "Lease", True),
    _builtin("policy", "poddisruptionbudgets", "PodDisruptionBudget", True, ("pdb",), ("status",)),
    _builtin(RBAC, "roles", "Role", True),
    _builtin(RBAC, "rolebindings", "RoleBinding", True),
    _builtin(RBAC, "clusterroles", "ClusterRole", False),
    _builtin(RBAC, "clusterrolebindings", "ClusterRoleBinding", False),
    _builtin(
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        False,
        ("crd", "crds"),
        ("status",),
    ),
)


class Registry:
    """Thread-safe map of (group, version, plural) -> ResourceType."""

    def __init__(self, types: tuple[ResourceType, ...] = BUILTINS) -> None:
        self._lock = threading.Lock()
        self._types: dict[tuple[str, str, str], ResourceType] = {
            (t.group, t.version, t.plural): t for t in types
        }

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        """The type served at group/version/plural, or None."""
        with self._lock:
            return self._types.get((group, version, plural))

    def find_kind(self, api_version: str, kind: str) -> ResourceType | None:
        """The type whose objects have this apiVersion and kind, or None."""
        with self._lock:
            for rtype in self._types.values():
                if rtype.api_version == api_version and rtype.kind == kind:
                    return rtype
        return None

    def all(self) -> list[ResourceType]:
        """Every registered type, in registration order."""
        with self._lock:
            return list(self._types.values())

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        """The types served under one group version, in registration order."""
        return [t for t in self.all() if t.group_version == (group, version)]

    def group_versions(self) -> list[tuple[str, str]]:
        """Distinct (group, version) pairs, in registration order."""
        seen: dict[tuple[str, str], None] = {}
        for rtype in self.all():
            seen.setdefault(rtype.group_version, None)
        return list(seen)

    def register(self, rtypes: list[ResourceType]) -> None:
        """Add or replace types (a CRD became established or changed)."""
        with self._lock:
            for rtype in rtypes:
                self._types[(rtype.group, rtype.version, rtype.plural)] = rtype

    def unregister_crd(self, crd_name: str) -> None:
        """Remove every type registered by the named CRD."""
        with self._lock:
            for key in [k for k, t in self._types.items() if t.crd_name == crd_name]:
                del self._types[key]
