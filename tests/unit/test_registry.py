"""The action registry: the behaviour in amtd.act and the names the lower layers route by agree.

Adding an action is its package ``amtd.act.<name>``, one line in amtd.act.registry, its name in
``EXECUTABLE_KINDS`` and its executor function with a Trigger; these tests fail until all are there.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from amtd.act.registry import ACTIONS, REGISTERED
from amtd.model.actionevents import flag_extension
from amtd.model.actions import ACTION_KINDS, EXECUTABLE_KINDS

ROOT = Path(__file__).resolve().parents[2]


def test_the_registry_holds_exactly_the_executable_kinds() -> None:
    assert sorted(ACTIONS) == sorted(EXECUTABLE_KINDS)
    assert len(REGISTERED) == len(ACTIONS)  # no name registered twice
    assert set(EXECUTABLE_KINDS) <= set(ACTION_KINDS)  # only the CRD's vocabulary is executable


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_every_action_is_its_own_package(name: str) -> None:
    action = ACTIONS[name]
    assert action.name == name
    for behaviour in (action.perform, action.describe, action.judge_gone):
        assert behaviour.__module__.startswith(f"amtd.act.{name}."), behaviour


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_every_action_has_an_executor_and_a_trigger(name: str) -> None:
    main = ROOT / "functions" / "executors" / name / "main.py"
    assert f'ACTIONS["{name}"]' in main.read_text(encoding="utf-8")
    triggers = list(yaml.safe_load_all((ROOT / "knative" / "triggers.yaml").read_text()))
    filters = [
        item.get("exact", {})
        for trigger in triggers
        if trigger and trigger["metadata"]["name"] == f"executor-{name}"
        for item in trigger["spec"]["filters"]
    ]
    assert {flag_extension(name): "true"} in filters
