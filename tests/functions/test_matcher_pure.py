"""The matcher's and dead-letters' pure parts: reading events, deciding targets, building events."""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from amtd.deadletters import make_dead_letter_event, read_dead_letter, refer_to_broker
from amtd.decide.deciding import (
    InvalidTarget,
    PodFacts,
    decide_targets,
    explain_decision,
    read_event_spec,
    read_targets,
    record_executions_without_executor,
)
from amtd.decide.matching import PolicyIndex
from amtd.decide.triaging import decide_security_event, parse_policy, record_if_current
from amtd.kube.events import make_kube_event_name, refer_to_security_event, shorten_message
from amtd.model.actionevents import SecurityEventRef, make_action_request, make_request_id
from amtd.model.apiserverevents import (
    ChangeType,
    InvalidEventError,
    is_announcing_undecided,
    read_change,
    read_change_type,
)
from amtd.model.policies import Policy
from amtd.model.securityeventreaders import read_ref
from amtd.model.targets import DNS1123_SUBDOMAIN, Target

SAMPLE = Path(__file__).resolve().parents[1] / "unit" / "phoenix" / "amtd-sample.yaml"
NOW = "2025-03-14T09:12:44Z"
RESOURCE_ADD = ChangeType("Resource", "add")
REF_UPDATE = ChangeType("Reference", "update")


@pytest.fixture(scope="module")
def index() -> PolicyIndex:
    """Phoenix's sample AMTD (namespace demo, podSelector mtdSecured=true)."""
    return PolicyIndex.from_policies([Policy.model_validate(yaml.safe_load(SAMPLE.read_text()))])


def security_event(generation: int = 1, observed: int | None = None) -> dict[str, Any]:
    """A SecurityEvent as an ApiServerSource carries it in Resource mode."""
    obj: dict[str, Any] = {
        "apiVersion": "amtd.r6security.com/v1beta1",
        "kind": "SecurityEvent",
        "metadata": {"name": "sev-1", "uid": "u-1", "generation": generation},
        "spec": {"targets": ["demo/web-1"], "rule": {"type": "network-attack"}},
    }
    if observed is not None:
        obj["status"] = {"observedGeneration": observed, "decisions": []}
    return obj


@pytest.mark.parametrize(
    ("event_type", "expected"),
    [
        ("dev.knative.apiserver.resource.add", ChangeType("Resource", "add")),
        ("dev.knative.apiserver.ref.update", ChangeType("Reference", "update")),
        ("dev.knative.apiserver.ref.delete", ChangeType("Reference", "delete")),
    ],
)
def test_change_types(event_type: str, expected: ChangeType):
    assert read_change_type(event_type) == expected


@pytest.mark.parametrize(
    "event_type",
    ["dev.knative.apiserver.resource.patch", "dev.knative.apiserver.add", "x.resource.add", ""],
)
def test_unsupported_change_types(event_type: str):
    with pytest.raises(InvalidEventError) as caught:
        read_change_type(event_type)
    assert caught.value.error == "UnsupportedEventType"


def test_resource_mode_reads_the_object():
    change = read_change(RESOURCE_ADD, {}, security_event())
    assert (change.kind, change.name, change.verb) == ("SecurityEvent", "sev-1", "add")
    assert change.obj is not None and change.obj["spec"]["targets"] == ["demo/web-1"]


def test_reference_mode_reads_the_reference_and_text_data():
    data = b'{"kind": "SecurityEvent", "name": "sev-2", "namespace": "", "apiVersion": "v"}'
    change = read_change(REF_UPDATE, {}, data)
    assert (change.name, change.api_version, change.obj) == ("sev-2", "v", None)


def test_extensions_fill_in_missing_fields():
    change = read_change(REF_UPDATE, {"kind": "SecurityEvent", "name": "sev-3"}, {})
    assert (change.kind, change.name) == ("SecurityEvent", "sev-3")


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"not json", "DataNotJson"),
        ("[1]", "DataNotAnObject"),
        (None, "DataNotAnObject"),
        ({"name": "sev"}, "MissingKind"),
        ({"kind": "SecurityEvent"}, "MissingName"),
        ({"kind": "SecurityEvent", "name": "a/b"}, "InvalidName"),
        ({"kind": "SecurityEvent", "name": "x" * 254}, "InvalidName"),
    ],
)
def test_unreadable_changes_name_the_problem(data: Any, error: str):
    with pytest.raises(InvalidEventError) as caught:
        read_change(REF_UPDATE, {}, data)
    assert caught.value.error == error and caught.value.detail


