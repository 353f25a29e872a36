"""Discovery documents: /version, /api, /api/v1, /apis, /apis/<g>/<v> (OpenAPI: openapi.py).

Only the legacy discovery format is served: kubectl asks for aggregated discovery
(`as=APIGroupDiscoveryList`) but falls back when the answer is plain `application/json`.
"""

from __future__ import annotations

import re

from amtd.model.objects import Object

from .resources import (
    ALL_VERBS,
    CREATED_SUBRESOURCES,
    SUBRESOURCE_KINDS,
    SUBRESOURCE_VERBS,
    Registry,
    ResourceType,
)
from .reviewing import is_review

KUBE_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-amtd",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.23.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}
_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int]:
    """Sort key (higher first) for Kubernetes version names: v2 > v1 > v1beta2 > v1alpha1."""
    found = _VERSION.match(version)
    if not found:
        return (-1, 0, 0)
    major, stage, minor = found.groups()
    return ({None: 2, "beta": 1, "alpha": 0}[stage], int(major), int(minor or 0))


def api_versions(server_address: str) -> Object:
    """GET /api."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _group_entry(group: str, versions: list[str]) -> Object:
    ordered = sorted(versions, key=version_priority, reverse=True)
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in ordered]
    return {"name": group, "versions": entries, "preferredVersion": entries[0]}


def api_groups(registry: Registry) -> Object:
    """GET /apis: every non-core group with its versions."""
    groups: dict[str, list[str]] = {}
    for group, version in registry.group_versions():
        if group:
            groups.setdefault(group, []).append(version)
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group_entry(g, vs) for g, vs in groups.items()],
    }


def api_group(registry: Registry, group: str) -> Object | None:
    """GET /apis/<group>, or None if unknown."""
    versions = [v for g, v in registry.group_versions() if g == group]
    if not group or not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_entry(group, versions)}


def _resource_entries(rtype: ResourceType) -> list[Object]:
    main: Object = {
        "name": rtype.plural,
        "singularName": rtype.singular,
        "namespaced": rtype.namespaced,
        "kind": rtype.kind,
        "verbs": ["create"] if is_review(rtype) else list(ALL_VERBS),
    }
    if rtype.short_names:
        main["shortNames"] = list(rtype.short_names)
    if rtype.categories:
        main["categories"] = list(rtype.categories)
    subs: list[Object] = [
        {
            "name": f"{rtype.plural}/{sub}",
            "singularName": "",
            "namespaced": rtype.namespaced,
            "kind": rtype.kind,
            "verbs": ["create"] if sub in CREATED_SUBRESOURCES else list(SUBRESOURCE_VERBS),
        }
        for sub in rtype.subresources
    ]
    for sub in subs:  # e.g. deployments/scale is an autoscaling/v1 Scale
        served_as = SUBRESOURCE_KINDS.get(sub["name"].partition("/")[2])
        if served_as:
            sub.update(zip(("group", "version", "kind"), served_as, strict=True))
    return [main, *subs]


def resource_list(registry: Registry, group: str, version: str) -> Object | None:
    """GET /api/v1 or /apis/<g>/<v>: the APIResourceList, or None if unknown."""
    types = registry.in_group_version(group, version)
    if not types:
        return None
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": [entry for t in types for entry in _resource_entries(t)],
    }
