"""CRD agreement: knative/crds/*.yaml and the pydantic models describe the same objects.

The CRD's openAPIV3Schema is converted to a JSON Schema the way the API server reads it with
strict field validation: x-kubernetes-* keys dropped, objects with listed properties closed
unless they preserve unknown fields, everything else open.
"""

from __future__ import annotations

import copy
from typing import Any, get_args

import kubernetes_validate
import pytest
from hypothesis import given
from jsonschema import Draft4Validator
from pydantic import BaseModel

from amtd.model.actions import (
    ACTION_KINDS,
    STRING_KINDS,
    Action,
    CustomActionParameters,
    DebuggerParameters,
    DeleteParameters,
)
from amtd.model.policies import PLURAL as POLICY_PLURAL
from amtd.model.policies import Policy, PolicySpec, StrategyEntry
from amtd.model.securityevents import PLURAL as EVENT_PLURAL
from amtd.model.securityevents import (
    Decision,
    DecisionOutcome,
    Execution,
    ExecutionResult,
    Phase,
    SecurityEvent,
    SecurityEventSpec,
    SecurityEventStatus,
)
from amtd_stack.schemas import structural_violations
from unit.generators import SETTINGS, policy_documents, security_event_documents
from unit.samples import PHOENIX_SECURITY_EVENT, load_crd, load_phoenix_amtd, with_spec

POLICY_CRD = load_crd(POLICY_PLURAL)
EVENT_CRD = load_crd(EVENT_PLURAL)


def version_of(crd: dict[str, Any]) -> dict[str, Any]:
    """The CRD's only version (v1beta1, as in Phoenix)."""
    (version,) = crd["spec"]["versions"]
    assert version["name"] == "v1beta1"
    result: dict[str, Any] = version
    return result


def schema_at(crd: dict[str, Any], *path: str) -> dict[str, Any]:
    """The openAPIV3Schema node at a path of property names ("[]": array items; map keys)."""
    node: dict[str, Any] = version_of(crd)["schema"]["openAPIV3Schema"]
    for step in path:
        if step == "[]":
            node = node["items"]
        elif step in node.get("properties", {}):
            node = node["properties"][step]
        else:
            node = node["additionalProperties"]  # a map: every key has the same schema
    return node


def to_json_schema(node: Any) -> Any:
    """Convert an openAPIV3Schema node to a Draft 4 JSON Schema (strict field validation)."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key == "description":
            continue
        if key == "properties":
            out[key] = {name: to_json_schema(child) for name, child in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = to_json_schema(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [to_json_schema(child) for child in value]
        else:
            out[key] = value
    is_open = node.get("x-kubernetes-preserve-unknown-fields") or "additionalProperties" in node
    if "properties" in node and not is_open:
        out["additionalProperties"] = False
    return out


POLICY_SCHEMA = Draft4Validator(to_json_schema(version_of(POLICY_CRD)["schema"]["openAPIV3Schema"]))
EVENT_SCHEMA = Draft4Validator(to_json_schema(version_of(EVENT_CRD)["schema"]["openAPIV3Schema"]))


def schema_errors(validator: Draft4Validator, document: Any) -> list[str]:
    """Every schema violation, as 'path: message'."""
    return [
        f"{'.'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def aliases(model: type[BaseModel]) -> set[str]:
    """The names a model's fields have in YAML."""
    return {field.alias or name for name, field in model.model_fields.items()}


def required_aliases(model: type[BaseModel]) -> set[str]:
    """The YAML names of the fields a model requires."""
    return {
        field.alias or name for name, field in model.model_fields.items() if field.is_required()
    }


@pytest.mark.parametrize(
    ("crd", "path", "model"),
    [
        (POLICY_CRD, ("spec",), PolicySpec),
        (POLICY_CRD, ("spec", "strategy", "[]"), StrategyEntry),
        (POLICY_CRD, ("spec", "strategy", "[]", "action"), Action),
        (POLICY_CRD, ("spec", "strategy", "[]", "action", "delete"), DeleteParameters),
        (POLICY_CRD, ("spec", "strategy", "[]", "action", "debugger"), DebuggerParameters),
        (POLICY_CRD, ("spec", "strategy", "[]", "action", "customAction"), CustomActionParameters),
        (EVENT_CRD, ("spec",), SecurityEventSpec),
        (EVENT_CRD, ("status",), SecurityEventStatus),
        (EVENT_CRD, ("status", "decisions", "[]"), Decision),
        (EVENT_CRD, ("status", "executions", "[]"), Execution),
    ],
)
def test_crd_properties_equal_model_aliases(
    crd: dict[str, Any], path: tuple[str, ...], model: type[BaseModel]
) -> None:
    node = schema_at(crd, *path)
    assert set(node["properties"]) == aliases(model)
    assert set(node.get("required", [])) == required_aliases(model)


