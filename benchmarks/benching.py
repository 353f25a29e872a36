"""Benching: the tiny framework behind `make bench` (rows, timing loops, the results table).

A figure is a module ``benchmarks/pN_<what>.py`` with ``TITLE`` (one line) and
``measure() -> list[Row]``; ``run.py`` lists the figure modules. Times are seconds everywhere;
rendering picks the unit.

``AMTD_BENCH_SMOKE=1`` (tests/packaging/test_benchmarks.py) runs every figure with its counts cut
to the minimum through ``sized``: the code runs end to end, the numbers mean nothing, and run.py
writes no results.md.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

T = TypeVar("T")
SMOKE = os.environ.get("AMTD_BENCH_SMOKE") == "1"  # read here only: figures call ``sized``


def sized(full: T, smoke: T) -> T:
    """``full`` for `make bench`; ``smoke`` in a smoke run (does the code still run at all?)."""
    return smoke if SMOKE else full


@dataclass(frozen=True)
class Row:
    """One measured figure: median and p95 against a floor measured in the same run."""

    name: str
    median: float
    p95: float
    floor: float | None
    goal: str
    verdict: str  # "pass", "FAIL" or "info" (no goal)
    unit: str = "s"  # seconds (rendered µs/ms/s); any other unit is printed as counted

    @property
    def ratio(self) -> float | None:
        """How many floors the median costs."""
        return self.median / self.floor if self.floor else None


def time_calls(
    call: Callable[[int], object], count: int, warmup: int = sized(20, 1)
) -> list[float]:
    """Seconds per call of ``call(i)`` for i in range(count), after a warm-up."""
    for step in range(warmup):
        call(step)
    samples = []
    clock = time.perf_counter_ns
    for step in range(count):
        started = clock()
        call(step)
        samples.append((clock() - started) / 1e9)
    return samples


def time_loop(loop: Callable[[int], object], iterations: int, repeat: int = sized(7, 1)) -> float:
    """Median seconds per iteration of ``loop(iterations)``, for operations too fast to time."""
    runs = []
    for _ in range(repeat):
        started = time.perf_counter_ns()
        loop(iterations)
        runs.append((time.perf_counter_ns() - started) / 1e9 / iterations)
    return statistics.median(runs)


def percentile(samples: Sequence[float], fraction: float) -> float:
    """The sample at the given fraction of the sorted samples (nearest rank)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def summarize(
    name: str, samples: Sequence[float], floor: float | None, goal: float | None, goal_text: str
) -> Row:
    """A row from samples; the verdict compares the median with the goal (seconds)."""
    median = statistics.median(samples)
    verdict = "info" if goal is None else ("pass" if median <= goal else "FAIL")
    return Row(name, median, percentile(samples, 0.95), floor, goal_text, verdict)


def format_seconds(value: float | None) -> str:
    """``12.3 µs``-style text."""
    if value is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value / 1e-9:.3g} ns"


def format_value(value: float | None, unit: str) -> str:
    """Seconds as :func:`format_seconds`; a count or size with its unit (``7.2 writes``)."""
    if unit == "s" or value is None:
        return format_seconds(value)
    return f"{value:,.3g} {unit}"


def render_table(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table (also readable on a terminal)."""
    lines = [
        "| figure | median | p95 | floor | ratio | goal | verdict |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for row in rows:
        ratio = f"{row.ratio:,.1f}x" if row.ratio is not None else "-"
        median, p95, floor = (format_value(v, row.unit) for v in (row.median, row.p95, row.floor))
        lines.append(
            f"| {row.name} | {median} | {p95} | {floor} | {ratio} | {row.goal} | {row.verdict} |"
        )
    return "\n".join(lines)


def describe_machine() -> dict[str, str]:
    """What the numbers were measured on."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            model = next(
                (
                    line.split(":", 1)[1].strip()
                    for line in cpuinfo
                    if line.startswith("model name")
                ),
                model,
            )
    except OSError:
        pass
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
    }
