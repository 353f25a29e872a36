"""Routing: every Trigger reaches a function that exists, and every event the system makes goes
somewhere (a Trigger) or is documented as terminal in docs/events.md.

The events are built with the same code the functions use (amtd.model.actionevents), and matched
with
the Trigger filters compiled from knative/triggers.yaml by the local stack.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from amtd.model.actionevents import (
    ActionRequest,
    ActionStep,
    SecurityEventRef,
    to_completion_attributes,
    to_request_attributes,
)
from amtd.notify.deadletternotices import NOTICE_TYPE, make_notice
from amtd_stack.eventing.filtering import is_match
from amtd_stack.running.planning import SERVICE, StackPlan, plan_stack

ROOT = Path(__file__).resolve().parents[2]
# Full types (ending in .vN), not prefixes such as the dead letters' ACTION_TYPE_PREFIX.
EMITTED_TYPE = re.compile(r"\"(com\.r6security\.amtd\.[a-z0-9.]+\.v[0-9]+)\"")
REF = SecurityEventRef(name="falco-web-1a2b", uid="0b7c", generation=1)


@pytest.fixture(scope="module")
def plan() -> StackPlan:
    """The committed manifests and functions, parsed and cross-checked."""
    return plan_stack(ROOT / "knative", ROOT / "functions")


def routes(plan: StackPlan, attributes: dict[str, str]) -> set[str]:
    """Names of the functions whose Triggers match these CloudEvent attributes."""
    return {t.subscriber.name for t in plan.triggers if is_match(t.filter, attributes)}


def step(action: str, target: str) -> ActionStep:
    """One decided step."""
    return ActionStep(
        step_id=f"{REF.uid}-{action}",
        target=target,
        pod_uid="p1",
        action=action,
        policy="demo/p",
        rule_index=0,
    )


def request_attributes(*actions: str) -> dict[str, str]:
    """Attributes of the matcher's reply carrying steps for these actions."""
    steps = [step(action, f"demo/pod-{i}") for i, action in enumerate(actions)]
    return to_request_attributes(ActionRequest(security_event=REF, steps=steps))


def emitted_types() -> set[str]:
    """Every CloudEvent type of ours named in the core or the functions."""
    sources = [*ROOT.glob("src/amtd/**/*.py"), *ROOT.glob("functions/**/main.py")]
    return {t for path in sources for t in EMITTED_TYPE.findall(path.read_text())}


def test_every_trigger_reaches_a_function_that_exists(plan: StackPlan) -> None:
    for trigger in plan.triggers:
        subscriber = trigger.subscriber
        assert (subscriber.api_version, subscriber.kind) == SERVICE, trigger.key
        assert subscriber.name in plan.functions, trigger.key
    broker_sink = plan.brokers[0].delivery.dead_letter_sink if plan.brokers[0].delivery else None
    assert broker_sink is not None and broker_sink.name in plan.functions


def test_action_requests_reach_exactly_the_executors_with_steps(plan: StackPlan) -> None:
    assert routes(plan, request_attributes("delete")) == {"executor-delete"}
    assert routes(plan, request_attributes("quarantine")) == {"executor-quarantine"}
    both = routes(plan, request_attributes("delete", "quarantine"))
    assert both == {"executor-delete", "executor-quarantine"}
    assert routes(plan, request_attributes("debugger")) == {"executor-debug"}
    assert routes(plan, request_attributes("customAction")) == {"executor-debug"}
    # one executor for both ephemeral-container actions: one delivery, not one per action
    assert routes(plan, request_attributes("debugger", "customAction")) == {"executor-debug"}
    assert routes(plan, request_attributes("delete", "debugger")) == {
        "executor-delete", "executor-debug"}  # fmt: skip


def test_every_emitted_type_is_routed_or_documented_terminal(plan: StackPlan) -> None:
    samples = {
        "com.r6security.amtd.action.requested.v1": request_attributes("delete"),
        "com.r6security.amtd.action.completed.v1": to_completion_attributes(
            "id-1", "delete", REF.name
        ),
        NOTICE_TYPE: make_notice({"metadata": {"namespace": "default", "name": "se.0a1b"}})[0],
    }
    assert emitted_types() == set(samples)
    events_doc = (ROOT / "docs" / "events.md").read_text()
    for event_type, attributes in samples.items():
        assert attributes["type"] == event_type
        if not routes(plan, attributes):
            section = events_doc[events_doc.index(f"`{event_type}`") :][:1500]
            assert "terminal" in section.lower(), f"{event_type}: routed nowhere, not documented"


def test_completions_and_dead_letter_notices_reach_notify(plan: StackPlan) -> None:
    completed = to_completion_attributes("id-1", "quarantine", REF.name)
    assert routes(plan, completed) == {"notify"}
    notice = make_notice({"metadata": {"namespace": "default", "name": "se.0a1b"}})[0]
    assert routes(plan, notice) == {"notify"}
    assert routes(plan, {**notice, "source": "/elsewhere"}) == set()
    (trigger,) = [t for t in plan.triggers if t.name == "notify-dead-letters"]
    # a notice that cannot be notified must never be dead-lettered into another notice
    assert trigger.delivery is not None and trigger.delivery.dead_letter_sink is None


def test_sources_reach_their_functions(plan: StackPlan) -> None:
    added = {
        "type": "dev.knative.apiserver.resource.add",
        "source": "https://10.96.0.1:443",
        "kind": "SecurityEvent",
        "name": "falco-web-1a2b",
    }
    assert routes(plan, added) == {"matcher"}
    assert routes(plan, {**added, "type": "dev.knative.apiserver.ref.add"}) == {"matcher"}
    # status writes fire updates the matcher would only answer 204; edits wait for the sweep
    for change in ("resource.update", "ref.update", "resource.delete", "ref.delete"):
        assert routes(plan, {**added, "type": f"dev.knative.apiserver.{change}"}) == set()
    ping = {
        "type": "dev.knative.sources.ping",
        "source": "/apis/v1/namespaces/amtd-system/pingsources/amtd-timer",
    }
    assert routes(plan, ping) == {"timer"}
    for source in ("https://falco.org", "falco.org"):
        falco = {"type": "falco.rule.output.v1", "source": source}
        assert routes(plan, falco) == {"ingest-falco"}


@pytest.mark.parametrize("name", ["timer-ping", "sweeper-ping"])
def test_long_runs_get_their_own_delivery(plan: StackPlan, name: str) -> None:
    """A timer run or a sweep outlasts the Broker's timeout; a missed ping is caught up later."""
    (trigger,) = [t for t in plan.triggers if t.name == name]
    broker = plan.brokers[0].delivery
    assert trigger.delivery is not None and broker is not None
    assert trigger.delivery.timeout_s >= 3 * broker.timeout_s
    assert trigger.delivery.timeout_s < 60  # done before the next ping (once a minute)
    assert trigger.delivery.retry <= 1
    assert trigger.delivery.dead_letter_sink == broker.dead_letter_sink


def test_the_fast_paths_keep_the_broker_default(plan: StackPlan) -> None:
    fast = {"matcher-securityevents", "executor-delete", "executor-quarantine"}
    assert {t.name for t in plan.triggers if t.name in fast and t.delivery is None} == fast


def test_the_sweeper_runs_one_request_at_a_time() -> None:
    options = yaml.safe_load((ROOT / "functions/sweeper/func.yaml").read_text())["deploy"]
    assert options["options"]["resources"]["limits"]["concurrency"] == 1
    assert options["options"]["scale"]["max"] == 1
