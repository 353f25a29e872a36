"""Validating the deployable files offline: built-in kinds, custom resources, Knative, func.yaml.

What a cluster would check at apply time, without a cluster:

- built-in kinds with ``kubernetes_validate`` (strict); kinds it has no schema for are reported
  as unknown, never counted as checked;
- custom-resource instances against the ``openAPIV3Schema`` of their CRD (our own CRDs, and
  the Knative CRDs kept as data for Knative objects);
- func.yaml against func's own JSON schema, plus its identity and target.

The Knative webhook's rules (filter dialects, durations, modes, references) are the local
stack's own checks (:func:`amtd_stack.running.planning.plan_stack`), reused rather than written
twice.
Every check returns problems as strings naming the file, the object and the field.
"""

from __future__ import annotations

import ast
import datetime
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft4Validator  # type: ignore[import-untyped]

from amtd_stack.manifests import Manifest
from amtd_stack.running.definitions import FunctionDefinition
from amtd_stack.schemas import validation_causes

KUBERNETES_VERSION = "1.33"
Schemas = dict[tuple[str, str], Mapping[str, Any]]  # (apiVersion, kind) -> openAPIV3Schema


@dataclass
class Report:
    """Which objects a check covered, which it could not, and what it found wrong."""

    checked: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def check_builtin_kinds(manifests: Iterable[Manifest], version: str = KUBERNETES_VERSION) -> Report:
    """Strict kubernetes_validate of each object; kinds without a built-in schema are unknown."""
    import kubernetes_validate  # type: ignore[import-untyped]  # a dev tool, imported when checking

    report = Report()
    for manifest in manifests:
        try:
            kubernetes_validate.validate(manifest.obj, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            report.unknown.append(manifest.describe())
            continue
        except kubernetes_validate.ValidationError as error:
            where = ".".join(str(p) for p in error.path) or "(object)"
            report.problems.append(
                f"{manifest.path}: {manifest.describe()}: {where}: {error.message}"
            )
        report.checked.append(manifest.describe())
    return report


def read_crd_schemas(crds: Iterable[Mapping[str, Any]]) -> Schemas:
    """The openAPIV3Schema of every served version of each CRD, by (apiVersion, kind)."""
    schemas: Schemas = {}
    for crd in crds:
        if crd.get("kind") != "CustomResourceDefinition":
            continue
        spec = crd["spec"]
        for version in spec.get("versions") or []:
            schema = (version.get("schema") or {}).get("openAPIV3Schema")
            if version.get("served", True) and schema:
                api_version = f"{spec['group']}/{version['name']}"
                schemas[(api_version, spec["names"]["kind"])] = schema
    return schemas


def read_schema_files(paths: Iterable[Path]) -> Schemas:
    """CRD schemas from YAML files (e.g. the Knative CRDs kept as data)."""
    documents: list[Mapping[str, Any]] = []
    for path in paths:
        documents += [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    return read_crd_schemas(documents)


def check_custom_resources(
    objects: Iterable[tuple[Mapping[str, Any], str]], schemas: Schemas
) -> Report:
    """Validate (object, where-from) pairs against their CRD schema; others are unknown."""
    report = Report()
    for obj, origin in objects:
        key = (str(obj.get("apiVersion")), str(obj.get("kind")))
        label = f"{key[1]} {(obj.get('metadata') or {}).get('name')} ({origin})"
        if key not in schemas:
            report.unknown.append(label)
            continue
        report.checked.append(label)
        for cause in validation_causes(obj, schemas[key]):
            report.problems.append(f"{label}: {cause.get('field')}: {cause.get('message')}")
    return report


def read_func_yaml(path: Path) -> Any:
    """A func.yaml as func reads it: timestamps stay strings (Go's time.Time is text in YAML)."""
    return stringify_times(yaml.safe_load(path.read_text(encoding="utf-8")))


def stringify_times(value: Any) -> Any:
    """Dates and datetimes (YAML timestamps) as ISO-8601 text, recursively (pure)."""
    if isinstance(value, dict):
        return {key: stringify_times(item) for key, item in value.items()}
    if isinstance(value, list):
        return [stringify_times(item) for item in value]
    if isinstance(value, datetime.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value


def check_func_yaml(spec: Any, schema: Mapping[str, Any], origin: str) -> list[str]:
    """Problems func's own JSON schema (draft 4) finds in a func.yaml."""
    validator = Draft4Validator(schema)
    return [
        f"{origin}: {'.'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
        for error in sorted(validator.iter_errors(spec), key=lambda e: list(map(str, e.path)))
    ]


def load_json(path: Path) -> Any:
    """A JSON file."""
    return json.loads(path.read_text(encoding="utf-8"))


def check_service_accounts(
    manifests: Iterable[Manifest], functions: Iterable[FunctionDefinition]
) -> list[str]:
    """Every ServiceAccount a function or an ApiServerSource runs as is in the manifests."""
    manifests = list(manifests)
    accounts = {(m.namespace, m.name) for m in manifests if m.kind == "ServiceAccount"}
    problems = []
    for function in functions:
        if (function.namespace, function.service_account) not in accounts:
            problems.append(
                f"{function.folder / 'func.yaml'}: deploy.serviceAccountName: no ServiceAccount "
                f"{function.namespace}/{function.service_account} in the manifests"
            )
    for source in (m for m in manifests if m.kind == "ApiServerSource"):
        account = str(source.spec.get("serviceAccountName") or "default")
        if (source.namespace, account) not in accounts:
            problems.append(
                f"{source.path}: {source.describe()}: spec.serviceAccountName: no ServiceAccount "
                f"{source.namespace}/{account} in the manifests"
            )
    return problems


def check_target(function: FunctionDefinition) -> list[str]:
    """main.py defines FUNCTION_TARGET as a ``@functions_framework.http`` function."""
    tree = ast.parse((function.folder / "main.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == function.target:
            decorators = [ast.unparse(d) for d in node.decorator_list]
            if "functions_framework.http" in decorators:
                return []
            found = ", ".join(decorators) or "none"
            problem = f"must be @functions_framework.http (found {found})"
            return [f"{function.folder}/main.py: {function.target}: {problem}"]
    return [f"{function.folder}/main.py: FUNCTION_TARGET {function.target!r} is not defined there"]
