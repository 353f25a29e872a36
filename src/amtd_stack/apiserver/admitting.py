"""Per-kind admission before a write: namespace defaults, CRD checks and status, and custom
resource pruning + schema validation (pure)."""

from __future__ import annotations

from amtd.model.objects import Object
from amtd_stack import schemas

from . import definitions
from .apierrors import bad_request, invalid
from .resources import ResourceType

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def _admit_namespace(obj: Object) -> Object:
    meta = obj["metadata"]
    meta["labels"] = {**(meta.get("labels") or {}), NAMESPACE_NAME_LABEL: meta["name"]}
    raw_spec = obj.get("spec")
    spec: Object = raw_spec if isinstance(raw_spec, dict) else {}
    obj["spec"] = {**spec, "finalizers": spec.get("finalizers", ["kubernetes"])}
    phase = "Terminating" if meta.get("deletionTimestamp") else "Active"
    obj["status"] = {**(obj.get("status") or {}), "phase": phase}
    return obj


def _admit_crd(obj: Object) -> Object:
    definitions.check_crd(obj)
    obj["status"] = definitions.established_status(obj)
    return obj


def _admit_custom(rtype: ResourceType, obj: Object, strict: bool) -> Object:
    if rtype.schema is None:
        return obj
    if strict and (unknown := schemas.unknown_fields(obj, rtype.schema)):
        listed = ", ".join(f'unknown field "{f}"' for f in unknown)
        raise bad_request(
            f'{rtype.kind} in version "{rtype.version}" cannot be handled as a {rtype.kind}: '
            f"strict decoding error: {listed}"
        )
    pruned: Object = schemas.prune(obj, rtype.schema, is_root=True)
    causes = schemas.validation_causes(pruned, rtype.schema)
    if causes:
        raise invalid(rtype.kind, pruned["metadata"].get("name", ""), rtype.group, causes)
    return pruned


def admit(rtype: ResourceType, obj: Object, strict: bool = False) -> Object:
    """The object as it will be stored, or 422 Invalid (400 for unknown fields when `strict`,
    i.e. fieldValidation=Strict, on custom resources); may return a new dict."""
    if rtype.group == "" and rtype.plural == "namespaces":
        return _admit_namespace(obj)
    if rtype.group == definitions.CRD_GROUP and rtype.plural == "customresourcedefinitions":
        return _admit_crd(obj)
    if rtype.is_custom:
        return _admit_custom(rtype, obj, strict)
    return obj
