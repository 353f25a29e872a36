"""The OpenAPI v3 schemas of the built-in kinds, read from the `kubernetes-validate` package.

kubernetes-validate ships Kubernetes' own definitions per release, converted to JSON Schema
(`$defs`, nullable type lists). They are turned back into the shape kube-apiserver serves in
its OpenAPI v3 documents (`#/components/schemas/...` refs, a `$ref` with siblings wrapped in
`allOf`, one type per schema). The package is a development dependency (in requirements.lock);
without it the built-in kinds simply have no schemas. Loaded once, on the first request.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from collections.abc import Iterable, Mapping
from typing import Any

from amtd.model.objects import Object

from .discovery import KUBE_VERSION

REF_PREFIX = "#/components/schemas/"
_JSON_SCHEMA_REF = "#/$defs/"
Gvk = tuple[str, str, str]


def _single_type(value: Any) -> Any:
    """["string", "null"] -> "string" (OpenAPI v3.0 has one type per schema)."""
    if isinstance(value, list):
        return next((t for t in value if t != "null"), "object")
    return value


def _alternatives(node: Mapping[str, Any]) -> Object:
    """IntOrString and Quantity are `oneOf` types in JSON Schema, strings in Kubernetes' OpenAPI."""
    types = {_single_type(option.get("type")) for option in node["oneOf"]}
    converted: Object = {"type": "string"}
    if "integer" in types:
        converted["format"] = "int-or-string"
    return converted


def convert(node: Any) -> Any:
    """One JSON Schema node (and everything under it) in OpenAPI v3 form."""
    if isinstance(node, list):
        return [convert(item) for item in node]
    if not isinstance(node, dict):
        return node
    if "oneOf" in node:
        return {**_alternatives(node), **{k: v for k, v in node.items() if k == "description"}}
    out: Object = {}
    for key, value in node.items():
        if key == "type":
            out[key] = _single_type(value)
        elif key == "properties":
            out[key] = {name: _property(name, sub) for name, sub in value.items()}
        elif key == "$ref":
            out[key] = REF_PREFIX + str(value).removeprefix(_JSON_SCHEMA_REF)
        else:
            out[key] = convert(value)
    if "$ref" in out and len(out) > 1:  # OpenAPI 3.0 ignores a $ref's siblings
        return {"allOf": [{"$ref": out.pop("$ref")}], **out}
    return out


def _property(name: str, schema: Any) -> Any:
    converted = convert(schema)
    if name in ("apiVersion", "kind") and isinstance(converted, dict):
        converted.pop("enum", None)  # added by the JSON Schema conversion; the server has none
    return converted


def _schema_dir() -> Any:
    root = importlib.resources.files("kubernetes_validate") / "kubernetes-json-schema"
    wanted = f"v{KUBE_VERSION['major']}.{KUBE_VERSION['minor']}.0-local"
    if (root / wanted).is_dir():
        return root / wanted
    releases = sorted(
        (p for p in root.iterdir() if p.name.endswith("-local")),
        key=lambda p: [int(n) for n in p.name[1:].split("-")[0].split(".")],
    )
    return releases[-1]


@functools.cache
def definitions() -> Mapping[str, Object]:
    """Every built-in definition by its name (io.k8s.api.core.v1.Pod, ...); {} when
    kubernetes-validate is not installed."""
    try:
        path = _schema_dir() / "_definitions.json"
    except (ModuleNotFoundError, IndexError, OSError):
        return {}
    raw = json.loads(path.read_text(encoding="utf-8")).get("$defs", {})
    return {name: convert(schema) for name, schema in raw.items()}


@functools.cache
def _names_by_gvk() -> Mapping[Gvk, str]:
    names: dict[Gvk, str] = {}
    for name, schema in definitions().items():
        for gvk in schema.get("x-kubernetes-group-version-kind", ()):
            names.setdefault((gvk["group"], gvk["version"], gvk["kind"]), name)
    return names


def name_of(group: str, version: str, kind: str) -> str | None:
    """The definition name of a built-in kind, or None when there is none."""
    return _names_by_gvk().get((group, version, kind))


def _refs(node: Any) -> Iterable[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value.removeprefix(REF_PREFIX)
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def closure(schemas: Mapping[str, Object]) -> dict[str, Object]:
    """``schemas`` plus every built-in definition they reach through `$ref`."""
    known = definitions()
    found = dict(schemas)
    pending = [ref for schema in schemas.values() for ref in _refs(schema)]
    while pending:
        name = pending.pop()
        if name in found or name not in known:
            continue
        found[name] = known[name]
        pending.extend(_refs(known[name]))
    return found