@pytest.mark.parametrize(
    ("obj", "expected"),
    [(security_event(1), True), (security_event(2, observed=1), True),
     (security_event(1, observed=1), False)],
)  # fmt: skip
def test_announcing_undecided(obj: dict[str, Any], expected: bool):
    assert is_announcing_undecided(read_change(RESOURCE_ADD, {}, obj)) is expected


def test_reference_mode_never_announces_undecided():
    change = read_change(REF_UPDATE, {}, {"kind": "SecurityEvent", "name": "sev-1"})
    assert not is_announcing_undecided(change)


def test_targets_are_read_one_by_one():
    entries = read_targets(["demo/a", "bad", "demo/a", 7, "demo/b"])
    assert entries[0] == Target("demo", "a") and entries[-1] == Target("demo", "b")
    invalid = [entry for entry in entries if isinstance(entry, InvalidTarget)]
    assert [(entry.position, entry.text) for entry in invalid] == [(1, "bad"), (3, "7")]
    assert "exactly one '/'" in invalid[0].reason and "must be a string" in invalid[1].reason


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        (None, "spec is missing"),
        ({"targets": [], "rule": {}}, "spec.targets"),
        ({"targets": "demo/a", "rule": {}}, "spec.targets"),
        ({"targets": ["demo/a"], "rule": {"type": 1}}, "spec.rule"),
        ({"targets": ["demo/a"]}, "spec.rule"),
    ],
)
def test_unusable_specs_are_refused(spec: Any, problem: str):
    with pytest.raises(ValueError, match=problem):
        read_event_spec(spec)


def test_rule_keys_set_to_empty_count_as_unset():
    _, rule = read_event_spec({"targets": ["demo/a"], "rule": {"type": "x", "source": ""}})
    assert rule == {"type": "x"}


def test_every_target_gets_its_own_decision(index: PolicyIndex):
    entries = read_targets(["demo/web-1", "demo/gone", "nope", "demo/plain"])
    pods = {
        Target("demo", "web-1"): PodFacts("p-1", {"mtdSecured": "true"}),
        Target("demo", "gone"): None,
        Target("demo", "plain"): PodFacts("p-3", {}),
    }
    decisions = decide_targets("u", 2, {"type": "network-attack"}, entries, pods, index, NOW)
    outcomes = [(d.target, d.outcome, d.reason, d.step_id) for d in decisions]
    assert outcomes == [
        ("demo/web-1", "Matched", "BestMatch", "u/2/demo/web-1"),
        ("demo/gone", "PodNotFound", "PodNotFound", "u/2/demo/gone"),
        ("nope", "InvalidTarget", outcomes[2][2], "u/2/invalid:2"),
        ("demo/plain", "Unmatched", "NoPolicyCovers", "u/2/demo/plain"),
    ]
    assert decisions[0].pod_uid == "p-1" and decisions[0].action == "quarantine"
    assert record_executions_without_executor(decisions, NOW) == []


def test_disable_is_executed_by_the_matcher(index: PolicyIndex):
    pods = {Target("demo", "a"): PodFacts("p", {"mtdSecured": "true"})}
    decisions = decide_targets("u", 1, {"type": "odd"}, read_targets(["demo/a"]), pods, index, NOW)
    [execution] = record_executions_without_executor(decisions, NOW)
    assert (execution.result, execution.reason, execution.step_id) == (
        "Skipped", "ActionDisabled", "u/1/demo/a",
    )  # fmt: skip
    assert "disable by demo/adaptivemovingtargetdefense-sample#0" in explain_decision(decisions[0])


def test_action_request_skips_executed_and_unexecutable_steps(index: PolicyIndex):
    pods = {Target("demo", name): PodFacts(name, {"mtdSecured": "true"}) for name in "ab"}
    rule = {"type": "network-attack"}
    decisions = decide_targets("u", 1, rule, read_targets(["demo/a", "demo/b"]), pods, index, NOW)
    ref = SecurityEventRef(name="sev", uid="u", generation=1)
    full = make_action_request(ref, decisions, [])
    assert full is not None and [step.target for step in full.steps] == ["demo/a", "demo/b"]
    disabled = decide_targets("u", 1, {"type": "odd"}, read_targets(["demo/a"]), pods, index, NOW)
    executions = record_executions_without_executor(disabled, NOW)
    assert make_action_request(ref, disabled, executions) is None


