"""The interval timer's decisions (pure): config, last run, one due time per window, names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amtd.model.targets import Target
from amtd.schedule.intervals import (
    DUE_AT_ANNOTATION,
    INTERVAL_CONFIG_ANNOTATION,
    INTERVAL_ENABLED_ANNOTATION,
    IntervalWindow,
    build_interval_manifest,
    check_interval_pod,
    index_interval_runs,
    make_interval_security_event_name,
    parse_interval_config,
    pick_due_time,
    read_interval_key,
)

CREATED = "2025-03-14T08:00:00Z"
UID = "0b6f6b2e-5d0c-4a8e-9d4e-1c2f3a4b5c6d"
TARGET = Target("shop", "cart-6b8f7d9c4-hx2lp")
KEY = b"k"


def at(text: str) -> datetime:
    """An aware UTC datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def pod(config: str | None = "30m-45m", enabled: str = "true", **metadata: Any) -> dict[str, Any]:
    """An opted-in pod as the API lists it."""
    annotations = {INTERVAL_ENABLED_ANNOTATION: enabled}
    if config is not None:
        annotations[INTERVAL_CONFIG_ANNOTATION] = config
    meta = {"name": TARGET.name, "namespace": TARGET.namespace, "uid": UID,
            "creationTimestamp": CREATED, "annotations": annotations}  # fmt: skip
    return {"metadata": {**meta, **metadata}}


def event(created: str, target: str = str(TARGET), source: str = "IntervalTimerTrigger") -> Any:
    """A SecurityEvent as listed."""
    return {
        "metadata": {"name": "e", "creationTimestamp": created},
        "spec": {"targets": [target], "rule": {"type": "interval-timer", "source": source}},
    }


@pytest.mark.parametrize(
    ("text", "window"),
    [("30m-45m", (1800, 2700)), ("1800s-2700s", (1800, 2700)), (" 1h-2h ", (3600, 7200)),
     ("5m-5m", (300, 300)), ("1s-1s", (1, 1)), ("8784h-8784h", (31622400, 31622400))],
)  # fmt: skip
def test_valid_configs(text: str, window: tuple[int, int]) -> None:
    assert parse_interval_config(text) == IntervalWindow(*window)


