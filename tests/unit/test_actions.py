"""Actions: every Phoenix shape (object and v0.1 string), and every rejection's message."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from amtd.model.actions import ACTION_KINDS, Action, is_executable

KINDS = "delete, quarantine, disable, debugger, customAction"
STRING_KINDS = "delete, quarantine, disable"


@pytest.mark.parametrize(
    ("document", "kind", "parameters"),
    [
        ({"delete": {}}, "delete", {}),
        ({"delete": {"gracePeriodSeconds": 0}}, "delete", {"gracePeriodSeconds": 0}),
        ({"quarantine": {}}, "quarantine", {}),
        ({"disable": {}}, "disable", {}),
        ({"debugger": {"image": "busybox"}}, "debugger", {"image": "busybox"}),
        (
            {"debugger": {"name": "dbg", "image": "busybox", "terminal": True}},
            "debugger",
            {"name": "dbg", "image": "busybox", "terminal": True},
        ),
        ({"customAction": {"name": "probe"}}, "customAction", {"name": "probe"}),
    ],
)
def test_object_actions_read_their_kind_and_parameters(
    document: dict[str, Any], kind: str, parameters: dict[str, Any]
) -> None:
    action = Action.model_validate(document)
    assert action.kind == kind
    assert action.parameters == parameters


def test_custom_action_keeps_every_ephemeral_container_field() -> None:
    spec = {
        "name": "forensics",
        "image": "ghcr.io/example/forensics:1",
        "command": ["/bin/collect"],
        "args": ["--all"],
        "env": [{"name": "MODE", "value": "full"}],
        "envFrom": [{"configMapRef": {"name": "forensics"}}],
        "volumeMounts": [{"name": "evidence", "mountPath": "/evidence"}],
        "securityContext": {"privileged": False, "runAsUser": 0},
        "ports": [{"containerPort": 9000}],
        "stdin": True,
        "tty": True,
        "targetContainerName": "nginx",
    }
    action = Action.model_validate({"customAction": spec})
    assert action.kind == "customAction"
    assert action.parameters == spec  # Phoenix kept only name, image, stdin, tty
    assert Action.model_validate(action.model_dump(by_alias=True, exclude_none=True)) == action


@pytest.mark.parametrize("kind", ["delete", "quarantine", "disable"])
def test_v01_string_action_reads_as_empty_object(kind: str) -> None:
    assert Action.model_validate(kind) == Action.model_validate({kind: {}})
    assert Action.model_validate(kind).kind == kind


def test_populating_by_field_name_works_for_custom_action() -> None:
    action = Action.model_validate({"custom_action": {"name": "probe"}})
    assert action.kind == "customAction"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({}, f"an action names exactly one of {KINDS}; this one names none"),
        (
            {"delete": {}, "quarantine": {}},
            f"an action names exactly one of {KINDS}; this one names delete, quarantine",
        ),
        ("reboot", f"unknown action 'reboot'; as a string it is one of {STRING_KINDS}"),
        ("Delete", f"unknown action 'Delete'; as a string it is one of {STRING_KINDS}"),
        ("debugger", "the others need an object, e.g. {debugger: {image: busybox}}"),
        ({"restart": {}}, f"unknown action 'restart'; expected one of {KINDS}"),
        (
            {"delete": None},
            "action delete needs an object ({} when it takes no parameters), not null",
        ),
    ],
)
def test_malformed_actions_are_rejected_with_their_reason(document: Any, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Action.model_validate(document)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("document", "location", "fragment"),
    [
        ({"debugger": {"name": "dbg"}}, ("debugger", "image"), "Field required"),
        ({"customAction": {"image": "busybox"}}, ("customAction", "name"), "Field required"),
        (
            {"delete": {"gracePeriodSeconds": -1}},
            ("delete", "gracePeriodSeconds"),
            "greater than or equal to 0",
        ),
        ({"quarantine": {"force": True}}, ("quarantine", "force"), "Extra inputs"),
        ({"debugger": {"image": "x", "shell": "sh"}}, ("debugger", "shell"), "Extra inputs"),
        ({"delete": "now"}, ("delete",), "valid dictionary"),
    ],
)
def test_bad_parameters_are_rejected_at_their_field(
    document: dict[str, Any], location: tuple[str, ...], fragment: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        Action.model_validate(document)
    errors = caught.value.errors()
    assert [error["loc"] for error in errors] == [location]
    assert fragment in errors[0]["msg"]


def test_every_kind_but_disable_is_executed() -> None:
    executed = [kind for kind in ACTION_KINDS if is_executable(kind)]
    assert executed == ["delete", "quarantine", "debugger", "customAction"]
    assert not is_executable("reboot")