def test_crd_action_keys_are_the_action_kinds() -> None:
    action = schema_at(POLICY_CRD, "spec", "strategy", "[]", "action")
    assert list(action["properties"]) == list(ACTION_KINDS)
    assert (action["minProperties"], action["maxProperties"]) == (1, 1)


@pytest.mark.parametrize(
    ("path", "literal"),
    [
        (("status", "phase"), Phase),
        (("status", "decisions", "[]", "outcome"), DecisionOutcome),
        (("status", "executions", "[]", "result"), ExecutionResult),
    ],
)
def test_crd_enums_equal_model_literals(path: tuple[str, ...], literal: Any) -> None:
    assert schema_at(EVENT_CRD, *path)["enum"] == list(get_args(literal))


@pytest.mark.parametrize("kind", STRING_KINDS)
def test_v01_string_actions_validate_against_the_crd(kind: str) -> None:
    document = set_action(load_phoenix_amtd(), kind)
    assert schema_errors(POLICY_SCHEMA, document) == []
    assert Policy.model_validate(document).spec.strategy[0].action.kind == kind


@pytest.mark.parametrize("crd", [POLICY_CRD, EVENT_CRD], ids=["amtd", "securityevent"])
def test_crd_schemas_are_structural(crd: dict[str, Any]) -> None:
    assert structural_violations(version_of(crd)["schema"]["openAPIV3Schema"], "schema") == []


def test_phoenix_fixtures_validate_against_the_crds() -> None:
    assert schema_errors(POLICY_SCHEMA, load_phoenix_amtd()) == []
    assert schema_errors(EVENT_SCHEMA, PHOENIX_SECURITY_EVENT) == []


@SETTINGS
@given(policy_documents())
def test_valid_policies_dumped_by_alias_validate_against_the_crd(document: dict[str, Any]) -> None:
    policy = Policy.model_validate(document)
    dumped = policy.model_dump(by_alias=True, exclude_none=True, mode="json")
    assert schema_errors(POLICY_SCHEMA, dumped) == []
    assert Policy.model_validate(dumped) == policy


@SETTINGS
@given(security_event_documents())
def test_valid_security_events_dumped_by_alias_validate_against_the_crd(
    document: dict[str, Any],
) -> None:
    event = SecurityEvent.model_validate(document)
    manifest = event.to_manifest()
    assert schema_errors(EVENT_SCHEMA, manifest) == []
    assert SecurityEvent.model_validate(manifest) == event


def set_action(document: dict[str, Any], action: Any) -> dict[str, Any]:
    """The document with the first strategy entry's action replaced."""
    changed = copy.deepcopy(document)
    changed["spec"]["strategy"][0]["action"] = action
    return changed


def set_targets(targets: list[Any]) -> dict[str, Any]:
    """The §1.3 SecurityEvent with other targets."""
    changed = copy.deepcopy(PHOENIX_SECURITY_EVENT)
    changed["spec"]["targets"] = targets
    return changed


POLICY_REJECTS = {
    "missing podSelector": with_spec(load_phoenix_amtd(), podSelector=None),
    "missing strategy": with_spec(load_phoenix_amtd(), strategy=None),
    "empty strategy": with_spec(load_phoenix_amtd(), strategy=[]),
    "action with two keys": set_action(load_phoenix_amtd(), {"delete": {}, "quarantine": {}}),
    "action with no key": set_action(load_phoenix_amtd(), {}),
    "action null": set_action(load_phoenix_amtd(), {"delete": None}),
    "unknown action": set_action(load_phoenix_amtd(), {"restart": {}}),
    "unknown string action": set_action(load_phoenix_amtd(), "reboot"),
    "debugger as a string": set_action(load_phoenix_amtd(), "debugger"),
    "action with an unknown second key": set_action(load_phoenix_amtd(), {"delete": {}, "x": {}}),
    "debugger without image": set_action(load_phoenix_amtd(), {"debugger": {"name": "d"}}),
    "negative grace period": set_action(
        load_phoenix_amtd(), {"delete": {"gracePeriodSeconds": -1}}
    ),
    "non-string rule value": with_spec(
        load_phoenix_amtd(), strategy=[{"rule": {"threatLevel": 5}, "action": {"delete": {}}}]
    ),
    "non-string selector value": with_spec(load_phoenix_amtd(), podSelector={"mtdSecured": True}),
}
EVENT_REJECTS = {
    "target without '/'": set_targets(["cart"]),
    "target '/name'": set_targets(["/cart"]),
    "target 'namespace/'": set_targets(["shop/"]),
    "target upper case": set_targets(["Shop/cart"]),
    "target with two '/'": set_targets(["a/b/c"]),
    "target not a string": set_targets([7]),
    "no targets": set_targets([]),
}


