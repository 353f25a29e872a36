"""OpenAPI v3 as kube-apiserver serves it: the index (/openapi/v3) and one document per group
version (/openapi/v3/api/v1, /openapi/v3/apis/<g>/<v>), which `kubectl explain`, kubectl's
field validation check and strategic-merge patches read.

A document holds the paths of the served types (each operation names its
x-kubernetes-group-version-kind) and `components.schemas`: for a CRD its openAPIV3Schema with the
standard apiVersion/kind/metadata fields and a <Kind>List, as the real server builds them; for a
built-in kind Kubernetes' own definition (builtinschemas). Each document is built once per set
of types in its group version and kept serialized with its hash (openapiserving caches and
serves them); the index URLs carry the hash, so a CRD change gives its group version a new URL.
Everything here is pure.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

from amtd.model.objects import Object

from . import builtinschemas
from .builtinschemas import REF_PREFIX
from .discovery import KUBE_VERSION
from .resources import ResourceType
from .reviewing import is_review

META = "io.k8s.apimachinery.pkg.apis.meta.v1"
JSON = "application/json"
PATCH_TYPES = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)
_FALLBACK_DESCRIPTIONS = {
    "apiVersion": "APIVersion defines the versioned schema of this representation of an object.",
    "kind": "Kind is a string value representing the REST resource this object represents.",
    "metadata": "Standard object's metadata.",
}


def gv_path(group: str, version: str) -> str:
    """api/v1 or apis/<group>/<version>: the key of a group version in the index."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _standard_description(field: str) -> str:
    """The wording Kubernetes uses for apiVersion, kind and metadata (from its own schemas)."""
    pod = builtinschemas.definitions().get("io.k8s.api.core.v1.Pod", {})
    found = pod.get("properties", {}).get(field, {}).get("description")
    return str(found or _FALLBACK_DESCRIPTIONS[field])


def _ref(name: str, description: str) -> Object:
    """A reference to a built-in definition; a plain object without kubernetes-validate."""
    if name not in builtinschemas.definitions():
        return {"type": "object", "description": description}
    return {"allOf": [{"$ref": REF_PREFIX + name}], "description": description, "default": {}}


def _type_fields(meta_kind: str, meta_description: str) -> Object:
    return {
        "apiVersion": {"type": "string", "description": _standard_description("apiVersion")},
        "kind": {"type": "string", "description": _standard_description("kind")},
        "metadata": _ref(f"{META}.{meta_kind}", meta_description),
    }


def schema_name(rtype: ResourceType, kind: str = "") -> str:
    """The components.schemas key of a type's kind (or of ``kind``, e.g. its list): for a CRD the
    reversed group, version and kind (com.r6security.amtd.v1beta1.SecurityEvent), for a
    built-in kind Kubernetes' own name; "" when no schema is known."""
    kind = kind or rtype.kind
    if rtype.is_custom:
        return ".".join([*reversed(rtype.group.split(".")), rtype.version, kind])
    return builtinschemas.name_of(rtype.group, rtype.version, kind) or ""


def _gvk(rtype: ResourceType, kind: str) -> Object:
    return {"group": rtype.group, "kind": kind, "version": rtype.version}


def _crd_kind(rtype: ResourceType) -> Object:
    kind: Object = {"type": "object", **dict(rtype.schema or {})}
    kind["properties"] = {  # the server's standard fields replace what the CRD says of them
        **dict(kind.get("properties") or {}),
        **_type_fields("ObjectMeta", _standard_description("metadata")),
    }
    kind["x-kubernetes-group-version-kind"] = [_gvk(rtype, rtype.kind)]
    return kind


def _crd_list(rtype: ResourceType) -> Object:
    items = {
        "description": f"List of {rtype.plural}. More info: "
        "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md",
        "type": "array",
        "items": {"$ref": REF_PREFIX + schema_name(rtype)},
    }
    return {
        "description": f"{rtype.kind}List is a list of {rtype.kind}",
        "type": "object",
        "required": ["items"],
        "properties": {**_type_fields("ListMeta", "Standard list metadata."), "items": items},
        "x-kubernetes-group-version-kind": [_gvk(rtype, f"{rtype.kind}List")],
    }


