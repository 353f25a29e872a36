"""Explaining (pure): coverage reasons, rule scores and verdicts agree with the real matcher."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from hypothesis import given

from amtd.decide.explaining import (
    KnownPod,
    PodView,
    describe_known_pods,
    describe_mismatches,
    explain_event,
    read_pod_manifest,
    resolve_pods,
    to_data,
)
from amtd.decide.matching import PolicyIndex, choose_best_match
from amtd.model.policies import Policy
from amtd.model.targets import Target
from unit.generators import SETTINGS, World, worlds
from unit.samples import PHOENIX_DEPLOYMENT, load_phoenix_amtd, make_policy

SAMPLE = Policy.model_validate(load_phoenix_amtd())
SAMPLE_REF = "demo/adaptivemovingtargetdefense-sample"
NGINX = PodView("demo/nginx-1", "demo", {"app": "nginx", "mtdSecured": "true"}, "test")


def test_phoenix_sample_network_attack() -> None:
    (target,) = explain_event([SAMPLE], {"type": "network-attack"}, [NGINX]).targets
    assert [(c.policy, c.is_covering) for c in target.coverage] == [(SAMPLE_REF, True)]
    assert target.coverage[0].reason == "podSelector {mtdSecured=true} is in the pod's labels"
    assert [rule.score for rule in target.rules] == [1, None, 1, None, None]
    assert [rule.is_fallback for rule in target.rules] == [True, False, False, False, False]
    assert target.rules[1].mismatches == (
        "source: event has none, rule 'TimerBackend'",
        "threatLevel: event has none, rule 'warning'",
        "type: event 'network-attack', rule 'test'",
    )
    verdict = target.verdict
    assert (verdict.outcome, verdict.reason) == ("Matched", "BestMatch")
    assert (verdict.winner, verdict.action, verdict.score) == (f"{SAMPLE_REF}#2", "quarantine", 1)
    assert verdict.summary == f"{SAMPLE_REF}#2 matches 1 key(s), the most"


def test_fallback_verdict() -> None:
    (target,) = explain_event([SAMPLE], {"type": "Terminal shell in container"}, [NGINX]).targets
    assert (target.verdict.reason, target.verdict.action) == ("FallbackRule", "disable")
    assert target.verdict.summary == f"no rule matches; the fallback {SAMPLE_REF}#0 applies"


def test_ties_are_named_in_the_summary() -> None:
    policies = [make_policy("b", rules=[{"type": "x"}]), make_policy("a", rules=[{"type": "x"}])]
    pod = PodView("demo/p", "demo", {}, "test")
    (target,) = explain_event(policies, {"type": "x"}, [pod]).targets
    assert target.verdict.winner == "demo/a#0"
    assert target.verdict.ties == ("demo/b#0",)
    assert target.verdict.summary.endswith(
        "; tied with demo/b#0: the first policy by name, then entry, wins"
    )
    assert [c.policy for c in target.coverage] == ["demo/a", "demo/b"]


@pytest.mark.parametrize(
    ("pod", "reason"),
    [
        (
            PodView("other/x", "other", {"mtdSecured": "true"}, "t"),
            "policy is in namespace 'demo', the pod in 'other'",
        ),
        (
            PodView("demo/x", "demo", {}, "t"),
            "pod has no label 'mtdSecured' (selector wants 'true')",
        ),
        (
            PodView("demo/x", "demo", {"mtdSecured": "yes"}, "t"),
            "label 'mtdSecured' is 'yes', selector wants 'true'",
        ),
    ],
)
def test_uncovered_pods_say_why(pod: PodView, reason: str) -> None:
    (target,) = explain_event([SAMPLE], {"type": "network-attack"}, [pod]).targets
    assert [(c.is_covering, c.reason) for c in target.coverage] == [(False, reason)]
    assert target.rules == ()
    assert (target.verdict.outcome, target.verdict.reason) == ("Unmatched", "NoPolicyCovers")
    assert (
        target.verdict.summary
        == f"no policy in namespace {pod.namespace!r} selects the pod's labels"
    )


def test_covered_without_matching_rule_or_fallback() -> None:
    policy = make_policy("p", selector={}, rules=[{"type": "x"}])
    (target,) = explain_event([policy], {"type": "y"}, [PodView("demo/q", "demo", {}, "t")]).targets
    assert target.coverage[0].reason == "empty podSelector: covers every pod in the namespace"
    assert (target.verdict.outcome, target.verdict.reason) == ("Unmatched", "NoRuleMatched")
    assert target.rules[0].mismatches == ("type: event 'y', rule 'x'",)


def test_mismatches_ignore_the_fallback_type() -> None:
    assert describe_mismatches({"type": "default", "source": "a"}, {"type": "z"}) == (
        "source: event has none, rule 'a'",
    )


@SETTINGS
@given(worlds)
def test_explanation_agrees_with_the_matcher(world: World) -> None:
    pod = PodView(f"{world.namespace}/p", world.namespace, world.labels, "test")
    (target,) = explain_event(world.policies, world.event, [pod]).targets
    choice = choose_best_match(
        PolicyIndex.from_policies(world.policies), world.namespace, world.labels, world.event
    )
    matched = {rule.entry for rule in target.rules if rule.score is not None}
    assert matched == {candidate.ref for candidate in choice.candidates}
    assert target.verdict.winner == (choice.winner.ref if choice.winner else None)
    assert all((rule.score is None) == bool(rule.mismatches) for rule in target.rules)
    covering = {c.policy for c in target.coverage if c.is_covering}
    assert {rule.entry.split("#")[0] for rule in target.rules} <= covering
    json.dumps(to_data(explain_event(world.policies, world.event, [pod])))


def test_to_data_is_json_with_camel_case_keys() -> None:
    data = to_data(explain_event([SAMPLE], {"threatLevel": "medium"}, [NGINX]))
    assert json.loads(json.dumps(data)) == data
    (target,) = data["targets"]
    assert set(target) == {
        "target",
        "namespace",
        "labels",
        "labelsFrom",
        "policies",
        "rules",
        "decision",
    }
    assert target["decision"] == {
        "outcome": "Matched",
        "reason": "BestMatch",
        "winner": f"{SAMPLE_REF}#4",
        "action": "quarantine",
        "score": 1,
        "ties": [],
        "summary": f"{SAMPLE_REF}#4 matches 1 key(s), the most",
    }
    assert target["rules"][0] == {
        "entry": f"{SAMPLE_REF}#0",
        "rule": {"type": "default"},
        "action": "disable",
        "score": 1,
        "fallback": True,
        "mismatches": [],
    }


def phoenix_workloads() -> list[dict[str, Any]]:
    """The documents of the Phoenix sample Deployment file."""
    return list(yaml.safe_load_all(PHOENIX_DEPLOYMENT.read_text()))


def test_deployment_template_stands_for_its_pods() -> None:
    deployment = next(doc for doc in phoenix_workloads() if doc["kind"] == "Deployment")
    known = read_pod_manifest(deployment, "deploy.yaml")
    assert known == KnownPod(
        "demo",
        "nginx",
        {"mtdSecured": "true", "app": "nginx"},
        "pod template of Deployment demo/nginx in deploy.yaml",
        is_template=True,
    )
    assert known.is_naming(Target("demo", "nginx-7d9c4b5f6-k2m9x"))
    assert not known.is_naming(Target("demo", "nginx"))
    assert not known.is_naming(Target("demo", "nginxy-1"))
    assert not known.is_naming(Target("other", "nginx-1"))


def test_pod_and_cronjob_manifests() -> None:
    pod = read_pod_manifest({"kind": "Pod", "metadata": {"name": "web", "labels": {"a": "b"}}}, "f")
    assert (pod.namespace, pod.name, pod.labels, pod.is_template) == (
        "default",
        "web",
        {"a": "b"},
        False,
    )
    assert pod.is_naming(Target("default", "web"))
    assert not pod.is_naming(Target("default", "web-1"))
    cron = {
        "kind": "CronJob",
        "metadata": {"name": "job", "namespace": "ops"},
        "spec": {"jobTemplate": {"spec": {"template": {"metadata": {"labels": {"c": "d"}}}}}},
    }
    assert read_pod_manifest(cron, "f").labels == {"c": "d"}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            {"kind": "Service", "metadata": {"name": "s"}},
            "kind 'Service' is neither a Pod nor a workload with a pod template",
        ),
        (
            {"kind": "Pod", "metadata": {"name": "p", "labels": ["a"]}},
            "metadata.labels must be a map, got list",
        ),
        (
            {"kind": "Pod", "metadata": {"name": "p", "labels": {"a": 1}}},
            "metadata.labels: label 'a' must map a string to a string, got 1",
        ),
    ],
)
def test_bad_pod_manifests_name_the_problem(document: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        read_pod_manifest(document, "f")
    assert str(caught.value) == message


def test_resolve_pods_prefers_known_pods_then_given_labels() -> None:
    known = [KnownPod("demo", "nginx", {"app": "nginx"}, "template", is_template=True)]
    targets = [Target("demo", "nginx-abc-1"), Target("demo", "other")]
    first, second = resolve_pods(targets, known, {"team": "x"})
    assert (first.labels, first.origin) == ({"app": "nginx"}, "template")
    assert (second.labels, second.origin) == ({"team": "x"}, "given labels")
    (alone,) = resolve_pods([Target("demo", "other")], known, None)
    assert (alone.labels, alone.origin) == ({}, "no labels given: none assumed")


def test_known_pods_become_targets() -> None:
    known = [
        KnownPod("demo", "nginx", {"app": "nginx"}, "t", is_template=True),
        KnownPod("demo", "web", {}, "p"),
    ]
    assert [pod.target for pod in describe_known_pods(known)] == ["demo/nginx-*", "demo/web"]
