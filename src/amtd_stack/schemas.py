"""CRD structural schemas: conversion to JSON Schema, defaulting, pruning, validation (pure).

The openAPIV3Schema dialect is OpenAPI 3.0 (draft-4-like, boolean exclusiveMinimum), so the
converted schema is checked with jsonschema's Draft4Validator. `x-kubernetes-*` keys are dropped
after their meaning is applied: int-or-string widens the type, preserve-unknown-fields stops
pruning, and `nullable` admits null (non-nullable nulls are pruned first, as the real server does).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import fastjsonschema
from jsonschema import Draft4Validator  # type: ignore[import-untyped]
from jsonschema.exceptions import ValidationError  # type: ignore[import-untyped]

_SUBSCHEMA_MAPS = ("properties", "patternProperties", "definitions")
_SUBSCHEMAS = ("items", "additionalProperties", "not")
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
_DROPPED = ("nullable", "default", "example", "externalDocs", "description")
_ROOT_KEPT = ("apiVersion", "kind", "metadata")
_NOTHING: Any = object()  # no stored counterpart
_MAX_CAUSES = 20
# Inside a logical junctor a structural schema may only restrict values, never shape them.
_JUNCTORS = ("allOf", "anyOf", "oneOf", "not")
_SHAPING = ("type", "description", "default", "additionalProperties", "nullable")


def to_json_schema(node: Any) -> Any:
    """Convert an openAPIV3Schema (sub)tree into a Draft 4 JSON Schema."""
    if not isinstance(node, Mapping):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key in _DROPPED:
            continue
        if key in _SUBSCHEMA_MAPS and isinstance(value, Mapping):
            out[key] = {k: to_json_schema(v) for k, v in value.items()}
        elif key in _SUBSCHEMAS:
            out[key] = to_json_schema(value)
        elif key in _SUBSCHEMA_LISTS and isinstance(value, list):
            out[key] = [to_json_schema(v) for v in value]
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out["type"] = ["integer", "string"]
    if node.get("nullable"):
        _admit_null(out)
    return out


def _admit_null(out: dict[str, Any]) -> None:
    if isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    elif isinstance(out.get("type"), list):
        out["type"] = [*out["type"], "null"]
    if isinstance(out.get("enum"), list):
        out["enum"] = [*out["enum"], None]


def prune(value: Any, schema: Any, is_root: bool = False, stored: Any = _NOTHING) -> Any:
    """Drop unknown fields and non-nullable nulls, fill defaults; returns a new value, except
    that a part which *is* (identity) the same part of ``stored``, the object as stored before
    this write, is kept as it is: stored objects were pruned when written and are never changed
    in place, so a large object patched in one place is not rebuilt whole."""
    if value is stored:
        return value
    if not isinstance(schema, Mapping):
        return copy.deepcopy(value)
    if isinstance(value, dict):
        return _prune_object(value, schema, is_root, stored)
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        before = stored if isinstance(stored, list) else []
        return [prune(item, schema["items"], stored=_at(before, i)) for i, item in enumerate(value)]
    return copy.deepcopy(value)


def _at(items: list[Any], index: int) -> Any:
    return items[index] if index < len(items) else _NOTHING


def _prune_object(
    value: dict[str, Any], schema: Mapping[str, Any], is_root: bool, stored: Any
) -> Any:
    props: Mapping[str, Any] = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    keep_unknown = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
    before = stored if isinstance(stored, dict) else {}
    out: dict[str, Any] = {}
    for key, item in value.items():
        if is_root and key in _ROOT_KEPT:
            out[key] = copy.deepcopy(item)
            continue
        sub = props.get(key, extra if isinstance(extra, Mapping) else None)
        is_nullable = isinstance(sub, Mapping) and sub.get("nullable")
        if item is None and not is_nullable and (sub is not None or not keep_unknown):
            continue
        if sub is not None:
            out[key] = prune(item, sub, stored=before.get(key, _NOTHING))
        elif keep_unknown or extra is True:
            out[key] = copy.deepcopy(item)
    for key, sub in props.items():
        if key not in out and isinstance(sub, Mapping) and "default" in sub:
            out[key] = prune(copy.deepcopy(sub["default"]), sub)
    return out


def unknown_fields(
    value: Any, schema: Any, path: tuple[Any, ...] = (), stored: Any = _NOTHING
) -> list[str]:
    """Paths of fields that pruning would drop as unknown (for fieldValidation=Strict); a part
    that is the same part of ``stored`` was checked when it was written (see :func:`prune`)."""
    if not isinstance(schema, Mapping) or value is stored:
        return []
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        items, earlier = schema["items"], stored if isinstance(stored, list) else []
        return [f for i, v in enumerate(value)
                for f in unknown_fields(v, items, (*path, i), _at(earlier, i))]  # fmt: skip
    if not isinstance(value, dict):
        return []
    props: Mapping[str, Any] = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    keep_unknown = bool(schema.get("x-kubernetes-preserve-unknown-fields")) or extra is True
    before = stored if isinstance(stored, dict) else {}
    found: list[str] = []
    for key, item in value.items():
        if not path and key in _ROOT_KEPT:
            continue
        sub = props.get(key, extra if isinstance(extra, Mapping) else None)
        if sub is not None:
            found.extend(unknown_fields(item, sub, (*path, key), before.get(key, _NOTHING)))
        elif not keep_unknown:
            found.append(format_path((*path, key)))
    return found


def format_path(path: Iterable[Any]) -> str:
    """A Kubernetes field path: `spec.strategy[0].action`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _short(instance: Any) -> str:
    text = json.dumps(instance, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


def _causes_for(error: ValidationError) -> list[dict[str, str]]:
    path = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [p for p in error.validator_value if p not in error.instance]
        return [
            {
                "reason": "FieldValueRequired",
                "message": "Required value",
                "field": format_path([*path, name]),
            }
            for name in missing
        ]
    field = format_path(path) or "<root>"
    if error.validator == "enum":
        allowed = ", ".join(json.dumps(v) for v in error.validator_value)
        message = f"Unsupported value: {_short(error.instance)}: supported values: {allowed}"
        return [{"reason": "FieldValueNotSupported", "message": message, "field": field}]
    detail = _openapi_wording(error) or error.message
    message = f"Invalid value: {_short(error.instance)}: {field} in body {detail}"
    return [{"reason": "FieldValueInvalid", "message": message, "field": field}]


# How the real server (kube-openapi's validator) words each failed keyword; {} is the limit.
_WORDING = {
    "pattern": "should match '{}'",
    "minProperties": "should have at least {} properties",
    "maxProperties": "should have at most {} properties",
    "minItems": "should have at least {} items",
    "maxItems": "should have at most {} items",
    "minLength": "should be at least {} chars long",
    "maxLength": "should be at most {} chars long",
    "minimum": "should be greater than or equal to {}",
    "maximum": "should be less than or equal to {}",
}
_JSON_TYPES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
               (list, "array"), (dict, "object"))  # fmt: skip


