"""Server-owned metadata: names, uid, timestamps, generation, and checks on client metadata (pure
apart from the clock and random numbers)."""

from __future__ import annotations

import random
import re
import string
import uuid
from datetime import UTC, datetime
from typing import Any

from amtd.model.objects import Object

from .apierrors import ApiError, invalid
from .resources import ResourceType

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# RBAC objects only need to be valid path segments (e.g. "system:controller:foo").
_PATH_SEGMENT_KINDS = {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}
_SUFFIX_ALPHABET = string.ascii_lowercase + string.digits
_SERVER_FIELDS = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds")


def now_rfc3339() -> str:
    """The current time as RFC 3339 with a Z suffix, second precision, like Kubernetes."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def random_suffix(length: int = 5) -> str:
    """A random [a-z0-9] suffix for generateName and pod names."""
    return "".join(random.choices(_SUFFIX_ALPHABET, k=length))


def name_problem(rtype: ResourceType, name: str) -> str:
    """Why `name` is not a valid object name for this type ("" when it is)."""
    if rtype.kind in _PATH_SEGMENT_KINDS:
        bad = name in (".", "..") or "/" in name or "%" in name
        return "may not contain '/' or '%' or be '.' or '..'" if bad else ""
    if rtype.kind == "Namespace":
        ok = len(name) <= 63 and _DNS_LABEL.match(name)
        return "" if ok else "a lowercase RFC 1123 label must consist of [a-z0-9-], max 63"
    ok = len(name) <= 253 and _DNS_SUBDOMAIN.match(name)
    return "" if ok else "a lowercase RFC 1123 subdomain must consist of [a-z0-9.-], max 253"


def _check_string_map(meta: Object, field: str) -> list[dict[str, str]]:
    value = meta.get(field)
    if value is None:
        return []
    ok = isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )
    if ok:
        return []
    return [_cause(f"metadata.{field}", "must be a map of string to string")]


def _cause(field: str, message: str, reason: str = "FieldValueInvalid") -> dict[str, str]:
    return {"reason": reason, "message": message, "field": field}


def check_metadata(rtype: ResourceType, obj: Object) -> None:
    """422 when client-set metadata has the wrong shape (labels, finalizers, ownerReferences)."""
    meta = obj["metadata"]
    causes = _check_string_map(meta, "labels") + _check_string_map(meta, "annotations")
    finalizers = meta.get("finalizers")
    if finalizers is not None and not (
        isinstance(finalizers, list) and all(isinstance(f, str) for f in finalizers)
    ):
        causes.append(_cause("metadata.finalizers", "must be a list of strings"))
    for i, ref in enumerate(meta.get("ownerReferences") or []):
        missing = [k for k in ("apiVersion", "kind", "name", "uid") if not _is_text(ref, k)]
        if missing:
            field = f"metadata.ownerReferences[{i}]"
            causes.append(_cause(field, f"missing {', '.join(missing)}", "FieldValueRequired"))
    if causes:
        raise invalid(rtype.kind, str(meta.get("name", "")), rtype.group, causes)


def _is_text(ref: Any, key: str) -> bool:
    return isinstance(ref, dict) and isinstance(ref.get(key), str) and bool(ref[key])


def stamp_created(rtype: ResourceType, obj: Object, namespace: str) -> Object:
    """Fill server-owned metadata of a new object; 422 for a bad or missing name."""
    meta = obj.setdefault("metadata", {})
    if not meta.get("name") and meta.get("generateName"):
        meta["name"] = f"{meta['generateName']}{random_suffix()}"
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        cause = _cause("metadata.name", "name or generateName is required", "FieldValueRequired")
        raise invalid(rtype.kind, "", rtype.group, [cause])
    if problem := name_problem(rtype, name):
        raise invalid(rtype.kind, name, rtype.group, [_cause("metadata.name", problem)])
    check_metadata(rtype, obj)
    for key in (*_SERVER_FIELDS, "resourceVersion", "generation", "managedFields"):
        meta.pop(key, None)
    if rtype.namespaced:
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    meta.update(uid=str(uuid.uuid4()), creationTimestamp=now_rfc3339(), generation=1)
    obj["apiVersion"], obj["kind"] = rtype.api_version, rtype.kind
    return obj


def _generation_payload(obj: Object, has_spec: bool) -> Any:
    if has_spec:
        return obj.get("spec")
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def stamp_updated(rtype: ResourceType, old: Object, new: Object) -> Object:
    """Carry immutable metadata over from `old` and bump generation if the payload changed."""
    check_metadata(rtype, new)
    meta, old_meta = new["metadata"], old["metadata"]
    for key in ("name", "namespace", *_SERVER_FIELDS):
        if key in old_meta:
            meta[key] = old_meta[key]
        else:
            meta.pop(key, None)
    meta.pop("managedFields", None)
    has_spec = "spec" in old or "spec" in new
    generation = int(old_meta.get("generation") or 1)
    if _generation_payload(old, has_spec) != _generation_payload(new, has_spec):
        generation += 1
    meta["generation"] = generation
    new["apiVersion"], new["kind"] = rtype.api_version, rtype.kind
    return new


def check_update_target(rtype: ResourceType, obj: Any, namespace: str, name: str) -> Object:
    """400 unless the body is an object whose name/namespace agree with the URL."""
    if not isinstance(obj, dict) or not isinstance(obj.get("metadata", {}), dict):
        raise ApiError(400, "the body must be a JSON object with object metadata", "BadRequest")
    meta = obj.setdefault("metadata", {})
    body_name = meta.get("name") or name
    if body_name != name:
        raise ApiError(
            400,
            f"the name of the object ({body_name}) does not match the name on the URL ({name})",
        )
    body_ns = meta.get("namespace") or namespace
    if rtype.namespaced and body_ns != namespace:
        raise ApiError(
            400,
            f"the namespace of the provided object ({body_ns}) does not match the namespace "
            f"sent on the request ({namespace})",
        )
    meta["name"] = name
    return obj
