"""URL paths and HTTP methods to resource targets and verbs (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .apierrors import ApiError
from .handling import Target
from .resources import CREATED_SUBRESOURCES, Registry

NOT_FOUND_MESSAGE = "the server could not find the requested resource"


@dataclass(frozen=True)
class ResourcePath:
    """A parsed /api/v1/... or /apis/<g>/<v>/... path (plural "" = the group version itself)."""

    group: str
    version: str
    namespace: str = ""
    plural: str = ""
    name: str = ""
    subresource: str = ""
    watch_prefix: bool = False


def _split_namespace(parts: list[str]) -> tuple[str, list[str]]:
    """Peel `namespaces/<ns>/` off unless the path addresses a namespace (or its status)."""
    addresses_namespace = len(parts) == 3 and parts[2] in ("status", "finalize")
    if len(parts) >= 3 and parts[0] == "namespaces" and not addresses_namespace:
        return parts[1], parts[2:]
    return "", parts


def parse_resource_path(path: str) -> ResourcePath | None:
    """Parse an API path; None when it is not under /api/v1 or /apis/<g>/<v>."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 2:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    watch = rest[:1] == ["watch"]
    namespace, rest = _split_namespace(rest[1:] if watch else rest)
    if len(rest) > 3:
        raise ApiError(404, NOT_FOUND_MESSAGE, "NotFound")
    rest += [""] * (3 - len(rest))
    return ResourcePath(group, version, namespace, rest[0], rest[1], rest[2], watch)


def is_truthy(value: str | None) -> bool:
    """Query-parameter booleans as the API server reads them."""
    return (value or "").lower() in ("true", "1")


def resolve_target(registry: Registry, route: ResourcePath) -> Target:
    """The Target for a route; 404 for unknown types, subresources, or the wrong scope."""
    rtype = registry.lookup(route.group, route.version, route.plural)
    if rtype is None:
        raise ApiError(404, NOT_FOUND_MESSAGE, "NotFound")
    if route.subresource and route.subresource not in rtype.subresources:
        raise ApiError(404, NOT_FOUND_MESSAGE, "NotFound")
    if route.namespace and not rtype.namespaced:
        raise ApiError(404, NOT_FOUND_MESSAGE, "NotFound")
    if rtype.namespaced and not route.namespace and route.name:
        raise ApiError(404, NOT_FOUND_MESSAGE, "NotFound")
    return Target(rtype, route.namespace, route.name, route.subresource)


def method_not_allowed(method: str) -> ApiError:
    """405 for a method the addressed path does not support."""
    return ApiError(
        405,
        f"the server does not allow this method on the requested resource ({method})",
        "MethodNotAllowed",
    )


def select_verb(method: str, route: ResourcePath, query: Mapping[str, str]) -> str:
    """The Kubernetes verb of a request; 405 when the method does not fit the path."""
    named = bool(route.name)
    if method == "GET":
        if route.watch_prefix or is_truthy(query.get("watch")):
            return "watch"
        return "get" if named else "list"
    if route.subresource in CREATED_SUBRESOURCES and route.name:
        if method != "POST":
            raise method_not_allowed(method)
        return "create"
    if route.subresource and method not in ("PUT", "PATCH"):
        raise method_not_allowed(method)
    verbs = {
        ("POST", False): "create",
        ("PUT", True): "update",
        ("PATCH", True): "patch",
        ("DELETE", True): "delete",
        ("DELETE", False): "deletecollection",
    }
    verb = verbs.get((method, named))
    if verb is None:
        raise method_not_allowed(method)
    return verb


def check_collection_scope(target: Target, verb: str) -> None:
    """Across all namespaces only list and watch exist (the real server answers 404)."""
    if target.rtype.namespaced and not target.namespace and verb not in ("list", "watch"):
        raise ApiError(404, NOT_FOUND_MESSAGE, "NotFound")
