"""Best match, property-based: the index agrees with a brute-force reference, and the decision
is stable under changes that must not matter (order, unmatchable rules) and responds to the one
that must (a more specific rule)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from amtd.decide.matching import Choice, PolicyIndex, choose_best_match
from amtd.model.policies import Policy
from unit.generators import (
    SETTINGS,
    World,
    actions_by_name,
    many_keyed_events,
    small_rules,
    worlds,
)
from unit.samples import policy_document


def decide(world: World, policies: Sequence[Policy] | None = None) -> Choice:
    """The real matcher on the world."""
    index = PolicyIndex.from_policies(world.policies if policies is None else policies)
    return choose_best_match(index, world.namespace, world.labels, world.event)


def reference(world: World) -> tuple[list[str], list[str], bool]:
    """Brute force, straight from the written rules: (candidates best first, ties, covered)."""
    found: list[tuple[Any, ...]] = []
    covered = False
    for policy in world.policies:
        if policy.metadata.namespace != world.namespace:
            continue
        if any(world.labels.get(k) != v for k, v in policy.spec.pod_selector.items()):
            continue
        covered = True
        for position, entry in enumerate(policy.spec.strategy):
            fallback = entry.rule.get("type") == "default"
            compared = {k: v for k, v in entry.rule.items() if not (k == "type" and fallback)}
            if all(world.event.get(k) == v for k, v in compared.items()):
                rank = (fallback, -len(entry.rule), policy.metadata.name, position)
                found.append((rank, f"{policy.ref}#{position}"))
    found.sort()
    refs = [ref for _, ref in found]
    ties = [ref for rank, ref in found[1:] if rank[:2] == found[0][0][:2]]
    return refs, ties, covered


def summary(choice: Choice) -> tuple[list[str], list[str], bool]:
    """The parts of a choice the reference computes."""
    return [c.ref for c in choice.candidates], [t.ref for t in choice.ties], choice.is_covered


def identity(choice: Choice) -> tuple[str, dict[str, str], str] | None:
    """What was decided, independent of entry positions: policy, rule, action."""
    if choice.winner is None:
        return None
    return choice.winner.policy.ref, dict(choice.winner.rule), choice.winner.action.kind


@SETTINGS
@given(worlds)
def test_index_equals_brute_force(world: World) -> None:
    choice = decide(world)
    assert summary(choice) == reference(world)
    assert choice.winner == (choice.candidates[0] if choice.candidates else None)


@SETTINGS
@given(worlds, many_keyed_events)
def test_scan_path_equals_brute_force(world: World, event: dict[str, str]) -> None:
    many = World(world.policies, world.namespace, world.labels, event)
    assert summary(decide(many)) == reference(many)


@SETTINGS
@given(worlds, st.randoms(use_true_random=False))
def test_decision_does_not_depend_on_policy_order(world: World, random: Any) -> None:
    shuffled = list(world.policies)
    random.shuffle(shuffled)
    assert summary(decide(world, shuffled)) == summary(decide(world))


def add_entry(policy: Policy, position: int, rule: Mapping[str, str], action: str) -> Policy:
    """The policy with one more strategy entry at the position."""
    strategy = [
        (entry.rule, {entry.action.kind: entry.action.parameters}) for entry in policy.spec.strategy
    ]
    strategy.insert(position, (rule, {action: {}}))
    document = policy_document(
        policy.metadata.name, policy.metadata.namespace or "", policy.spec.pod_selector, strategy
    )
    return Policy.model_validate(document)


@SETTINGS
@given(worlds, st.data())
def test_an_unmatchable_rule_never_changes_the_decision(world: World, data: st.DataObject) -> None:
    if not world.policies:
        return
    target = data.draw(st.integers(0, len(world.policies) - 1))
    policy = world.policies[target]
    position = data.draw(st.integers(0, len(policy.spec.strategy)))
    rule = {**data.draw(small_rules), "unrelated-key": "never-in-an-event"}
    changed = list(world.policies)
    changed[target] = add_entry(policy, position, rule, data.draw(actions_by_name))
    before, after = decide(world), decide(world, changed)
    assert identity(after) == identity(before)
    assert len(after.ties) == len(before.ties)
    assert after.is_covered == before.is_covered


@SETTINGS
@given(worlds, st.data())
def test_a_more_specific_matching_rule_wins(world: World, data: st.DataObject) -> None:
    items = sorted(world.event.items())
    if not items or world.event.get("type") == "default":
        return  # a rule copying the event would be a fallback, ranked last by design
    size = data.draw(st.integers(0, len(items) - 1))
    less, more = dict(items[:size]), dict(items[: size + 1])
    extra = Policy.model_validate(
        policy_document(
            data.draw(st.sampled_from(["p0", "zz"])) + "-extra",
            world.namespace,
            {},
            [(less, {"delete": {}}), (more, {"quarantine": {}})],
        )
    )
    choice = decide(world, [*world.policies, extra])
    assert choice.winner is not None
    assert choice.winner.score >= len(more) > len(less)
    assert choice.winner.ref != f"{extra.ref}#0"
