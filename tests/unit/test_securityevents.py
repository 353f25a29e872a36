"""SecurityEvents: Phoenix's spec read unchanged, our status round-trips, targets are checked."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from amtd.model.securityevents import SecurityEvent, SecurityEventSpec
from amtd.model.targets import Target
from unit.samples import PHOENIX_SECURITY_EVENT


def event_with(**spec: Any) -> dict[str, Any]:
    """The §1.3 SecurityEvent with spec keys replaced (None removes the key)."""
    document = copy.deepcopy(PHOENIX_SECURITY_EVENT)
    for key, value in spec.items():
        if value is None:
            document["spec"].pop(key)
        else:
            document["spec"][key] = value
    return document


def test_phoenix_security_event_reads_unchanged() -> None:
    event = SecurityEvent.model_validate(PHOENIX_SECURITY_EVENT)
    assert event.spec.parsed_targets() == [Target("shop", "cart-6b8f7d9c4-hx2lp")]
    assert event.spec.rule == PHOENIX_SECURITY_EVENT["spec"]["rule"]
    assert event.status.phase is None
    assert event.status.decisions == []


def test_integrator_namespace_on_a_cluster_scoped_object_is_tolerated() -> None:
    document = event_with()
    document["metadata"]["namespace"] = "default"
    assert SecurityEvent.model_validate(document).metadata.name.startswith("falco-")


def test_go_empty_values_count_as_unset_and_description_is_optional() -> None:
    spec = SecurityEventSpec.model_validate(
        {"targets": ["demo/a"], "rule": {"type": "timed", "threatLevel": "", "source": ""}}
    )
    assert spec.rule == {"type": "timed"}
    assert spec.description == ""


def test_extra_rule_keys_are_kept() -> None:
    rule = {"type": "x", "source": "FalcoIntegrator", "hostname": "worker-2"}
    assert SecurityEvent.model_validate(event_with(rule=rule)).spec.rule == rule


def test_parsed_targets_drop_duplicates_and_keep_order() -> None:
    spec = SecurityEventSpec(targets=["b/p", "a/q", "b/p"], rule={})
    assert spec.parsed_targets() == [Target("b", "p"), Target("a", "q")]


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        (
            ["cart"],
            "targets[0]: target 'cart' must have the form 'namespace/name' (exactly one '/')",
        ),
        (["shop/a", "/cart"], "targets[1]: namespace is empty"),
        (["shop/"], "targets[0]: pod name is empty"),
        (["SHOP/cart"], "targets[0]: namespace 'SHOP' is not a DNS-1123 label (a-z, 0-9, '-')"),
        (["n" * 64 + "/a"], f"targets[0]: namespace {'n' * 64!r} is longer than 63 characters"),
        (["a/" + "p" * 254], f"targets[0]: pod name {'p' * 40!r}... is longer than 253 characters"),
    ],
)
def test_bad_targets_are_rejected_naming_the_position(targets: list[str], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        SecurityEvent.model_validate(event_with(targets=targets))
    ((error),) = caught.value.errors()
    assert error["loc"] == ("spec", "targets")
    assert error["msg"] == f"Value error, {message}"


def test_non_string_target_is_rejected_at_its_index() -> None:
    with pytest.raises(ValidationError) as caught:
        SecurityEvent.model_validate(event_with(targets=["shop/a", 7]))
    ((error),) = caught.value.errors()
    assert error["loc"] == ("spec", "targets", 1)
    assert error["msg"] == "Input should be a valid string"


@pytest.mark.parametrize(
    ("spec", "location", "fragment"),
    [
        ({"targets": []}, ("spec", "targets"), "at least 1 item"),
        ({"targets": None}, ("spec", "targets"), "Field required"),
        ({"rule": None}, ("spec", "rule"), "Field required"),
        ({"rule": {"threatLevel": 3}}, ("spec", "rule"), "must be a string, got int"),
        ({"labels": {"a": "b"}}, ("spec", "labels"), "Extra inputs"),
    ],
)
def test_spec_shape_errors_name_their_field(
    spec: dict[str, Any], location: tuple[Any, ...], fragment: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        SecurityEvent.model_validate(event_with(**spec))
    ((error),) = caught.value.errors()
    assert error["loc"] == location
    assert fragment in error["msg"]


STATUS = {
    "phase": "Decided",
    "action": "quarantine",
    "observedGeneration": 1,
    "decisions": [
        {
            "target": "shop/cart-6b8f7d9c4-hx2lp",
            "outcome": "Matched",
            "stepId": "u/1/shop/cart-6b8f7d9c4-hx2lp",
            "podUid": "p-1",
            "policy": "shop/defend",
            "ruleIndex": 2,
            "rule": {"type": "Terminal shell in container"},
            "score": 1,
            "action": "quarantine",
            "parameters": {},
            "dryRun": False,
            "allowStandalonePods": False,
            "ties": ["shop/other#0"],
            "reason": "BestMatch",
            "decidedAt": "2025-03-14T09:12:45Z",
        }
    ],
    "executions": [
        {
            "stepId": "u/1/shop/cart-6b8f7d9c4-hx2lp",
            "target": "shop/cart-6b8f7d9c4-hx2lp",
            "action": "quarantine",
            "result": "Succeeded",
            "reason": "Quarantined",
            "message": "isolated",
            "executor": "quarantine",
            "time": "2025-03-14T09:12:46Z",
            "podUid": "p-1",
        }
    ],
}


def test_status_round_trips_through_the_manifest() -> None:
    document = {**PHOENIX_SECURITY_EVENT, "status": STATUS}
    event = SecurityEvent.model_validate(document)
    assert event.status.decisions[0].rule_index == 2
    assert event.status.executions[0].result == "Succeeded"
    manifest = event.to_manifest()
    assert manifest["status"] == STATUS
    assert manifest["spec"] == PHOENIX_SECURITY_EVENT["spec"]
    assert SecurityEvent.model_validate(manifest) == event


def test_unknown_outcome_is_rejected() -> None:
    status = copy.deepcopy(STATUS)
    status["decisions"][0]["outcome"] = "Dropped"
    with pytest.raises(ValidationError) as caught:
        SecurityEvent.model_validate({**PHOENIX_SECURITY_EVENT, "status": status})
    assert caught.value.errors()[0]["loc"] == ("status", "decisions", 0, "outcome")