def crd_schemas(rtype: ResourceType) -> dict[str, Object]:
    """A CRD's kind and its list, as the real server publishes them."""
    return {schema_name(rtype): _crd_kind(rtype), f"{schema_name(rtype)}List": _crd_list(rtype)}


def _builtin_schemas(rtype: ResourceType) -> dict[str, Object]:
    names = [schema_name(rtype), schema_name(rtype, f"{rtype.kind}List")]
    return {name: builtinschemas.definitions()[name] for name in names if name}


def _content(name: str) -> Object:
    schema = {"$ref": REF_PREFIX + name} if name else {"type": "object"}
    return {"content": {JSON: {"schema": schema}}, "description": "OK"}


def _operation(rtype: ResourceType, action: str, verb: str, kind_name: str) -> Object:
    operation: Object = {
        "operationId": f"{verb}{rtype.kind}",
        "tags": [gv_path(rtype.group, rtype.version).replace("/", "_")],
        "responses": {"200": _content(kind_name)},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": _gvk(rtype, rtype.kind),
    }
    if action in ("post", "put", "patch"):  # kubectl checks fieldValidation before it writes
        operation["parameters"] = [
            {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
            for name in ("dryRun", "fieldManager", "fieldValidation")
        ]
    if action == "patch":
        content = {t: {"schema": {"type": "object"}} for t in PATCH_TYPES}
        operation["requestBody"] = {"content": content, "required": True}
    return operation


def _paths(rtype: ResourceType) -> dict[str, Object]:
    prefix = "/" + gv_path(rtype.group, rtype.version)
    scope = "/namespaces/{namespace}" if rtype.namespaced else ""
    collection = f"{prefix}{scope}/{rtype.plural}"
    kind, listed = schema_name(rtype), schema_name(rtype, f"{rtype.kind}List")
    if is_review(rtype):  # create-only, as discovery says
        return {collection: {"post": _operation(rtype, "post", "create", kind)}}
    return {
        collection: {
            "get": _operation(rtype, "list", "list", listed),
            "post": _operation(rtype, "post", "create", kind),
            "delete": _operation(rtype, "deletecollection", "deletecollection", ""),
        },
        f"{collection}/{{name}}": {
            "get": _operation(rtype, "get", "read", kind),
            "put": _operation(rtype, "put", "replace", kind),
            "patch": _operation(rtype, "patch", "patch", kind),
            "delete": _operation(rtype, "delete", "delete", ""),
        },
    }


def group_version_document(types: Iterable[ResourceType]) -> Object:
    """The OpenAPI v3 document of one group version's types."""
    schemas: dict[str, Object] = {}
    paths: dict[str, Object] = {}
    for rtype in types:
        schemas.update(crd_schemas(rtype) if rtype.is_custom else _builtin_schemas(rtype))
        paths.update(_paths(rtype))
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": KUBE_VERSION["gitVersion"]},
        "paths": paths,
        "components": {"schemas": dict(sorted(builtinschemas.closure(schemas).items()))},
    }


@dataclass(frozen=True)
class Document:
    """One serialized group-version document, the types it was built from, and its hash."""

    types: tuple[ResourceType, ...]
    body: bytes
    digest: str

    def is_current(self, types: list[ResourceType]) -> bool:
        """Built from exactly these type objects (a CRD change registers new ones)."""
        return len(types) == len(self.types) and all(
            a is b for a, b in zip(types, self.types, strict=True)
        )


def build_document(types: list[ResourceType]) -> Document:
    """Serialize a group version's document once, hashed as the real server does (SHA-512)."""
    body = json.dumps(group_version_document(types), separators=(",", ":")).encode()
    return Document(tuple(types), body, hashlib.sha512(body).hexdigest().upper())
