"""`make bench`: measure every figure, print the table, write benchmarks/results.md.

Add a figure by writing ``benchmarks/pN_<what>.py`` (``TITLE``, ``measure() -> list[Row]``)
and adding its module name to FIGURES. ``run.py p2_matching`` runs only the figures named.
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

from benching import SMOKE, Row, describe_machine, render_table

FIGURES = [
    "p1_matcher",
    "p2_matching",
    "p3_cold_start",
    "p4_alert_to_delete",
    "p5_ingest_storm",
    "p6_alert_storm",
    "p7_many_targets",
]
RESULTS = Path(__file__).resolve().parent / "results.md"
# As pytest's ``pythonpath`` does for the tests: the figures share their helpers (tests/support).
sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))


def run_figure(name: str) -> tuple[str, list[Row], float]:
    """Import and measure one figure; its title, rows and wall time."""
    module = importlib.import_module(name)
    started = time.monotonic()
    rows: list[Row] = module.measure()
    return module.TITLE, rows, time.monotonic() - started


def render_results(sections: list[tuple[str, list[Row], float]]) -> str:
    """results.md: the machine, then one table per figure."""
    machine = describe_machine()
    lines = ["# Benchmarks (`make bench`)", ""]
    lines += [f"- {key}: {value}" for key, value in machine.items()]
    for title, rows, seconds in sections:
        lines += ["", f"## {title}", "", render_table(rows), "", f"(measured in {seconds:.1f} s)"]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    """Run the figures (all, or those named); exit 1 when a goal is missed."""
    names = argv or FIGURES
    sections = []
    for name in names:
        print(f"measuring {name} ...", flush=True)
        sections.append(run_figure(name))
    text = render_results(sections)
    print(text)
    if not argv and not SMOKE:  # a smoke run's numbers mean nothing
        RESULTS.write_text(text, encoding="utf-8")
        print(f"written to {RESULTS}")
    missed = [row.name for _, rows, _ in sections for row in rows if row.verdict == "FAIL"]
    for name in missed:
        print(f"goal missed: {name}", file=sys.stderr)
    return 1 if missed and not SMOKE else 0  # goals need real sample counts


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
