"""`make bench` still runs: every figure's measurement code end to end, in smoke mode.

``AMTD_BENCH_SMOKE=1`` cuts each figure's counts to the minimum (benchmarks/benching.py), so this
checks only that the figures complete and produce rows: timing is measured by `make bench` alone,
never asserted here. The figures run as `make bench` runs them (``benchmarks/run.py`` in its own
process), against real function processes and the API stand-in.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
FIGURES = sorted(path.stem for path in BENCHMARKS.glob("p[0-9]*_*.py"))
ROW = re.compile(r"^\| (?!figure \|)(?!-)[^|]+\|")  # a table row, not the header or the rule


def listed_figures() -> list[str]:
    """run.py's FIGURES, read from its source (importing it would run nothing, but moves paths)."""
    tree = ast.parse((BENCHMARKS / "run.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "FIGURES":
            return list(ast.literal_eval(node.value))
    raise AssertionError("run.py has no FIGURES list")


@pytest.fixture(scope="module")
def smoke_output() -> str:
    """``benchmarks/run.py`` as `make bench` runs it (every figure, no arguments), in smoke mode;
    results.md must be left as it was (a smoke run's numbers mean nothing)."""
    results = (BENCHMARKS / "results.md").read_bytes()
    command = [sys.executable, str(BENCHMARKS / "run.py")]
    environment = {**os.environ, "AMTD_BENCH_SMOKE": "1"}
    done = subprocess.run(
        command, env=environment, capture_output=True, text=True, timeout=240, check=False
    )
    assert done.returncode == 0, f"run.py failed:\n{done.stdout}\n{done.stderr}"
    assert (BENCHMARKS / "results.md").read_bytes() == results, "a smoke run wrote results.md"
    return done.stdout


def test_run_py_lists_every_figure() -> None:
    """A figure file that run.py does not list would never be measured (nor smoke-tested)."""
    assert sorted(listed_figures()) == FIGURES


@pytest.mark.parametrize("figure", FIGURES)
def test_figure_runs_and_reports_rows(smoke_output: str, figure: str) -> None:
    """The figure measured, and its section of the results has at least one row."""
    title = title_of(figure)
    _, found, section = smoke_output.partition(f"\n## {title}\n")
    assert found, f"no section {title!r} in the output:\n{smoke_output}"
    rows = [line for line in section.split("\n## ")[0].splitlines() if ROW.match(line)]
    assert rows, f"{figure} reported no rows:\n{smoke_output}"


def title_of(figure: str) -> str:
    """The figure module's TITLE, read from its source."""
    tree = ast.parse((BENCHMARKS / f"{figure}.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "TITLE":
            return str(ast.literal_eval(node.value))
    raise AssertionError(f"{figure} has no TITLE")
