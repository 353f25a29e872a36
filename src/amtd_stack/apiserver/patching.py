"""Patch application: JSON merge patch, JSON patch, and strategic merge patch (pure).

Strategic merge patch is treated as a JSON merge patch with two concessions to `kubectl apply`:
`$`-directive keys (`$setElementOrder/...`, `$retainKeys`, `$patch` on maps) are dropped, and lists
of objects that all carry a `name` are merged by name (an element `{"name": n, "$patch": "delete"}`
removes n). Everything else about SMP (other merge keys, retainKeys semantics) is not emulated.
"""

from __future__ import annotations

import copy
from typing import Any

from .apierrors import ApiError, bad_request

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
PATCH_TYPES = (MERGE, JSON_PATCH, STRATEGIC)


def apply_patch(
    target: dict[str, Any], patch: Any, content_type: str, shared: bool = False
) -> dict[str, Any]:
    """`target` patched, as a new object (`target` is never changed); 400 for a malformed patch,
    415 for an unknown type. A deep copy, unless `shared`: then only the containers a change
    goes through are copied (and the root and its metadata, which writes stamp), the rest is
    shared with `target`, for a caller that copies what it keeps."""
    if content_type == JSON_PATCH:
        owned = Owned(shared)
        result = apply_json_patch(owned.root(target), patch, owned)
    elif content_type in (MERGE, STRATEGIC):
        if not isinstance(patch, dict):
            raise bad_request("a merge patch must be a JSON object")
        result = merge_patch(target, patch, content_type == STRATEGIC, shared)
    else:
        raise ApiError(
            415,
            f"the body of the request was in an unknown format - accepted media types "
            f"include: {', '.join(PATCH_TYPES)}",
            "UnsupportedMediaType",
        )
    if not isinstance(result, dict):
        raise bad_request("the patch must leave a JSON object")
    if shared and isinstance(result.get("metadata"), dict):
        result = {**result, "metadata": copy.deepcopy(result["metadata"])}
    return result


class Owned:
    """The containers a JSON patch may change in place: a deep copy of the target, or (when
    `shared`) the copies made on the way to each change (copy on write)."""

    def __init__(self, shared: bool) -> None:
        self.shared = shared
        self.made: set[int] = set()

    def root(self, target: Any) -> Any:
        """The document the operations apply to."""
        return self.own(target) if self.shared else copy.deepcopy(target)

    def own(self, node: Any) -> Any:
        """A container this patch may change: `node` itself if made here, else a shallow copy."""
        if not self.shared or id(node) in self.made or not isinstance(node, (dict, list)):
            return node
        mine = copy.copy(node)
        self.made.add(id(mine))
        return mine


def merge_patch(target: Any, patch: Any, strategic: bool = False, shared: bool = False) -> Any:
    """RFC 7386 merge (null deletes); with `strategic`, the concessions in the module doc; with
    `shared`, parts the patch does not reach are shared with `target`, not copied."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        result: dict[str, Any] = {}
    else:
        result = copy.copy(target) if shared else copy.deepcopy(target)
    for key, value in patch.items():
        if strategic and key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
        elif strategic and _is_named_list(value) and _is_named_list(result.get(key)):
            result[key] = _merge_named_lists(result[key], value)
        else:
            result[key] = merge_patch(result.get(key), value, strategic, shared)
    return result


def _is_named_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, dict) and "name" in v for v in value)


def _merge_named_lists(target: list[Any], patch: list[Any]) -> list[Any]:
    merged = [copy.deepcopy(item) for item in target]
    for item in patch:
        index = next((i for i, t in enumerate(merged) if t["name"] == item["name"]), None)
        if item.get("$patch") == "delete":
            if index is not None:
                del merged[index]
        elif index is None:
            merged.append(merge_patch({}, item, strategic=True))
        else:
            merged[index] = merge_patch(merged[index], item, strategic=True)
    return merged


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise bad_request(f"invalid JSON pointer: {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]


def _parent(doc: Any, parts: list[str], owned: Owned | None = None) -> Any:
    """The container of the pointer's last part; with `owned`, made changeable on the way."""
    node = doc
    for part in parts[:-1]:
        child = _child(node, part)
        if owned is not None and (mine := owned.own(child)) is not child:
            node[int(part) if isinstance(node, list) else part] = child = mine
        node = child
    return node


def _child(node: Any, part: str) -> Any:
    try:
        if isinstance(node, list):
            return node[int(part)]
        if isinstance(node, dict):
            return node[part]
    except (KeyError, IndexError, ValueError):
        pass
    raise ApiError(422, f"JSON patch path not found at {part!r}", "Invalid")


def _get(doc: Any, path: Any) -> Any:
    parts = _pointer(path)
    return _child(_parent(doc, parts), parts[-1]) if parts else doc


def _remove(doc: Any, path: Any, owned: Owned) -> Any:
    parts = _pointer(path)
    if not parts:
        raise bad_request("cannot remove the document root")
    parent, last = _parent(doc, parts, owned), parts[-1]
    value = _child(parent, last)
    if isinstance(parent, list):
        del parent[int(last)]
    else:
        del parent[last]
    return value


def _add(doc: Any, path: Any, value: Any, owned: Owned) -> Any:
    parts = _pointer(path)
    if not parts:
        return value
    parent, last = _parent(doc, parts, owned), parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list) and (last == "-" or last.isdigit()):
        index = len(parent) if last == "-" else int(last)
        if index > len(parent):
            raise ApiError(422, f"JSON patch index out of range: {last}", "Invalid")
        parent.insert(index, value)
    else:
        raise ApiError(422, f"JSON patch cannot add at {path!r}", "Invalid")
    return doc


def _apply_op(doc: Any, op: Any, owned: Owned) -> Any:
    if not isinstance(op, dict) or "path" not in op:
        raise bad_request("each JSON patch operation needs 'op' and 'path'")
    name, path = op.get("op"), op["path"]
    if name in ("add", "replace", "test") and "value" not in op:
        raise bad_request(f"JSON patch '{name}' needs a 'value'")
    if name == "add":
        return _add(doc, path, copy.deepcopy(op["value"]), owned)
    if name == "remove":
        _remove(doc, path, owned)
        return doc
    if name == "replace":
        _get(doc, path)  # must exist
        if not _pointer(path):
            return copy.deepcopy(op["value"])
        _remove(doc, path, owned)
        return _add(doc, path, copy.deepcopy(op["value"]), owned)
    if name in ("move", "copy"):
        source = op.get("from")
        value = _remove(doc, source, owned) if name == "move" else _get(doc, source)
        return _add(doc, path, copy.deepcopy(value), owned)
    if name == "test":
        if _get(doc, path) != op["value"]:
            raise ApiError(422, f"JSON patch test failed at {path!r}", "Invalid")
        return doc
    raise bad_request(f"unknown JSON patch operation: {name!r}")


def apply_json_patch(doc: Any, ops: Any, owned: Owned | None = None) -> Any:
    """RFC 6902 operations applied in order to `doc` (changed in place where `owned` allows:
    all of it by default); 400/422 on bad operations."""
    if not isinstance(ops, list):
        raise bad_request("a JSON patch must be a JSON array of operations")
    owned = owned or Owned(shared=False)
    for op in ops:
        doc = _apply_op(doc, op, owned)
    return doc