def _openapi_wording(error: ValidationError) -> str | None:
    if error.validator == "type":
        actual = next(
            (name for kind, name in _JSON_TYPES if isinstance(error.instance, kind)), "null"
        )
        return f'must be of type {error.validator_value}: "{actual}"'
    wording = _WORDING.get(str(error.validator))
    if wording is None:
        return "must validate at least one schema (anyOf)" if error.validator == "anyOf" else None
    return wording.format(error.validator_value)


@dataclass(frozen=True)
class SchemaValidators:
    """One schema's two validators: a compiled one that only says valid or not (fast: a large
    SecurityEvent status is checked in ms, inside the store's lock) and jsonschema's Draft 4
    one, asked only when the first says no, which gives every cause (and has the last word)."""

    is_valid: Callable[[Any], bool]
    draft4: Any


_VALIDATORS: dict[int, tuple[Mapping[str, Any], SchemaValidators]] = {}  # id(schema) -> ...
_MAX_VALIDATORS = 256


def schema_validator(open_api_schema: Mapping[str, Any]) -> SchemaValidators:
    """The validators of an openAPIV3Schema, converted once per schema object (a CRD's
    schema is never changed in place; keeping it in the cache keeps its id unique)."""
    cached = _VALIDATORS.get(id(open_api_schema))
    if cached is None or cached[0] is not open_api_schema:
        if len(_VALIDATORS) >= _MAX_VALIDATORS:
            _VALIDATORS.clear()
        converted = to_json_schema(open_api_schema)
        validators = SchemaValidators(compile_check(converted), Draft4Validator(converted))
        cached = (open_api_schema, validators)
        _VALIDATORS[id(open_api_schema)] = cached
    return cached[1]


