"""Schedules: cron, @-descriptors, @every and Go durations read like upstream's annotation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amtd.schedule.schedules import (
    CronSchedule,
    DelaySchedule,
    EverySchedule,
    parse_go_duration,
    parse_schedule,
)

T0 = datetime(2025, 3, 14, 9, 12, 44, 318220, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("1h30m", 5400),
        ("1.5h", 5400),
        ("300ms", 0.3),
        ("1m0.5s", 60.5),
        ("2h45m10s", 9910),
        ("1us", 0.000001),
        ("1µs", 0.000001),
        ("1μs", 0.000001),
        ("1000000ns", 0.001),
        (".5s", 0.5),
        ("1.s", 1),
        ("+5m", 300),
    ],
)
def test_go_durations_parse_like_time_parse_duration(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "text", ["", "0", "-5m", "5", "5d", "1w", "h", ".s", "1h 30m", "1hh", "1.2.3s", "9" * 30 + "h"]
)
def test_bad_go_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_go_duration(text)


def test_cron_gives_the_next_activation_strictly_after() -> None:
    schedule = parse_schedule("0 8 * * 1")  # Mondays 08:00 (time-based-trigger's example)
    assert isinstance(schedule, CronSchedule)
    assert schedule.next_after(T0) == datetime(2025, 3, 17, 8, 0, tzinfo=UTC)
    exactly = datetime(2025, 3, 17, 8, 0, tzinfo=UTC)
    assert schedule.next_after(exactly) == datetime(2025, 3, 24, 8, 0, tzinfo=UTC)


def test_cron_accepts_names_and_extra_spaces() -> None:
    schedule = parse_schedule("  30  2 * JAN-MAR  MON-FRI ")
    assert schedule.next_after(T0) == datetime(2025, 3, 17, 2, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("descriptor", "expected"),
    [
        ("@hourly", datetime(2025, 3, 14, 10, 0, tzinfo=UTC)),
        ("@daily", datetime(2025, 3, 15, 0, 0, tzinfo=UTC)),
        ("@midnight", datetime(2025, 3, 15, 0, 0, tzinfo=UTC)),
        ("@weekly", datetime(2025, 3, 16, 0, 0, tzinfo=UTC)),  # a Sunday
        ("@monthly", datetime(2025, 4, 1, 0, 0, tzinfo=UTC)),
        ("@yearly", datetime(2026, 1, 1, 0, 0, tzinfo=UTC)),
        ("@annually", datetime(2026, 1, 1, 0, 0, tzinfo=UTC)),
    ],
)
def test_descriptors(descriptor: str, expected: datetime) -> None:
    assert parse_schedule(descriptor).next_after(T0) == expected


def test_every_rounds_the_delay_and_the_start_down_to_seconds() -> None:
    schedule = parse_schedule("@every 1h30m0.9s")
    assert schedule == EverySchedule(timedelta(hours=1, minutes=30))
    assert schedule.next_after(T0) == datetime(2025, 3, 14, 10, 42, 44, tzinfo=UTC)


def test_every_is_at_least_one_second() -> None:
    assert parse_schedule("@every 10ms") == EverySchedule(timedelta(seconds=1))


def test_a_bare_duration_is_a_plain_delay() -> None:
    schedule = parse_schedule("90s")
    assert schedule == DelaySchedule(timedelta(seconds=90))
    assert schedule.next_after(T0) == T0 + timedelta(seconds=90)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("every minute", "neither"),
        ("* * * *", "neither"),
        ("* * * * * *", "neither"),
        ("61 * * * *", "invalid cron"),
        ("*/0 * * * *", "invalid cron"),
        ("@fortnightly", "descriptor"),
        ("@every", "descriptor"),
        ("@every soon", "duration"),
        ("@every -1m", "positive"),
        ("x" * 300, "longer"),
    ],
)
def test_bad_schedules_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_schedule(text)


def test_a_cron_that_never_fires_fails_when_evaluated() -> None:
    schedule = parse_schedule("0 0 30 2 *")  # 30 February
    with pytest.raises(ValueError, match="never fires"):
        schedule.next_after(T0)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_any_text_parses_or_raises_value_error(text: str) -> None:
    try:
        schedule = parse_schedule(text)
    except ValueError:
        return
    try:
        following = schedule.next_after(T0)
    except (ValueError, OverflowError):
        return
    assert following > T0.replace(microsecond=0)
