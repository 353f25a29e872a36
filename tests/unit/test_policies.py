"""Policies (AMTD): every upstream form is read unchanged; every rejection names its field."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from amtd.model.policies import Policy
from unit.samples import load_phoenix_amtd, policy_document, with_spec


def test_phoenix_sample_file_reads_unchanged() -> None:
    policy = Policy.model_validate(load_phoenix_amtd())
    assert policy.ref == "demo/adaptivemovingtargetdefense-sample"
    assert policy.spec.pod_selector == {"mtdSecured": "true"}
    assert policy.rules() == [
        {"type": "default"},
        {"type": "test", "threatLevel": "warning", "source": "TimerBackend"},
        {"type": "network-attack"},
        {"type": "filesystem-corruption", "threatLevel": "medium", "source": "falco"},
        {"threatLevel": "medium"},
    ]
    kinds = [entry.action.kind for entry in policy.spec.strategy]
    assert kinds == ["disable", "delete", "quarantine", "quarantine", "quarantine"]
    assert (policy.spec.dry_run, policy.spec.allow_standalone_pods) == (False, False)


def test_v01_string_actions_read_as_objects() -> None:
    text = """
    apiVersion: amtd.r6security.com/v1beta1
    kind: AdaptiveMovingTargetDefense
    metadata: {name: legacy, namespace: default}
    spec:
      podSelector: {app: nginx}
      strategy:
        - {rule: {type: default}, action: disable}
        - {rule: {type: network-attack}, action: quarantine}
        - {rule: {threatLevel: high}, action: delete}
    """
    policy = Policy.model_validate(yaml.safe_load(text))
    assert [entry.action.kind for entry in policy.spec.strategy] == [
        "disable",
        "quarantine",
        "delete",
    ]
    assert policy.spec.strategy[2].action.parameters == {}


@pytest.mark.parametrize(
    "rule",
    [
        {"type": "a"},
        {"threatLevel": "b"},
        {"source": "c"},
        {"type": "a", "threatLevel": "b"},
        {"type": "a", "source": "c"},
        {"threatLevel": "b", "source": "c"},
        {"type": "a", "threatLevel": "b", "source": "c"},
        {"type": "a", "k8s.ns.name": "shop", "priority": "Notice"},  # extra keys are kept
    ],
)
def test_rules_with_any_subset_of_keys_are_kept(rule: dict[str, str]) -> None:
    document = policy_document("p", "demo", {}, [(rule, {"delete": {}})])
    assert Policy.model_validate(document).rules() == [rule]


def test_go_empty_values_count_as_unset() -> None:
    rule = {"type": "", "threatLevel": "medium", "source": ""}
    document = policy_document("p", "demo", {}, [(rule, {"quarantine": {}})])
    assert Policy.model_validate(document).rules() == [{"threatLevel": "medium"}]


def test_debugger_and_custom_action_shapes_are_kept() -> None:
    custom = {"name": "probe", "image": "busybox", "command": ["sh"], "tty": True, "stdin": True}
    document = policy_document(
        "p",
        "demo",
        {"app": "x"},
        [
            ({"type": "a"}, {"debugger": {"image": "busybox", "terminal": True}}),
            ({"type": "b"}, {"customAction": custom}),
        ],
    )
    strategy = Policy.model_validate(document).spec.strategy
    assert strategy[0].action.parameters == {"image": "busybox", "terminal": True}
    assert strategy[1].action.parameters == custom


def test_extensions_and_unknown_metadata_are_read() -> None:
    document = with_spec(load_phoenix_amtd(), dryRun=True, allowStandalonePods=True)
    document["metadata"].update({"uid": "u-1", "generation": 3, "resourceVersion": "42"})
    document["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    document["status"] = {"anything": "goes"}
    policy = Policy.model_validate(document)
    assert (policy.spec.dry_run, policy.spec.allow_standalone_pods) == (True, True)
    assert (policy.metadata.uid, policy.metadata.generation) == ("u-1", 3)
    assert policy.metadata.resource_version == "42"


def test_policy_without_namespace_has_a_bare_ref() -> None:
    document = load_phoenix_amtd()
    del document["metadata"]["namespace"]
    assert Policy.model_validate(document).ref == "/adaptivemovingtargetdefense-sample"


def reject(document: dict[str, Any]) -> list[tuple[tuple[int | str, ...], str]]:
    """The (location, message) of every error the model reports for the document."""
    with pytest.raises(ValidationError) as caught:
        Policy.model_validate(document)
    return [(error["loc"], error["msg"]) for error in caught.value.errors()]


def test_missing_pod_selector_is_rejected() -> None:
    errors = reject(with_spec(load_phoenix_amtd(), podSelector=None))
    assert errors == [(("spec", "podSelector"), "Field required")]


def test_missing_or_empty_strategy_is_rejected() -> None:
    assert reject(with_spec(load_phoenix_amtd(), strategy=None)) == [
        (("spec", "strategy"), "Field required")
    ]
    ((location, message),) = reject(with_spec(load_phoenix_amtd(), strategy=[]))
    assert location == ("spec", "strategy")
    assert "at least 1 item" in message


def test_non_string_rule_value_is_rejected_at_its_entry() -> None:
    document = load_phoenix_amtd()
    document["spec"]["strategy"][4]["rule"] = {"threatLevel": 5}
    ((location, message),) = reject(document)
    assert location == ("spec", "strategy", 4, "rule")
    assert message == "Value error, rule value for 'threatLevel' must be a string, got int"


def test_action_with_two_keys_is_rejected_at_its_entry() -> None:
    document = load_phoenix_amtd()
    document["spec"]["strategy"][1]["action"] = {"delete": {}, "quarantine": {}}
    ((location, message),) = reject(document)
    assert location == ("spec", "strategy", 1, "action")
    assert message.endswith("this one names delete, quarantine")


@pytest.mark.parametrize(
    ("change", "location"),
    [
        ({"podSelector": {"mtdSecured": True}}, ("spec", "podSelector", "mtdSecured")),
        ({"podSelector": ["mtdSecured"]}, ("spec", "podSelector")),
        ({"strategy": [{"rule": {"type": "a"}}]}, ("spec", "strategy", 0, "action")),
        ({"strategy": [{"action": "delete"}]}, ("spec", "strategy", 0, "rule")),
        (
            {"strategy": [{"rule": {}, "action": "delete", "when": "now"}]},
            ("spec", "strategy", 0, "when"),
        ),
        ({"selector": {}}, ("spec", "selector")),
    ],
)
def test_shape_errors_name_their_field(change: dict[str, Any], location: tuple[Any, ...]) -> None:
    assert [loc for loc, _ in reject(with_spec(load_phoenix_amtd(), **change))] == [location]


def test_wrong_kind_or_api_version_is_rejected() -> None:
    document = load_phoenix_amtd()
    assert [loc for loc, _ in reject({**document, "kind": "SecurityEvent"})] == [("kind",)]
    assert [loc for loc, _ in reject({**document, "apiVersion": "amtd.r6security.com/v1"})] == [
        ("apiVersion",)
    ]
