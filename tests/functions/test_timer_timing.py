"""Timer decisions (pure): opt-in, Go ParseBool, lastRun from the newest event, due-ness, names."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from amtd.model.targets import Target
from amtd.schedule.timing import (
    DESCRIPTION,
    ENABLED_ANNOTATION,
    SCHEDULE_ANNOTATION,
    build_timer_manifest,
    check_pod,
    index_last_runs,
    make_timer_security_event_name,
    parse_go_bool,
)

CREATED = "2025-03-14T08:00:00Z"
TARGET = Target("shop", "cart-6b8f7d9c4-hx2lp")


def pod(annotations: dict[str, Any] | None, **metadata: Any) -> dict[str, Any]:
    """A pod as the API returns it."""
    meta = {"name": TARGET.name, "namespace": TARGET.namespace, "creationTimestamp": CREATED}
    if annotations is not None:
        meta["annotations"] = annotations
    return {"metadata": {**meta, **metadata}}


def timed(schedule: str, enabled: str = "true") -> dict[str, str]:
    """The two annotations."""
    return {ENABLED_ANNOTATION: enabled, SCHEDULE_ANNOTATION: schedule}


def event(created: str, targets: list[str], source: str = "TimeBasedTrigger") -> dict[str, Any]:
    """A SecurityEvent as listed."""
    return {
        "metadata": {"name": "e", "creationTimestamp": created},
        "spec": {"targets": targets, "rule": {"type": "timed", "source": source}},
    }


def at(text: str) -> datetime:
    """An aware UTC datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.parametrize("text", ["1", "t", "T", "TRUE", "true", "True"])
def test_go_true_values(text: str) -> None:
    assert parse_go_bool(text) is True


@pytest.mark.parametrize("text", ["0", "f", "F", "FALSE", "false", "False"])
def test_go_false_values(text: str) -> None:
    assert parse_go_bool(text) is False


@pytest.mark.parametrize("text", ["yes", "on", "tRUE", "", " true", "2"])
def test_other_boolean_spellings_are_errors(text: str) -> None:
    with pytest.raises(ValueError, match="not a boolean"):
        parse_go_bool(text)


def test_pods_without_the_enabled_annotation_do_not_take_part() -> None:
    assert check_pod(pod(None), {}, at("2030-01-01T00:00:00Z")) is None
    assert check_pod(pod({SCHEDULE_ANNOTATION: "1m"}), {}, at("2030-01-01T00:00:00Z")) is None


def test_disabled_pods_are_skipped() -> None:
    check = check_pod(pod(timed("1m", "false")), {}, at("2030-01-01T00:00:00Z"))
    assert check is not None and check.status == "disabled"


def test_due_from_the_pod_creation_when_it_has_no_event() -> None:
    check = check_pod(pod(timed("1h")), {}, at("2025-03-14T09:00:00Z"))
    assert check is not None and check.status == "due"
    assert check.due_at == at("2025-03-14T09:00:00Z")


def test_not_due_yet() -> None:
    check = check_pod(pod(timed("1h")), {}, at("2025-03-14T08:59:59Z"))
    assert check is not None and check.status == "waiting"
    assert check.due_at == at("2025-03-14T09:00:00Z")


def test_last_run_is_the_newest_time_based_event_of_the_pod() -> None:
    events = [
        event("2025-03-14T09:00:00Z", [str(TARGET)]),
        event("2025-03-14T10:00:00Z", [str(TARGET)]),  # newest: counts
        event("2025-03-14T09:30:00Z", [str(TARGET)]),
        event("2025-03-14T12:00:00Z", [str(TARGET)], source="FalcoIntegrator"),  # not ours
        event("2025-03-14T12:00:00Z", ["other/cart-6b8f7d9c4-hx2lp"]),  # another pod
    ]
    last_runs = index_last_runs(events)
    assert last_runs[str(TARGET)] == at("2025-03-14T10:00:00Z")
    waiting = check_pod(pod(timed("1h")), last_runs, at("2025-03-14T10:59:00Z"))
    assert waiting is not None and waiting.status == "waiting"
    due = check_pod(pod(timed("1h")), last_runs, at("2025-03-14T11:00:00Z"))
    assert due is not None and due.status == "due" and due.due_at == at("2025-03-14T11:00:00Z")


def test_missed_runs_collapse_into_one_due_time() -> None:
    check = check_pod(pod(timed("@hourly")), {}, at("2025-03-20T00:00:00Z"))
    assert check is not None and check.status == "due"
    assert check.due_at == at("2025-03-14T09:00:00Z")  # the first missed one, once


def test_terminating_pods_are_skipped() -> None:
    terminating = pod(timed("1m"), deletionTimestamp="2025-03-14T08:30:00Z")
    check = check_pod(terminating, {}, at("2030-01-01T00:00:00Z"))
    assert check is not None and check.status == "terminating"


@pytest.mark.parametrize(
    ("annotations", "reason"),
    [
        (timed("1m", "yes"), "not a boolean"),
        ({ENABLED_ANNOTATION: "true"}, "missing"),
        (timed("every minute"), "neither"),
        (timed("0 0 30 2 *"), "never fires"),
        (timed("9999999h"), "too long"),
    ],
)
def test_invalid_annotations_are_reported_not_raised(
    annotations: dict[str, str], reason: str
) -> None:
    check = check_pod(pod(annotations), {}, at("2030-01-01T00:00:00Z"))
    assert check is not None and check.status == "invalid"
    assert reason in check.reason


def test_a_schedule_far_in_the_future_is_waiting_not_an_overflow() -> None:
    check = check_pod(pod(timed("2000000h")), {}, at("2030-01-01T00:00:00Z"))
    assert check is not None and check.status == "waiting"


def test_names_follow_upstream_and_stay_valid_when_long() -> None:
    due = at("2025-03-14T09:00:00Z")
    assert make_timer_security_event_name(TARGET, due) == "tb-cart-6b8f7d9c4-hx2lp-1741942800"
    long_target = Target("shop", "p" * 250)
    name = make_timer_security_event_name(long_target, due)
    assert len(name) <= 253 and name.startswith("tb-ppp")
    assert name == make_timer_security_event_name(long_target, due)  # deterministic
    assert make_timer_security_event_name(long_target, due + timedelta(hours=1)) != name
    namespaced = make_timer_security_event_name(TARGET, due, with_namespace=True)
    assert namespaced != make_timer_security_event_name(Target("other", TARGET.name), due, True)


def test_manifest_is_upstreams_event() -> None:
    manifest = build_timer_manifest(TARGET, "tb-x-1", "timer")
    assert manifest["spec"] == {
        "targets": ["shop/cart-6b8f7d9c4-hx2lp"],
        "rule": {"type": "timed", "threatLevel": "info", "source": "TimeBasedTrigger"},
        "description": DESCRIPTION,
    }
    assert DESCRIPTION == "Generated by a time based even"
