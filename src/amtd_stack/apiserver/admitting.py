"""Per-kind admission before a write: namespace defaults, CRD checks and status, and custom
resource pruning + schema validation (pure)."""

from __future__ import annotations

from amtd.model.objects import Object
from amtd_stack import schemas

from . import definitions
from .apierrors import bad_request, invalid
from .defaulting import default_object
from .fieldschemas import drop_unknown_fields
from .jobs import job_causes, label_job
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


def _report_unknown(
    rtype: ResourceType, unknown: list[str], strict: bool, warnings: list[str] | None
) -> None:
    """fieldValidation: Strict refuses unknown fields (400), Warn reports them, Ignore not."""
    messages = [f'unknown field "{f}"' for f in unknown]
    if strict and messages:
        raise bad_request(
            f'{rtype.kind} in version "{rtype.version}" cannot be handled as a {rtype.kind}: '
            f"strict decoding error: {', '.join(messages)}"
        )
    if warnings is not None:
        warnings.extend(messages)


def _admit_custom(
    rtype: ResourceType,
    obj: Object,
    strict: bool,
    warnings: list[str] | None,
    stored: Object | None,
) -> Object:
    if rtype.schema is None:
        return obj
    unknown = schemas.unknown_fields(obj, rtype.schema, stored=stored)
    _report_unknown(rtype, unknown, strict, warnings)
    pruned: Object = schemas.prune(obj, rtype.schema, is_root=True, stored=stored)
    causes = schemas.validation_causes(pruned, rtype.schema)
    if causes:
        raise invalid(rtype.kind, pruned["metadata"].get("name", ""), rtype.group, causes)
    return pruned


def _admit_job(rtype: ResourceType, obj: Object) -> Object:
    label_job(obj)
    default_object(rtype.group, rtype.kind, obj)
    if causes := job_causes(obj):
        raise invalid(rtype.kind, obj["metadata"].get("name", ""), rtype.group, causes)
    return obj


def admit(
    rtype: ResourceType, obj: Object, strict: bool = False, warnings: list[str] | None = None,
    stored: Object | None = None,
) -> Object:  # fmt: skip
    """The object as it will be stored, or 422 Invalid (400 for unknown fields when `strict`,
    i.e. fieldValidation=Strict; with Warn they are dropped and listed in `warnings`); may
    return a new dict. A custom resource is rebuilt by pruning, except for the parts it shares
    with ``stored`` (the object before an update), which were admitted when it was written."""
    if rtype.is_custom:
        return _admit_custom(rtype, obj, strict, warnings, stored)
    if rtype.group == definitions.CRD_GROUP and rtype.plural == "customresourcedefinitions":
        return _admit_crd(obj)  # its schemas are checked by check_crd, not by the client model
    _report_unknown(rtype, drop_unknown_fields(rtype.group, rtype.kind, obj), strict, warnings)
    if rtype.group == "" and rtype.plural == "namespaces":
        return _admit_namespace(obj)
    if (rtype.group, rtype.kind) == ("batch", "Job"):
        return _admit_job(rtype, obj)
    return default_object(rtype.group, rtype.kind, obj)
