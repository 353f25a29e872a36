"""CustomResourceDefinitions: checks, their status, and the ResourceTypes they serve (pure)."""

from __future__ import annotations

from typing import Any

from amtd.model.objects import Object
from amtd_stack.schemas import structural_violations

from .apierrors import invalid
from .resources import PrinterColumn, ResourceType
from .stamping import now_rfc3339

CRD_KIND = "CustomResourceDefinition"
CRD_GROUP = "apiextensions.k8s.io"


def _cause(field: str, message: str) -> dict[str, str]:
    return {"reason": "FieldValueInvalid", "message": message, "field": field}


def _spec_causes(spec: Any) -> list[dict[str, str]]:
    if not isinstance(spec, dict):
        return [_cause("spec", "Required value")]
    causes = []
    raw_names = spec.get("names")
    names: dict[str, Any] = raw_names if isinstance(raw_names, dict) else {}
    for key in ("plural", "kind"):
        if not isinstance(names.get(key), str) or not names.get(key):
            causes.append(_cause(f"spec.names.{key}", "Required value"))
    if not isinstance(spec.get("group"), str) or not spec.get("group"):
        causes.append(_cause("spec.group", "Required value"))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(_cause("spec.scope", 'Unsupported value: must be "Namespaced" or "Cluster"'))
    versions = spec.get("versions")
    if not isinstance(versions, list) or not versions:
        return [*causes, _cause("spec.versions", "must have at least one version")]
    if not all(isinstance(v, dict) and isinstance(v.get("name"), str) for v in versions):
        return [*causes, _cause("spec.versions", "every version needs a name")]
    if sum(1 for v in versions if v.get("storage")) != 1:
        causes.append(_cause("spec.versions", "must have exactly one version marked as storage"))
    for index, version in enumerate(versions):
        causes.extend(_schema_causes(version, f"spec.versions[{index}].schema.openAPIV3Schema"))
    return causes


def _schema_causes(version: Object, path: str) -> list[dict[str, str]]:
    """apiextensions/v1 needs a structural schema on every version."""
    schema = (version.get("schema") or {}).get("openAPIV3Schema")
    if schema is None:
        return [_cause(path, "Required value: schemas are required")]
    return [_cause(field, message) for field, message in structural_violations(schema, path)]


def check_crd(crd: Object) -> None:
    """422 Invalid when a CRD lacks what registration needs or its name is not plural.group."""
    name = crd["metadata"].get("name", "")
    spec = crd.get("spec")
    causes = _spec_causes(spec)
    if (
        not causes
        and isinstance(spec, dict)
        and name != f"{spec['names']['plural']}.{spec['group']}"
    ):
        causes.append(_cause("metadata.name", 'must be spec.names.plural+"."+spec.group'))
    if causes:
        raise invalid(CRD_KIND, name, CRD_GROUP, causes)


def accepted_names(spec: Object) -> Object:
    """spec.names with singular and listKind defaulted, as status.acceptedNames reports them."""
    names = dict(spec["names"])
    names.setdefault("singular", names["kind"].lower())
    names.setdefault("listKind", f"{names['kind']}List")
    return names


def established_status(crd: Object) -> Object:
    """The status the real server converges to for a conflict-free CRD."""
    now = now_rfc3339()
    conditions = [
        ("NamesAccepted", "NoConflicts", "no conflicts found"),
        ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
    ]
    storage = [v["name"] for v in crd["spec"]["versions"] if v.get("storage")]
    return {
        "conditions": [
            {"type": t, "status": "True", "reason": r, "message": m, "lastTransitionTime": now}
            for t, r, m in conditions
        ],
        "acceptedNames": accepted_names(crd["spec"]),
        "storedVersions": storage,
    }


def _printer_columns(version: Object) -> tuple[PrinterColumn, ...]:
    columns = version.get("additionalPrinterColumns")
    if columns is None:
        return (PrinterColumn("Age", ".metadata.creationTimestamp", "date"),)
    return tuple(
        PrinterColumn(
            name=str(c.get("name", "")),
            json_path=str(c.get("jsonPath", "")),
            type=str(c.get("type", "string")),
            format=str(c.get("format", "")),
            description=str(c.get("description", "")),
            priority=int(c.get("priority", 0) or 0),
        )
        for c in columns
        if isinstance(c, dict)
    )


def resource_types(crd: Object) -> list[ResourceType]:
    """One ResourceType per served version of a checked CRD."""
    spec = crd["spec"]
    names = accepted_names(spec)
    types = []
    for version in spec["versions"]:
        if not version.get("served", True):
            continue
        subresources = tuple(k for k in (version.get("subresources") or {}) if k == "status")
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        types.append(
            ResourceType(
                group=spec["group"],
                version=version["name"],
                plural=names["plural"],
                kind=names["kind"],
                namespaced=spec["scope"] == "Namespaced",
                singular=names["singular"],
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                subresources=subresources,
                printer_columns=_printer_columns(version),
                schema=schema if isinstance(schema, dict) else None,
                crd_name=crd["metadata"]["name"],
            )
        )
    return types
