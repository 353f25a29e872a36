"""The action registry: the behaviour in amtd.act and the names the lower layers route by agree.

Adding an action is its package ``amtd.act.<name>``, one line in amtd.act.registry, its name in
``EXECUTABLE_KINDS`` and its executor function ``functions/executors/<package>/`` with a Trigger;
these tests fail until all are there.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from amtd.act.registry import ACTIONS, REGISTERED
from amtd.model.actionevents import ACTION_REQUESTED, flag_extension
from amtd.model.actions import ACTION_KINDS, EXECUTABLE_KINDS

ROOT = Path(__file__).resolve().parents[2]


def test_the_registry_holds_exactly_the_executable_kinds() -> None:
    assert sorted(ACTIONS) == sorted(EXECUTABLE_KINDS)
    assert len(REGISTERED) == len(ACTIONS)  # no name registered twice
    assert set(EXECUTABLE_KINDS) <= set(ACTION_KINDS)  # only the CRD's vocabulary is executable


def package_of(name: str) -> str:
    """The package ``amtd.act.<package>`` an action's behaviour is defined in."""
    return ACTIONS[name].perform.__module__.split(".")[2]


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_every_action_lives_in_one_package(name: str) -> None:
    action = ACTIONS[name]
    assert action.name == name
    package = package_of(name)
    for behaviour in (action.perform, action.describe, action.judge_gone):
        assert behaviour.__module__.startswith(f"amtd.act.{package}."), behaviour
    # a package holds one action, or several that do one thing (amtd.act.debug: two names of
    # "attach an ephemeral container"); never an unrelated action
    assert package == name or (package == "debug" and name in ("debugger", "customAction"))


def executors_of(name: str) -> list[str]:
    """The executor folders whose main.py serves the action."""
    mains = sorted((ROOT / "functions" / "executors").glob("*/main.py"))
    return [main.parent.name for main in mains if f'ACTIONS["{name}"]' in main.read_text()]


def trigger_flags(trigger: dict[str, Any]) -> list[dict[str, str]]:
    """The exact attribute matches of a Trigger's filters, also those inside ``any``."""
    filters = trigger["spec"]["filters"]
    nested = [inner for item in filters for inner in item.get("any", [])]
    return [item["exact"] for item in [*filters, *nested] if "exact" in item]


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_every_action_has_one_executor_and_a_trigger(name: str) -> None:
    (folder,) = executors_of(name)
    assert package_of(name) == folder
    triggers = list(yaml.safe_load_all((ROOT / "knative" / "triggers.yaml").read_text()))
    (trigger,) = [t for t in triggers if t and t["metadata"]["name"] == f"executor-{folder}"]
    assert trigger["spec"]["subscriber"]["ref"]["name"] == f"executor-{folder}"
    flags = trigger_flags(trigger)
    assert {"type": ACTION_REQUESTED} in flags
    assert {flag_extension(name): "true"} in flags


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_flags_are_valid_cloudevents_attribute_names(name: str) -> None:
    assert re.fullmatch(r"[a-z0-9]{1,20}", flag_extension(name))
