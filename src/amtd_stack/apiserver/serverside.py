"""Server-side apply: an apply patch merged into the live object by field ownership (pure).

An apply patch (`application/apply-patch+yaml`, what `kubectl apply --server-side` sends) is a
full applied configuration. Its fields are set (maps merge recursively, keyed lists merge by
their keys, atomic lists and scalars are replaced); the fields its manager applied before and no
longer applies are removed unless another manager owns them too; a field another manager owns
with a different value is a 409 conflict (with `force=true` the applier takes it over). Field
sets and the list keys are managedfields.py's. Defaults the server adds afterwards belong to
nobody, as upstream. Admission and storage are the other writes' (handling.py).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from amtd.model.objects import Object

from . import managedfields as mf
from .apierrors import ApiError, bad_request

APPLY_PATCH = "application/apply-patch+yaml"
MAX_MANAGER_LENGTH = 128


@dataclass(frozen=True)
class Applier:
    """Who applies: the field manager, the apiVersion applied, and whether conflicts are forced."""

    manager: str
    api_version: str
    force: bool = False
    custom: bool = False
    subresource: str = ""


def applied_part(applied: Object, subresource: str, has_status: bool) -> Object:
    """What an apply may set, as upstream resets the rest: on `/status` only the status; on
    the main resource of a kind with a status subresource everything but the status."""
    if subresource == "status":
        meta = applied.get("metadata") or {}
        named = {k: meta[k] for k in ("name", "namespace") if k in meta}
        kept: Object = {k: applied[k] for k in ("apiVersion", "kind", "status") if k in applied}
        return {**kept, "metadata": named}
    if has_status and not subresource:
        return {k: v for k, v in applied.items() if k != "status"}
    return applied


def _invalid_options(field: str, message: str) -> ApiError:
    cause = {"reason": "FieldValueInvalid", "message": message, "field": field}
    return ApiError(
        422,
        f'PatchOptions.meta.k8s.io "" is invalid: {field}: {message}',
        "Invalid",
        {"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [cause]},
    )


def check_patch_options(args: Mapping[str, str], content_type: str) -> None:
    """422 as upstream: an apply patch needs a fieldManager; only an apply patch takes force."""
    manager = args.get("fieldManager", "")
    if len(manager) > MAX_MANAGER_LENGTH:
        raise _invalid_options("fieldManager", f"must be at most {MAX_MANAGER_LENGTH} characters")
    if content_type == APPLY_PATCH and not manager:
        raise _invalid_options("fieldManager", "Required value: is required for apply patch")
    if content_type != APPLY_PATCH and "force" in args:
        raise _invalid_options("force", "Forbidden: may not be specified for non-apply patch")


def manager_of(args: Mapping[str, str], user_agent: str) -> str:
    """The field manager of a write: fieldManager, else the User-Agent's product, as upstream."""
    manager = args.get("fieldManager") or user_agent.split("/", 1)[0].strip()
    return manager[:MAX_MANAGER_LENGTH] or "unknown"


def check_applied(body: Any) -> Object:
    """400 unless the applied configuration is an object naming its apiVersion and kind."""
    if not isinstance(body, dict):
        raise bad_request("an apply patch must be a YAML or JSON object")
    missing = [k for k in ("apiVersion", "kind") if not body.get(k)]
    if missing:
        raise bad_request(f"an apply patch must set {' and '.join(missing)}")
    if not isinstance(body.get("metadata", {}), dict):
        raise bad_request("metadata must be an object")
    return body


