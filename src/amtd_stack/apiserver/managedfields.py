"""Managed fields: field sets (FieldsV1), who owns what, and the `Update` entries of writes (pure).

A field set is a set of paths of FieldsV1 path elements: `f:<name>` for a map key,
`k:{"name":"nginx"}` for an item of a keyed list (the keys are the strategic-merge keys of the
built-in kinds' lists, see LIST_KEYS; every custom resource list is atomic, as a CRD without
`x-kubernetes-list-type: map` is), and `.` for the item itself. Scalars, atomic lists and empty
maps are leaves. A non-apply write (create, update, patch) records an `Update` entry for its
manager holding the fields that write changed (a create: every field it set), and takes those
fields away from the other managers, as the real server does. One entry per manager, operation,
apiVersion and subresource, so the list never grows without bound.
"""

from __future__ import annotations

import json
from typing import Any

from amtd.model.objects import Object

FieldPath = tuple[str, ...]
FieldSet = frozenset[FieldPath]
MISSING = object()

# A keyed list's merge keys, by the list's field name (built-in kinds only).
LIST_KEYS: dict[str, tuple[str, ...]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "volumes": ("name",),
    "env": ("name",),
    "imagePullSecrets": ("name",),
    "volumeMounts": ("mountPath",),
    "conditions": ("type",),
    "hostAliases": ("ip",),
}
# Server-owned or identifying metadata: never part of a field set.
UNOWNED_METADATA = frozenset(
    {
        "name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
        "managedFields", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds",
    }
)  # fmt: skip


def list_keys(name: str, items: list[Any], custom: bool) -> tuple[str, ...] | None:
    """The merge keys of a list of objects named `name`, or None for an atomic list."""
    if custom or not items or not all(isinstance(i, dict) for i in items):
        return None
    if name == "ports":  # container ports vs service ports
        key = "containerPort" if all("containerPort" in i for i in items) else "port"
        keys: tuple[str, ...] = (key, "protocol")
    else:
        keys = LIST_KEYS.get(name, ())
    present = tuple(k for k in keys if all(k in i for i in items))
    return present if present and present[0] == keys[0] else None


def item_element(item: dict[str, Any], keys: tuple[str, ...]) -> str:
    """The `k:` path element of a keyed list's item."""
    return "k:" + json.dumps({k: item[k] for k in keys if k in item}, separators=(",", ":"))


def field_set(obj: Object, custom: bool) -> FieldSet:
    """Every field `obj` sets, server-owned metadata, apiVersion and kind aside."""
    out: set[FieldPath] = set()
    for key, value in obj.items():
        if key in ("apiVersion", "kind"):
            continue
        if key == "metadata" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in UNOWNED_METADATA}
            if not value:
                continue
        _collect(value, key, (f"f:{key}",), custom, out)
    return frozenset(out)


def _collect(value: Any, name: str, path: FieldPath, custom: bool, out: set[FieldPath]) -> None:
    if isinstance(value, dict) and value:
        for key, child in value.items():
            _collect(child, key, (*path, f"f:{key}"), custom, out)
    elif isinstance(value, list) and (keys := list_keys(name, value, custom)):
        for item in value:
            item_path = (*path, item_element(item, keys))
            out.add((*item_path, "."))
            for key, child in item.items():
                _collect(child, key, (*item_path, f"f:{key}"), custom, out)
    else:
        out.add(path)


def value_at(obj: Any, path: FieldPath) -> Any:
    """The value at `path` in `obj`, or MISSING."""
    node = obj
    for element in path:
        if element == ".":
            continue
        if element.startswith("f:") and isinstance(node, dict):
            node = node.get(element[2:], MISSING)
        elif element.startswith("k:") and isinstance(node, list):
            node = next((i for i in node if is_item(i, element)), MISSING)
        else:
            return MISSING
        if node is MISSING:
            return MISSING
    return node


def is_item(item: Any, element: str) -> bool:
    """Whether a list item matches a `k:` path element."""
    wanted = json.loads(element[2:])
    return isinstance(item, dict) and all(item.get(k) == v for k, v in wanted.items())


def to_fields_v1(fields: FieldSet) -> Object:
    """The FieldsV1 tree of a field set."""
    tree: Object = {}
    for path in sorted(fields):
        node = tree
        for element in path:
            node = node.setdefault(element, {})
    return tree


