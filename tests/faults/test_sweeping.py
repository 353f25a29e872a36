"""The sweep's pure parts: verdicts, bounds, settings; the sink and SinkBinding readers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from amtd.edge.publishing import read_overrides, read_sink
from amtd.schedule.sweeping import (
    SweepSettings,
    judge_security_event,
    plan_sweep,
    read_sweep_settings,
)
from amtd_stack.errors import ManifestError
from amtd_stack.eventing.sinkbindings import parse_sinkbinding, sink_environment
from amtd_stack.manifests import Manifest

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
SETTINGS = SweepSettings(grace=timedelta(seconds=30), retention=timedelta(days=7))


def stamp(age: timedelta) -> str:
    """The RFC 3339 time ``age`` before NOW."""
    return (NOW - age).strftime("%Y-%m-%dT%H:%M:%SZ")


def decision(target: str, outcome: str = "Matched", age: timedelta = timedelta(0)) -> Any:
    """A recorded decision (delete) for ``target``."""
    return {
        "target": target, "outcome": outcome, "stepId": f"uid-1/1/{target}", "podUid": "p",
        "policy": "shop/p", "ruleIndex": 0, "action": "delete" if outcome == "Matched" else None,
        "reason": "BestMatch", "decidedAt": stamp(age),
    }  # fmt: skip


def execution(target: str, age: timedelta, result: str = "Succeeded") -> Any:
    """A recorded execution of the delete step for ``target``."""
    return {"stepId": f"uid-1/1/{target}", "target": target, "action": "delete",
            "result": result, "reason": "PodDeleted", "executor": "executor-delete",
            "time": stamp(age)}  # fmt: skip


def security_event(
    name: str = "se-1", created: timedelta = timedelta(hours=1), generation: int = 1,
    status: Any = None, **meta: Any,
) -> dict[str, Any]:  # fmt: skip
    """A listed SecurityEvent ``created`` ago."""
    metadata = {"name": name, "uid": "uid-1", "generation": generation,
                "creationTimestamp": stamp(created), **meta}  # fmt: skip
    body: dict[str, Any] = {"metadata": metadata, "spec": {"targets": ["shop/a"], "rule": {}}}
    if status is not None:
        body["status"] = status
    return body


def decided(*decisions: Any, executions: tuple[Any, ...] = (), generation: int = 1) -> Any:
    """A status with these records for ``generation``."""
    return {"observedGeneration": generation, "decisions": list(decisions),
            "executions": list(executions)}  # fmt: skip


def test_an_undecided_event_is_decided_only_after_the_grace_period() -> None:
    old = judge_security_event(security_event(created=timedelta(seconds=31)), NOW, SETTINGS)
    young = judge_security_event(security_event(created=timedelta(seconds=5)), NOW, SETTINGS)
    assert (old.verdict, young.verdict) == ("Decide", "Keep")


def test_a_new_generation_is_undecided_even_with_old_records() -> None:
    status = decided(decision("shop/a", age=timedelta(days=9)), generation=1)
    obj = security_event(generation=2, status=status)
    assert judge_security_event(obj, NOW, SETTINGS).verdict == "Decide"


def test_an_unreadable_status_counts_as_undecided() -> None:
    obj = security_event(status={"decisions": "garbage", "observedGeneration": 1})
    assert judge_security_event(obj, NOW, SETTINGS).verdict == "Decide"


def test_unexecuted_steps_are_rerequested_after_the_grace_period() -> None:
    pending = decided(decision("shop/a", age=timedelta(minutes=5)))
    fresh = decided(decision("shop/a", age=timedelta(seconds=3)))
    assert judge_security_event(security_event(status=pending), NOW, SETTINGS).verdict == (
        "Rerequest"
    )
    assert judge_security_event(security_event(status=fresh), NOW, SETTINGS).verdict == "Keep"


@pytest.mark.parametrize(
    ("records", "verdict"),
    [
        ((decision("shop/a", age=timedelta(days=8)),), "Delete"),  # Completed
        ((decision("shop/a", "Unmatched", timedelta(days=8)),), "Delete"),  # Unmatched
        ((decision("shop/a", age=timedelta(days=6)),), "Keep"),  # within retention
    ],
)
def test_handled_events_are_deleted_after_retention(records: Any, verdict: str) -> None:
    executions = (execution("shop/a", timedelta(days=8)),)
    obj = security_event(status=decided(*records, executions=executions))
    assert judge_security_event(obj, NOW, SETTINGS).verdict == verdict


def test_retention_counts_from_the_last_execution() -> None:
    status = decided(
        decision("shop/a", age=timedelta(days=9)),
        executions=(execution("shop/a", timedelta(days=2), "Failed"),),
    )
    assert judge_security_event(security_event(status=status), NOW, SETTINGS).verdict == "Keep"


def test_undated_events_are_decided_but_never_deleted() -> None:
    undated = security_event()
    del undated["metadata"]["creationTimestamp"]
    assert judge_security_event(undated, NOW, SETTINGS).verdict == "Decide"
    record = {**decision("shop/a", "Unmatched"), "decidedAt": None}
    undated["status"] = decided(record)
    assert judge_security_event(undated, NOW, SETTINGS).verdict == "Keep"


def test_events_being_deleted_or_nameless_are_left_alone() -> None:
    terminating = security_event(deletionTimestamp=stamp(timedelta(0)))
    assert judge_security_event(terminating, NOW, SETTINGS).verdict == "Keep"
    assert judge_security_event(security_event(name=""), NOW, SETTINGS).verdict == "Keep"


def test_the_plan_takes_the_oldest_within_the_bounds() -> None:
    objects = [security_event(f"se-{age}", timedelta(minutes=age)) for age in (3, 9, 1, 7)]
    expired = decided(
        decision("shop/a", age=timedelta(days=30)),
        executions=(execution("shop/a", timedelta(days=30)),),
    )
    objects += [security_event(f"old-{n}", status=expired) for n in range(3)]
    bounded = SweepSettings(max_events=2, max_deletions=1)
    plan = plan_sweep(objects, NOW, bounded)
    assert [ref.name for ref in plan.to_decide] == ["se-9", "se-7"]
    assert len(plan.to_delete) == 1
    assert plan.deferred == 2 + 2


def test_settings_come_from_the_environment_and_bad_values_keep_defaults() -> None:
    env = {"SWEEP_GRACE_SECONDS": "0", "SWEEP_RETENTION_SECONDS": "60",
           "SWEEP_MAX_EVENTS": "5", "SWEEP_MAX_DELETIONS": "nope"}  # fmt: skip
    settings = read_sweep_settings(env)
    assert settings.grace == timedelta(0) and settings.retention == timedelta(seconds=60)
    assert (settings.max_events, settings.max_deletions) == (5, 100)
    assert read_sweep_settings({"SWEEP_GRACE_SECONDS": "-1"}).grace == timedelta(seconds=30)
    assert read_sweep_settings({"SWEEP_GRACE_SECONDS": "inf"}).grace == timedelta(seconds=30)


def test_the_sink_comes_from_k_sink_with_its_overrides() -> None:
    assert read_sink({}) is None
    sink = read_sink(
        {"K_SINK": "http://b/ns/default", "K_CE_OVERRIDES": '{"extensions": {"a": 1}}'}
    )
    assert sink is not None and (sink.url, dict(sink.extensions)) == (
        "http://b/ns/default",
        {"a": "1"},
    )
    for bad in ("{", "[]", '{"extensions": 3}'):
        with pytest.raises(ValueError, match="K_CE_OVERRIDES"):
            read_overrides(bad)


def binding(subject: dict[str, Any]) -> Manifest:
    """A SinkBinding manifest with this subject."""
    obj = {"apiVersion": "sources.knative.dev/v1", "kind": "SinkBinding",
           "metadata": {"name": "b", "namespace": "amtd-system"},
           "spec": {"subject": subject, "sink": {"ref": {"apiVersion": "eventing.knative.dev/v1",
                                                         "kind": "Broker", "name": "default"}},
                    "ceOverrides": {"extensions": {"origin": "sweep"}}}}  # fmt: skip
    return Manifest(obj, Path("sweeper.yaml"))


def test_a_sinkbinding_names_a_function_and_injects_its_sink() -> None:
    parsed = parse_sinkbinding(
        binding({"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "sweeper"})
    )
    assert (parsed.subject, parsed.sink.kind, dict(parsed.extensions)) == (
        "sweeper", "Broker", {"origin": "sweep"},
    )  # fmt: skip
    assert sink_environment("http://x", parsed.extensions) == {
        "K_SINK": "http://x",
        "K_CE_OVERRIDES": '{"extensions": {"origin": "sweep"}}',
    }
    assert sink_environment("http://x", {}) == {"K_SINK": "http://x"}


@pytest.mark.parametrize(
    "subject",
    [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "sweeper"},
        {"apiVersion": "serving.knative.dev/v1", "kind": "Service"},
        {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "s", "namespace": "x"},
    ],
)
def test_a_sinkbinding_the_stack_cannot_honour_is_refused(subject: dict[str, Any]) -> None:
    with pytest.raises(ManifestError, match=r"spec\.subject"):
        parse_sinkbinding(binding(subject))
