"""The `scale` subresource of Deployments and ReplicaSets: autoscaling/v1 Scale get/update/patch.

A Scale is a view of its object (name, uid, resourceVersion; spec.replicas; status.replicas and
the selector as a string); writing one changes only the object's spec.replicas, through the
ordinary update path (conflict checks, generation, dry run), so the controllers converge pods.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from amtd.model.objects import Object

from .apierrors import bad_request, invalid
from .handling import Api, Target, WriteOptions, present
from .patching import apply_patch

SUBRESOURCE = "scale"
SCALE_API_VERSION = "autoscaling/v1"


def selector_string(selector: Mapping[str, Any]) -> str:
    """A LabelSelector object in the string form `status.selector` carries (pure)."""
    terms = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
        listed = ",".join(sorted(values))
        terms.append(
            {"In": f"{key} in ({listed})", "NotIn": f"{key} notin ({listed})", "Exists": key}.get(
                op, f"!{key}"
            )
        )
    return ",".join(terms)


def scale_of(obj: Object) -> Object:
    """The Scale view of a Deployment or ReplicaSet (pure)."""
    meta, spec = obj["metadata"], obj.get("spec") or {}
    keep = ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
    return {
        "kind": "Scale",
        "apiVersion": SCALE_API_VERSION,
        "metadata": {k: meta[k] for k in keep if k in meta},
        "spec": {"replicas": int(spec.get("replicas", 1))},
        "status": {
            "replicas": int((obj.get("status") or {}).get("replicas") or 0),
            "selector": selector_string(spec.get("selector") or {}),
        },
    }


def _wanted_replicas(name: str, scale: Any) -> int:
    """spec.replicas of a sent Scale; 400 for a non-Scale body, 422 for a bad count."""
    if not isinstance(scale, dict) or scale.get("kind", "Scale") != "Scale":
        raise bad_request("the request body must be an autoscaling/v1 Scale object")
    replicas = (scale.get("spec") or {}).get("replicas", 0)
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
        cause = {
            "reason": "FieldValueInvalid",
            "message": "must be greater than or equal to 0",
            "field": "spec.replicas",
        }
        raise invalid("Scale", name, "autoscaling", [cause])
    return replicas


def _write_scale(api: Api, target: Target, scale: Any, options: WriteOptions) -> Object:
    main = Target(target.rtype, target.namespace, target.name)
    with api.store.lock:
        new = present(target.rtype, api.get(main))
        new["spec"] = {**(new.get("spec") or {})}
        new["spec"]["replicas"] = _wanted_replicas(target.name, scale)
        sent_rv = ((scale or {}).get("metadata") or {}).get("resourceVersion")
        new["metadata"]["resourceVersion"] = sent_rv or new["metadata"]["resourceVersion"]
        return scale_of(api.update(main, new, options))


def serve_scale(
    api: Api, verb: str, target: Target, body: Any, content_type: str, options: WriteOptions
) -> Object:
    """GET, PUT or PATCH one object's scale subresource; the answer is the Scale."""
    main = Target(target.rtype, target.namespace, target.name)
    if verb == "get":
        return scale_of(api.get(main))
    if verb == "update":
        return _write_scale(api, target, body, options)
    with api.store.lock:  # patch: apply it to the current Scale, then write that
        current = scale_of(api.get(main))
        return _write_scale(api, target, apply_patch(current, body, content_type), options)
