"""Hypothesis strategies: valid model documents, and small worlds (policies, pod, event)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from amtd.model.policies import Policy
from unit.samples import policy_document

# No deadline: other helpers load the same 2 cores; timing belongs to `make bench`.
SETTINGS = settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])

dns_labels = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,14}[a-z0-9])?\Z")
pod_names = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?(\.[a-z0-9]{1,5})?\Z")
keys = st.sampled_from(["type", "threatLevel", "source", "k8s.ns.name", "hostname"]) | st.text(
    min_size=1, max_size=12
)
values = st.text(min_size=1, max_size=16)
rules = st.dictionaries(keys, values, max_size=4)
label_maps = st.dictionaries(
    st.from_regex(r"\A[a-z]([a-z0-9.-]{0,8}/)?[a-z][a-z0-9-]{0,8}\Z"),
    st.from_regex(r"\A[a-zA-Z0-9]{0,8}\Z"),
    max_size=3,
)
json_values = st.recursive(
    st.booleans() | st.integers() | st.text(max_size=8),  # nulls: dropped by exclude_none
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def actions() -> st.SearchStrategy[dict[str, Any]]:
    """Every action shape, with and without its optional parameters."""
    debugger = st.fixed_dictionaries(
        {"image": values}, optional={"name": values, "terminal": st.booleans()}
    )
    extras = st.dictionaries(
        st.sampled_from(["command", "args", "stdin", "tty", "targetContainerName", "ports"]),
        json_values,
        max_size=3,
    )
    custom = st.builds(
        lambda name, image, extra: {"name": name, **({"image": image} if image else {}), **extra},
        values,
        st.none() | values,
        extras,
    )
    return st.one_of(
        st.fixed_dictionaries({}, optional={"gracePeriodSeconds": st.integers(0, 3600)}).map(
            lambda parameters: {"delete": parameters}
        ),
        st.just({"quarantine": {}}),
        st.just({"disable": {}}),
        debugger.map(lambda parameters: {"debugger": parameters}),
        custom.map(lambda parameters: {"customAction": parameters}),
    )


def policy_documents() -> st.SearchStrategy[dict[str, Any]]:
    """Valid AMTD documents."""
    entries = st.fixed_dictionaries({"rule": rules, "action": actions()})
    spec = st.fixed_dictionaries(
        {"podSelector": label_maps, "strategy": st.lists(entries, min_size=1, max_size=5)},
        optional={"dryRun": st.booleans(), "allowStandalonePods": st.booleans()},
    )
    metadata = st.fixed_dictionaries({"name": dns_labels, "namespace": dns_labels})
    return st.fixed_dictionaries(
        {
            "apiVersion": st.just("amtd.r6security.com/v1beta1"),
            "kind": st.just("AdaptiveMovingTargetDefense"),
            "metadata": metadata,
            "spec": spec,
        }
    )


targets = st.builds(lambda namespace, name: f"{namespace}/{name}", dns_labels, pod_names)
timestamps = st.just("2025-03-14T09:12:44Z")


def decisions() -> st.SearchStrategy[dict[str, Any]]:
    """Decision entries of a SecurityEvent status."""
    return st.fixed_dictionaries(
        {
            "target": targets,
            "outcome": st.sampled_from(["Matched", "Unmatched", "PodNotFound"]),
            "stepId": values,
        },
        optional={
            "podUid": values,
            "policy": values,
            "ruleIndex": st.integers(0, 20),
            "rule": rules,
            "score": st.integers(0, 5),
            "action": st.sampled_from(["delete", "quarantine", "disable"]),
            "parameters": st.dictionaries(st.text(max_size=6), json_values, max_size=2),
            "dryRun": st.booleans(),
            "allowStandalonePods": st.booleans(),
            "ties": st.lists(values, max_size=2),
            "reason": values,
            "decidedAt": timestamps,
        },
    )


def executions() -> st.SearchStrategy[dict[str, Any]]:
    """Execution entries of a SecurityEvent status."""
    return st.fixed_dictionaries(
        {
            "stepId": values,
            "target": targets,
            "action": st.sampled_from(["delete", "quarantine"]),
            "result": st.sampled_from(["Succeeded", "Skipped", "Failed", "DryRun"]),
            "reason": values,
            "executor": values,
            "time": timestamps,
        },
        optional={"message": values, "podUid": values},
    )


def security_event_documents() -> st.SearchStrategy[dict[str, Any]]:
    """Valid SecurityEvent documents, with or without a status."""
    spec = st.fixed_dictionaries(
        {"targets": st.lists(targets, min_size=1, max_size=3), "rule": rules},
        optional={"description": st.text(max_size=30)},
    )
    status = st.fixed_dictionaries(
        {},
        optional={
            "phase": st.sampled_from(["Pending", "Decided", "Unmatched", "Completed", "Failed"]),
            "action": values,
            "observedGeneration": st.integers(1, 10),
            "decisions": st.lists(decisions(), max_size=2),
            "executions": st.lists(executions(), max_size=2),
        },
    )
    return st.fixed_dictionaries(
        {
            "apiVersion": st.just("amtd.r6security.com/v1beta1"),
            "kind": st.just("SecurityEvent"),
            "metadata": st.fixed_dictionaries({"name": dns_labels}),
            "spec": spec,
        },
        optional={"status": status},
    )


# Small vocabularies, so that covers, matches, ties and fallbacks are common.
NAMESPACES = ["n1", "n2"]
rule_keys = st.sampled_from(["type", "threatLevel", "source", "extra"])
rule_values = st.sampled_from(["a", "b", "default"])
small_rules = st.dictionaries(rule_keys, rule_values, max_size=3)
selectors = st.dictionaries(
    st.sampled_from(["app", "tier"]), st.sampled_from(["1", "2"]), max_size=2
)
actions_by_name = st.sampled_from(["delete", "quarantine", "disable"])


@st.composite
def policy_lists(draw: st.DrawFn) -> list[Policy]:
    """Up to 6 policies with unique names over the small vocabularies."""
    names = draw(st.lists(st.sampled_from([f"p{n}" for n in range(8)]), unique=True, max_size=6))
    return [
        Policy.model_validate(
            policy_document(
                name,
                draw(st.sampled_from(NAMESPACES)),
                draw(selectors),
                draw(
                    st.lists(
                        st.tuples(small_rules, actions_by_name.map(lambda a: {a: {}})),
                        min_size=1,
                        max_size=4,
                    )
                ),
            )
        )
        for name in names
    ]


@dataclass(frozen=True)
class World:
    """Policies, a pod (namespace, labels) and an event rule."""

    policies: list[Policy]
    namespace: str
    labels: dict[str, str]
    event: dict[str, str]


worlds = st.builds(
    World,
    policy_lists(),
    st.sampled_from(NAMESPACES),
    st.dictionaries(st.sampled_from(["app", "tier", "other"]), st.sampled_from(["1", "2"])),
    small_rules,
)
many_keyed_events = st.builds(
    lambda event, fillers: {**event, **{f"f{n}": "x" for n in range(fillers)}},
    small_rules,
    st.integers(11, 13),
)