@pytest.mark.parametrize(
    ("text", "reason"),
    [("45m-30m", "larger than the maximum"), ("0s-1m", "between"), ("1m-8785h", "between"),
     ("30-45m", "not <n>"), ("30m", "not <n>"), ("30m-45m-50m", "not <n>"), ("1h30m-2h", "not <n>"),
     ("-5m-10m", "not <n>"), ("1.5m-2m", "not <n>"), ("1d-2d", "not <n>"), ("30M-45M", "not <n>"),
     ("30m -45m", "not <n>"), ("", "not <n>"), ("1" * 41 + "s-1s", "longer than"),
     ("\u0661m-2m", "not <n>")],
)  # fmt: skip
def test_invalid_configs_say_why(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_interval_config(text)


def test_window_prints_like_go() -> None:
    assert str(parse_interval_config("30m-45m")) == "30m0s-45m0s"
    assert str(parse_interval_config("90s-3h")) == "1m30s-3h0m0s"


@given(
    minimum=st.integers(1, 10_000),
    span=st.integers(0, 10_000),
    uid=st.text(min_size=1, max_size=40),
    seconds=st.integers(0, 4_000_000_000),
    key=st.binary(max_size=32),
)
def test_the_due_time_lies_in_the_window_and_is_repeatable(
    minimum: int, span: int, uid: str, seconds: int, key: bytes
) -> None:
    window = IntervalWindow(minimum, minimum + span)
    last_run = datetime.fromtimestamp(seconds, UTC)
    due_at = pick_due_time(window, uid, last_run, key)
    assert timedelta(seconds=minimum) <= due_at - last_run <= timedelta(seconds=minimum + span)
    assert due_at == pick_due_time(window, uid, last_run + timedelta(microseconds=5), key)


def test_due_times_spread_over_the_window_and_depend_on_uid_last_run_and_key() -> None:
    window = IntervalWindow(1800, 2700)
    start = at(CREATED)
    offsets = {(pick_due_time(window, f"uid-{i}", start, KEY) - start).seconds for i in range(200)}
    assert min(offsets) < 1900 and max(offsets) > 2600 and len(offsets) > 150
    due = pick_due_time(window, UID, start, KEY)
    assert len({due, pick_due_time(window, UID, start, b"other")}) == 2
    runs = {pick_due_time(window, UID, start + timedelta(hours=i), KEY) - start for i in range(50)}
    assert len(runs) > 40  # each window draws afresh


def test_waiting_then_due_at_the_one_point_of_the_window() -> None:
    due_at = pick_due_time(IntervalWindow(1800, 2700), UID, at(CREATED), KEY)
    waiting = check_interval_pod(pod(), {}, due_at - timedelta(seconds=1), KEY)
    assert waiting is not None and waiting.status == "waiting" and waiting.due_at == due_at
    due = check_interval_pod(pod(), {}, due_at, KEY)
    assert due is not None and due.status == "due" and due.due_at == due_at
    assert due.uid == UID and due.window == IntervalWindow(1800, 2700)
    late = check_interval_pod(pod(), {}, due_at + timedelta(days=3), KEY)
    assert late is not None and late.due_at == due_at  # missed windows collapse into one


def test_the_newest_interval_event_of_the_pod_is_the_last_run() -> None:
    runs = index_interval_runs([
        event("2025-03-14T09:00:00Z"),
        event("2025-03-14T10:00:00Z"),  # newest of ours
        event("2025-03-14T12:00:00Z", source="TimeBasedTrigger"),
        event("2025-03-14T12:00:00Z", target="other/cart-6b8f7d9c4-hx2lp"),
        {"metadata": {}, "spec": {"targets": [str(TARGET)], "rule": {"source": "x"}}},
        {"metadata": {"creationTimestamp": "2025-03-14T13:00:00Z"}, "spec": {"rule": "x"}},
    ])  # fmt: skip
    assert runs[str(TARGET)] == at("2025-03-14T10:00:00Z") and len(runs) == 2
    check = check_interval_pod(pod(), runs, at("2030-01-01T00:00:00Z"), KEY)
    window = IntervalWindow(1800, 2700)
    assert check is not None
    assert check.due_at == pick_due_time(window, UID, at("2025-03-14T10:00:00Z"), KEY)


def test_a_recreated_pod_does_not_inherit_an_older_pods_last_run() -> None:
    runs = {str(TARGET): at("2025-03-14T07:00:00Z")}  # before this pod was created
    check = check_interval_pod(pod(), runs, at("2030-01-01T00:00:00Z"), KEY)
    assert check is not None
    assert check.due_at == pick_due_time(IntervalWindow(1800, 2700), UID, at(CREATED), KEY)


def test_pods_that_did_not_opt_in_or_cannot_be_named_do_not_take_part() -> None:
    now = at("2030-01-01T00:00:00Z")
    assert check_interval_pod({"metadata": {"name": "p", "namespace": "n"}}, {}, now, KEY) is None
    bare = {"metadata": {"annotations": {INTERVAL_CONFIG_ANNOTATION: "1m-2m"}}}
    assert check_interval_pod(bare, {}, now, KEY) is None
    assert check_interval_pod(pod(name="Not_A_Name"), {}, now, KEY) is None
    assert check_interval_pod({"metadata": {"annotations": ["x"]}}, {}, now, KEY) is None


@pytest.mark.parametrize(
    ("kwargs", "status", "reason"),
    [({"enabled": "false"}, "disabled", "is false"),
     ({"enabled": "True"}, "invalid", "not true/false"),
     ({"config": None}, "invalid", "missing"),
     ({"config": "45m-30m"}, "invalid", "larger"),
     ({"uid": ""}, "invalid", "no uid"),
     ({"creationTimestamp": "yesterday"}, "invalid", "creationTimestamp"),
     ({"deletionTimestamp": CREATED}, "terminating", "terminating")],
)  # fmt: skip
def test_other_verdicts_are_reported_not_raised(
    kwargs: dict[str, Any], status: str, reason: str
) -> None:
    check = check_interval_pod(pod(**kwargs), {}, at("2030-01-01T00:00:00Z"), KEY)
    assert check is not None and check.status == status and reason in check.reason


def test_names_are_one_per_pod_and_window_and_stay_valid() -> None:
    due = at("2025-03-14T08:40:00Z")
    name = make_interval_security_event_name(TARGET, UID, due, KEY)
    assert name.startswith("interval-timer-cart-6b8f7d9c4-hx2lp-") and len(name) == 15 + 20 + 17
    assert name == make_interval_security_event_name(TARGET, UID, due, KEY)
    others = {
        make_interval_security_event_name(TARGET, UID, due + timedelta(seconds=1), KEY),
        make_interval_security_event_name(Target("other", TARGET.name), UID, due, KEY),
        make_interval_security_event_name(TARGET, "another-uid", due, KEY),
        make_interval_security_event_name(TARGET, UID, due, b"other key"),
    }
    assert name not in others and len(others) == 4
    long_name = make_interval_security_event_name(Target("shop", "p" * 199 + ".q"), UID, due, KEY)
    assert len(long_name) <= 253 and ".-" not in long_name


def test_manifest_is_phoenixs_event() -> None:
    due = at("2025-03-14T08:40:00Z")
    manifest = build_interval_manifest(
        TARGET, UID, IntervalWindow(1800, 2700), due, key=KEY, ingested_by="timer"
    )
    assert manifest["spec"] == {
        "targets": ["shop/cart-6b8f7d9c4-hx2lp"],
        "rule": {"type": "interval-timer", "threatLevel": "info", "source": "IntervalTimerTrigger"},
        "description": "Interval-based timer trigger (interval: 30m0s-45m0s) for pod "
        "shop/cart-6b8f7d9c4-hx2lp",
    }
    assert manifest["metadata"]["annotations"] == {DUE_AT_ANNOTATION: "2025-03-14T08:40:00Z"}
    assert manifest["metadata"]["labels"] == {"amtd.r6security.com/ingested-by": "timer"}


def test_the_key_comes_from_the_environment() -> None:
    assert read_interval_key({}) == b""
    assert read_interval_key({"INTERVAL_TIMER_KEY": "s3cret"}) == b"s3cret"