def from_fields_v1(tree: Any, prefix: FieldPath = ()) -> FieldSet:
    """The field set of a FieldsV1 tree (leaves and `.` entries)."""
    if not isinstance(tree, dict):
        return frozenset()
    if not tree:
        return frozenset({prefix}) if prefix else frozenset()
    out: set[FieldPath] = set()
    for element, child in tree.items():
        out |= from_fields_v1(child, (*prefix, str(element)))
    return frozenset(out)


def field_name(path: FieldPath) -> str:
    """A field path as conflict messages write it: `.spec.containers[name="a"].image`."""
    parts = []
    for element in path:
        if element.startswith("f:"):
            parts.append(f".{element[2:]}")
        elif element.startswith("k:"):
            keys = json.loads(element[2:])
            parts.append("[" + ",".join(f"{k}={json.dumps(v)}" for k, v in keys.items()) + "]")
    return "".join(parts)


def entry_fields(entry: Object) -> FieldSet:
    """The field set of one managedFields entry."""
    return from_fields_v1(entry.get("fieldsV1"))


def is_entry(entry: Any) -> bool:
    """Whether `entry` is a well-formed managedFields entry."""
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("manager"), str)
        and entry.get("operation") in ("Apply", "Update")
        and isinstance(entry.get("fieldsV1", {}), dict)
        and all(isinstance(entry.get(k, ""), str) for k in ("apiVersion", "time", "subresource"))
    )


def entries_of(obj: Object) -> list[Object]:
    """The well-formed managedFields entries of `obj` (malformed ones are dropped)."""
    entries = obj.get("metadata", {}).get("managedFields")
    return [e for e in entries if is_entry(e)] if isinstance(entries, list) else []


def is_same_entry(entry: Object, manager: str, operation: str, subresource: str = "") -> bool:
    """Whether `entry` belongs to this manager, operation and subresource."""
    return (entry["manager"], entry["operation"], entry.get("subresource", "")) == (
        manager,
        operation,
        subresource,
    )


def new_entry(
    manager: str, operation: str, api_version: str, fields: FieldSet, time: str, subresource: str
) -> Object:
    """A managedFields entry."""
    entry: Object = {
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": time,
        "fieldsType": "FieldsV1",
        "fieldsV1": to_fields_v1(fields),
    }
    if subresource:
        entry["subresource"] = subresource
    return entry


def without_fields(entries: list[Object], fields: FieldSet) -> list[Object]:
    """`entries` with `fields` taken away (entries left owning nothing are dropped)."""
    out = []
    for entry in entries:
        owned = entry_fields(entry)
        if not owned & fields:
            out.append(entry)
        elif owned - fields:
            out.append({**entry, "fieldsV1": to_fields_v1(owned - fields)})
    return out


def changed_fields(old: Object, new: Object, custom: bool) -> tuple[FieldSet, FieldSet]:
    """(fields `new` sets to another value than `old`, fields `new` no longer has)."""
    changed = {
        p
        for p in field_set(new, custom)
        if (value_at(old, p) is MISSING) or (p[-1] != "." and value_at(old, p) != value_at(new, p))
    }
    gone = {p for p in field_set(old, custom) if value_at(new, p) is MISSING}
    return frozenset(changed), frozenset(gone)


def record_update(
    entries: list[Object], old: Object, new: Object, who: tuple[str, str, str], time: str,
    custom: bool,
) -> list[Object]:  # fmt: skip
    """The entries after a non-apply write from `who` (manager, apiVersion, subresource): the
    fields it changed move to its `Update` entry, the fields it removed are nobody's."""
    manager, api_version, subresource = who
    changed, gone = changed_fields(old, new, custom)
    if not changed and not gone:
        return entries
    mine = [e for e in entries if is_same_entry(e, manager, "Update", subresource)]
    others = without_fields([e for e in entries if e not in mine], changed | gone)
    owned = (entry_fields(mine[0]) if mine else frozenset()) - gone | changed
    if not owned:
        return others
    if mine and entry_fields(mine[0]) == owned:
        return [*others, mine[0]]
    return [*others, new_entry(manager, "Update", api_version, owned, time, subresource)]