def merge_applied(live: Any, applied: Any, name: str, custom: bool) -> Any:
    """`applied` merged into `live`: maps by key, keyed lists by item key, others replaced."""
    if isinstance(live, dict) and isinstance(applied, dict):
        out = dict(live)
        for key, value in applied.items():
            if value is None:
                out.pop(key, None)  # null in an applied configuration: not set
            else:
                out[key] = merge_applied(live.get(key), value, key, custom)
        return out
    keys = mf.list_keys(name, applied, custom) if isinstance(applied, list) else None
    if keys and isinstance(live, list) and all(isinstance(i, dict) for i in live):
        merged = list(live)
        for item in applied:
            element = mf.item_element(item, keys)
            index = next((i for i, old in enumerate(merged) if mf.is_item(old, element)), None)
            if index is None:
                merged.append(copy.deepcopy(item))
            else:
                merged[index] = merge_applied(merged[index], item, "", custom)
        return merged
    return copy.deepcopy(applied)


def remove_field(obj: Object, path: mf.FieldPath) -> None:
    """Remove the field (or, for a `.` path, the list item) at `path` from `obj` (in place)."""
    body = path[:-1] if path[-1] == "." else path
    parent, last = mf.value_at(obj, body[:-1]), body[-1]
    if last.startswith("f:") and isinstance(parent, dict):
        parent.pop(last[2:], None)
    elif last.startswith("k:") and isinstance(parent, list):
        parent[:] = [item for item in parent if not mf.is_item(item, last)]


def find_conflicts(
    entries: list[Object], live: Object, applied: Object, fields: mf.FieldSet
) -> list[tuple[Object, mf.FieldPath]]:
    """(entry, field) pairs where another manager owns a field applied with another value."""
    found = []
    for entry in entries:
        for path in sorted(mf.entry_fields(entry) & fields):
            if path[-1] != "." and mf.value_at(live, path) != mf.value_at(applied, path):
                found.append((entry, path))
    return found


def conflict_error(conflicts: list[tuple[Object, mf.FieldPath]]) -> ApiError:
    """409 Conflict with one FieldManagerConflict cause per field, worded as upstream."""
    causes = [
        {
            "reason": "FieldManagerConflict",
            "message": f'conflict with "{e["manager"]}" using {e.get("apiVersion", "")}',
            "field": mf.field_name(path),
        }
        for e, path in conflicts
    ]
    count = len(causes)
    if count == 1:
        summary = f"{causes[0]['message']}: {causes[0]['field']}"
    else:
        summary = "\n".join(f"{c['message'].replace('conflict', 'conflicts', 1)}:\n- {c['field']}"
                            for c in causes)  # fmt: skip
    plural = "conflict" if count == 1 else "conflicts"
    return ApiError(409, f"Apply failed with {count} {plural}: {summary}", "Conflict",
                    {"causes": causes})  # fmt: skip


def _removable(previous: mf.FieldSet, applied: mf.FieldSet, others: list[Object]) -> list[Any]:
    still_owned = frozenset().union(*(mf.entry_fields(e) for e in others))
    out = []
    for path in previous - applied:
        base = path[:-1] if path[-1] == "." else path
        if not any(owned[: len(base)] == base for owned in still_owned):
            out.append(path)
    return out


def apply_configuration(
    live: Object | None, applied: Object, applier: Applier, time: str
) -> tuple[Object, list[Object]]:
    """The merged object and its managedFields; 409 on conflicts unless forced."""
    entries = mf.entries_of(live) if live is not None else []
    fields = mf.field_set(applied, applier.custom)
    sub = applier.subresource
    mine = next((e for e in entries if mf.is_same_entry(e, applier.manager, "Apply", sub)), None)
    others = [e for e in entries if e is not mine]
    conflicts = find_conflicts(others, live or {}, applied, fields)
    if conflicts and not applier.force:
        raise conflict_error(conflicts)
    others = mf.without_fields(others, frozenset(path for _, path in conflicts))
    merged: Object = merge_applied(copy.deepcopy(live or {}), applied, "", applier.custom)
    previous = mf.entry_fields(mine) if mine is not None else frozenset()
    for path in _removable(previous, fields, others):
        remove_field(merged, path)
    if mine is None or previous != fields or mine.get("apiVersion") != applier.api_version:
        mine = mf.new_entry(applier.manager, "Apply", applier.api_version, fields, time, sub)
    return merged, [*others, mine]