def compile_check(json_schema: Any) -> Callable[[Any], bool]:
    """``fastjsonschema``'s compiled validator as a predicate. Where it is stricter (it checks
    formats) the Draft 4 validator decides; a schema it cannot compile always goes there."""
    try:
        check = fastjsonschema.compile(json_schema, use_default=False)
    except (fastjsonschema.JsonSchemaDefinitionException, re.error):  # e.g. a Go-only regex
        return lambda value: False

    def is_valid(value: Any) -> bool:
        try:
            check(value)
        except fastjsonschema.JsonSchemaException:
            return False
        return True

    return is_valid


def validation_causes(obj: Any, open_api_schema: Mapping[str, Any]) -> list[dict[str, str]]:
    """Status causes (reason, message, field) for every schema violation; [] when valid."""
    validators = schema_validator(open_api_schema)
    if validators.is_valid(obj):
        return []
    errors = validators.draft4.iter_errors(obj)
    causes: list[dict[str, str]] = []
    for error in sorted(errors, key=lambda e: [str(p) for p in e.absolute_path]):
        causes.extend(_causes_for(error))
    return causes[:_MAX_CAUSES]


def structural_violations(node: Any, path: str) -> list[tuple[str, str]]:
    """(field, message) for each rule of a structural schema the node breaks, as apiextensions/v1
    refuses them: a type on every specified node (unless int-or-string or preserve-unknown-fields),
    and junctors that only restrict values of fields specified outside them."""
    if not isinstance(node, Mapping):
        return [(path, "Invalid value: must be an object")]
    found: list[tuple[str, str]] = []
    is_untyped_allowed = node.get("x-kubernetes-int-or-string") or node.get(
        "x-kubernetes-preserve-unknown-fields"
    )
    if not node.get("type") and not is_untyped_allowed:
        found.append((f"{path}.type", "Required value: must not be empty for specified fields"))
    for name, child in _children(node):
        found.extend(structural_violations(child, f"{path}.{name}"))
    for junctor in _JUNCTORS:
        for index, branch in _branches(node.get(junctor)):
            found.extend(_junctor_violations(branch, node, f"{path}.{junctor}{index}"))
    return found


def _children(node: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    for name, child in (node.get("properties") or {}).items():
        yield f"properties[{name}]", child
    if isinstance(node.get("additionalProperties"), Mapping):
        yield "additionalProperties", node["additionalProperties"]
    if "items" in node:
        yield "items", node["items"]


def _branches(value: Any) -> Iterable[tuple[str, Any]]:
    if isinstance(value, Mapping):
        yield "", value
    elif isinstance(value, list):
        yield from ((f"[{i}]", branch) for i, branch in enumerate(value))


def _junctor_violations(
    branch: Any, outside: Mapping[str, Any], path: str
) -> list[tuple[str, str]]:
    if not isinstance(branch, Mapping):
        return [(path, "Invalid value: must be an object")]
    is_int_or_string_pattern = outside.get("x-kubernetes-int-or-string") and set(branch) == {"type"}
    found = [
        (f"{path}.{key}", "Forbidden: must be empty to be structural")
        for key in _SHAPING
        if key in branch and not (key == "type" and is_int_or_string_pattern)
    ]
    outside_properties = outside.get("properties") or {}
    for name, child in (branch.get("properties") or {}).items():
        if name not in outside_properties:
            found.append(
                (
                    f"{path}.properties[{name}]",
                    "Required value: must be specified outside the junctor",
                )
            )
        else:
            found.extend(
                _junctor_violations(child, outside_properties[name], f"{path}.properties[{name}]")
            )
    if "items" in branch:
        if not isinstance(outside.get("items"), Mapping):
            found.append((f"{path}.items", "Required value: must be specified outside the junctor"))
        else:
            found.extend(_junctor_violations(branch["items"], outside["items"], f"{path}.items"))
    for junctor in _JUNCTORS:
        for index, nested in _branches(branch.get(junctor)):
            found.extend(_junctor_violations(nested, outside, f"{path}.{junctor}{index}"))
    return found