def test_request_ids_stay_short():
    from amtd.model.actionevents import ActionStep

    ref = SecurityEventRef(name="sev", uid="u", generation=1)
    step = {"podUid": "p", "action": "delete", "policy": "demo/p", "ruleIndex": 0}
    few = [ActionStep(stepId="s", target="demo/a", **step)]
    many = [ActionStep(stepId=f"s{i}", target=f"demo/pod-{i:04}", **step) for i in range(40)]
    assert make_request_id(ref, few) == "u/1/demo/a"
    long_id = make_request_id(ref, many)
    assert long_id.startswith("u/1/sha256:") and len(long_id) < 60
    assert long_id == make_request_id(ref, list(reversed(many)))


@pytest.mark.parametrize("name", ["sev", "a" * 253, "a" * 199 + "-b", "x.y-", ""])
def test_event_names_are_valid_and_stable(name: str):
    made = make_kube_event_name(name, "key")
    assert DNS1123_SUBDOMAIN.match(made) and len(made) <= 253
    assert made == make_kube_event_name(name, "key") != make_kube_event_name(name, "other key")


def test_messages_are_one_bounded_line():
    assert shorten_message("a\n  b") == "a b"
    assert len(shorten_message("x" * 5000)) == 1024


def test_dead_letter_is_read_and_decoded():
    letter = read_dead_letter(
        {
            "type": "com.r6security.amtd.action.requested.v1",
            "id": "u/1/demo/a",
            "source": "/amtd/matcher",
            "securityevent": "sev-1",
            "knativeerrordest": "http://executor-delete.amtd-system.svc",
            "knativeerrorcode": "503",
            "knativeerrordata": base64.b64encode(b'{"error":\n"ApiUnavailable"}').decode(),
        }
    )
    assert (letter.security_event, letter.code) == ("sev-1", "503")
    assert letter.response == '{"error": "ApiUnavailable"}'
    event = make_dead_letter_event(letter, refer_to_security_event("sev-1", "uid-9"), NOW)
    assert event["metadata"]["namespace"] == "default" and event["type"] == "Warning"
    assert "u/1/demo/a" in event["message"] and "executor-delete" in event["message"]


@pytest.mark.parametrize(
    ("attributes", "name"),
    [
        ({"kind": "SecurityEvent", "name": "sev-2"}, "sev-2"),
        ({"subject": "/apis/amtd.r6security.com/v1beta1/securityevents/sev-3"}, "sev-3"),
        ({"securityevent": "../x", "subject": "/x/securityevents/sev-4"}, "sev-4"),
        ({"kind": "Pod", "name": "web"}, None),
        ({}, None),
    ],
)
def test_dead_letter_finds_the_security_event(attributes: dict[str, str], name: str | None):
    assert read_dead_letter(attributes).security_event == name


def test_dead_letter_without_extensions_and_with_raw_data():
    letter = read_dead_letter({"type": "t", "id": "1", "knativeerrordata": "not base64!"})
    assert (letter.destination, letter.code, letter.response) == (
        "unknown",
        "unknown",
        "not base64!",
    )
    event = make_dead_letter_event(letter, refer_to_broker("amtd-system"), NOW)
    assert event["metadata"]["namespace"] == "amtd-system"


def test_invalid_policies_are_skipped_with_their_name(caplog: pytest.LogCaptureFixture):
    item = {"metadata": {"name": "broken", "namespace": "demo"}, "spec": {"podSelector": {}}}
    with caplog.at_level(logging.WARNING):
        assert parse_policy(item, "demo") is None
    assert "demo/broken" in caplog.text and "strategy" in caplog.text


def test_status_is_written_only_for_the_object_decided():
    ref = SecurityEventRef(name="sev-1", uid="u-1", generation=1)
    assert record_if_current(ref, [], [], security_event(generation=2)) is None
    replaced = security_event()
    replaced["metadata"]["uid"] = "u-2"
    assert record_if_current(ref, [], [], replaced) is None
    assert record_if_current(ref, [], [], security_event()) is not None


def test_undecidable_spec_is_an_invalid_event():
    obj = security_event()
    obj["spec"] = {"targets": [], "rule": {}}
    with pytest.raises(InvalidEventError) as caught:
        decide_security_event(None, obj, read_ref(obj), NOW)  # type: ignore[arg-type]
    assert caught.value.error == "InvalidSecurityEvent" and "sev-1" in caught.value.detail