@pytest.mark.parametrize("case", sorted(POLICY_REJECTS))
def test_policies_the_model_rejects_are_rejected_by_the_crd(case: str) -> None:
    document = POLICY_REJECTS[case]
    with pytest.raises(ValueError):
        Policy.model_validate(document)
    assert schema_errors(POLICY_SCHEMA, document) != []


@pytest.mark.parametrize("case", sorted(EVENT_REJECTS))
def test_security_events_the_model_rejects_are_rejected_by_the_crd(case: str) -> None:
    document = EVENT_REJECTS[case]
    with pytest.raises(ValueError):
        SecurityEvent.model_validate(document)
    assert schema_errors(EVENT_SCHEMA, document) != []


@pytest.mark.parametrize("crd", [POLICY_CRD, EVENT_CRD], ids=["amtd", "securityevent"])
def test_crds_are_valid_apiextensions_objects(crd: dict[str, Any]) -> None:
    assert kubernetes_validate.validate(crd, "1.33", strict=True) == "1.33"


def test_crd_validation_catches_a_misspelt_field() -> None:
    broken = copy.deepcopy(EVENT_CRD)
    broken["spec"]["scopes"] = broken["spec"].pop("scope")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.33", strict=True)


@pytest.mark.parametrize(
    ("crd", "scope", "short_names"),
    [(POLICY_CRD, "Namespaced", ["amtd", "amtds"]), (EVENT_CRD, "Cluster", ["secevent", "sev"])],
    ids=["amtd", "securityevent"],
)
def test_crd_names_scope_and_status_subresource(
    crd: dict[str, Any], scope: str, short_names: list[str]
) -> None:
    spec = crd["spec"]
    assert (spec["group"], spec["scope"]) == ("amtd.r6security.com", scope)
    assert spec["names"]["shortNames"] == short_names
    assert version_of(crd)["subresources"] == {"status": {}}
    assert (version_of(crd)["served"], version_of(crd)["storage"]) == (True, True)


@pytest.mark.parametrize(
    ("crd", "columns"),
    [
        (
            EVENT_CRD,
            {
                "Target": ".spec.targets[*]",
                "Type": ".spec.rule.type",
                "Level": ".spec.rule.threatLevel",
                "Source": ".spec.rule.source",
                "Phase": ".status.phase",
                "Action": ".status.action",
                "Age": ".metadata.creationTimestamp",
            },
        ),
        (
            POLICY_CRD,
            {
                "Selector": ".spec.podSelector",
                "Rules": ".spec.strategy[*].rule.type",
                "Age": ".metadata.creationTimestamp",
            },
        ),
    ],
    ids=["securityevent", "amtd"],
)
def test_printer_columns(crd: dict[str, Any], columns: dict[str, str]) -> None:
    printed = version_of(crd)["additionalPrinterColumns"]
    assert {column["name"]: column["jsonPath"] for column in printed} == columns
    assert [column["type"] for column in printed if column["name"] == "Age"] == ["date"]


@pytest.mark.parametrize("crd", [POLICY_CRD, EVENT_CRD], ids=["amtd", "securityevent"])
def test_printer_columns_point_at_fields_of_the_schema(crd: dict[str, Any]) -> None:
    for column in version_of(crd)["additionalPrinterColumns"]:
        steps = column["jsonPath"].lstrip(".").replace("[*]", ".[]").split(".")
        if steps[0] == "metadata":
            continue  # metadata is the API server's, not in our schema
        assert schema_at(crd, *steps)["type"] in ("string", "object"), column
