"""Schedules: when a time-based trigger is next due, read like upstream's annotation. Pure.

The ``.../schedule`` annotation is read as the time-based-trigger did (docs/ingest.md): first as a
robfig/cron v1.2 ``ParseStandard`` spec, else as a Go duration. In order:

- a 5-field cron expression (minute, hour, day of month, month, day of week; names like ``MON``
  and ``JAN`` allowed), evaluated with ``croniter`` in UTC — the next activation strictly after;
- ``@yearly`` (``@annually``), ``@monthly``, ``@weekly``, ``@daily`` (``@midnight``), ``@hourly``;
- ``@every <Go duration>``: robfig's constant delay — rounded down to whole seconds (at least
  1 s), added to the last run truncated to the second;
- otherwise a bare Go duration (``30s``, ``1h30m``): the last run plus the duration.

Go durations are sequences of ``<decimal><unit>`` with units ``ns us µs ms s m h`` (no days).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from croniter import CroniterError, croniter

DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
EVERY_PREFIX = "@every "
UNIT_SECONDS = {
    "ns": Decimal("1e-9"), "us": Decimal("1e-6"), "µs": Decimal("1e-6"), "μs": Decimal("1e-6"),
    "ms": Decimal("1e-3"), "s": Decimal(1), "m": Decimal(60), "h": Decimal(3600),
}  # fmt: skip
DURATION_TERM = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")
MAX_SCHEDULE_LENGTH = 200
MAX_DURATION_SECONDS = Decimal(290 * 365 * 86400)  # Go's time.Duration ends near 292 years


@dataclass(frozen=True)
class CronSchedule:
    """A 5-field cron expression (UTC)."""

    expression: str

    def next_after(self, moment: datetime) -> datetime:
        """The first activation strictly after the moment (ValueError if there is none)."""
        try:
            following: datetime = croniter(self.expression, moment.replace(microsecond=0)).get_next(
                datetime
            )
        except (CroniterError, OverflowError) as error:
            raise ValueError(f"cron {self.expression!r} never fires: {error}") from None
        return following


@dataclass(frozen=True)
class EverySchedule:
    """``@every <duration>``: a fixed delay after the last run (whole seconds)."""

    delay: timedelta

    def next_after(self, moment: datetime) -> datetime:
        """The last run, truncated to the second, plus the delay."""
        return moment.replace(microsecond=0) + self.delay


@dataclass(frozen=True)
class DelaySchedule:
    """A bare Go duration: the last run plus the duration."""

    delay: timedelta

    def next_after(self, moment: datetime) -> datetime:
        """The moment plus the delay."""
        return moment + self.delay


Schedule = CronSchedule | EverySchedule | DelaySchedule


def parse_schedule(text: str) -> Schedule:
    """Read a schedule annotation; ValueError saying what is wrong."""
    spec = text.strip()
    if not spec:
        raise ValueError("schedule is empty")
    if len(spec) > MAX_SCHEDULE_LENGTH:
        raise ValueError(f"schedule is longer than {MAX_SCHEDULE_LENGTH} characters")
    if spec.startswith(EVERY_PREFIX):
        return EverySchedule(round_to_seconds(parse_go_duration(spec[len(EVERY_PREFIX) :].strip())))
    if spec.startswith("@"):
        if spec not in DESCRIPTORS:
            raise ValueError(f"unknown schedule descriptor {spec!r}")
        return CronSchedule(DESCRIPTORS[spec])
    fields = spec.split()
    if len(fields) == 5:
        return parse_cron(" ".join(fields))
    try:
        return DelaySchedule(parse_go_duration(spec))
    except ValueError as error:
        raise ValueError(
            f"schedule {spec!r} is neither a 5-field cron expression, an @ descriptor, "
            f"@every <duration>, nor a Go duration ({error})"
        ) from None


def parse_cron(expression: str) -> CronSchedule:
    """A checked 5-field cron expression."""
    try:
        croniter(expression)
    except (CroniterError, ValueError, KeyError, IndexError) as error:
        raise ValueError(f"invalid cron expression {expression!r}: {error}") from None
    return CronSchedule(expression)


def parse_go_duration(text: str) -> timedelta:
    """A positive Go duration (``1h30m``, ``1.5s``, ``300ms``) as a timedelta (µs precision)."""
    negative = text.startswith("-")
    body = text[1:] if text[:1] in "+-" else text
    total = Decimal(0) if body == "0" else sum_duration_terms(text, body)
    if negative or total <= 0:
        raise ValueError(f"duration {text!r} must be positive")
    if total > MAX_DURATION_SECONDS:
        raise ValueError(f"duration {text!r} is too long")
    return timedelta(seconds=float(total))


def sum_duration_terms(text: str, body: str) -> Decimal:
    """Seconds in ``<number><unit>`` terms, each number with at least one digit."""
    if not body:
        raise ValueError(f"invalid duration {text!r}")
    total, position = Decimal(0), 0
    while position < len(body):
        match = DURATION_TERM.match(body, position)
        if not match or not any(char.isdigit() for char in match.group(1)):
            raise ValueError(f"invalid duration {text!r}")
        try:
            total += Decimal(match.group(1)) * UNIT_SECONDS[match.group(2)]
        except InvalidOperation:
            raise ValueError(f"invalid duration {text!r}") from None
        position = match.end()
    return total


def round_to_seconds(delay: timedelta) -> timedelta:
    """robfig's ``Every``: whole seconds, and never less than one."""
    return max(timedelta(seconds=1), timedelta(seconds=int(delay.total_seconds())))
