"""``make demo`` stays true: the narrated demo runs to the end and tells what happened."""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest

from support.functions import ROOT

pytestmark = pytest.mark.e2e
# One Falco alert's hops, each the parent of the next (docs/tracing.md §3).
HOPS = [
    ("amtd.ingest.request", "ingest-falco"),
    ("amtd.ingest.alert", "ingest-falco"),
    ("amtd.decide", "matcher"),
    ("amtd.execute", "executor-delete"),
]


def read_trace(told: str) -> list[tuple[int, str, str]]:
    """The indent, span name and service of each line of the trace the demo printed."""
    after = told.split("one trace (OpenTelemetry", 1)[1].splitlines()[1:]
    lines = itertools.takewhile(lambda line: line.startswith("     "), after)
    return [(len(line) - len(line.lstrip()), line.split()[0], line.split()[1]) for line in lines]


def test_demo_runs_and_narrates_deletion_quarantine_and_debugger() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "amtd_stack.running.demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    told = done.stdout
    assert "ingest answered 201: created falco-" in told
    assert "→ delete" in told and "deleted" in told
    assert "replacement pod" in told and "the target moved" in told
    assert "→ quarantine" in told and "isolated by NetworkPolicy" in told
    assert "still Running for forensics" in told
    assert "3. Alertmanager: 'KubePodCryptoMiner'" in told
    assert "ingest answered 200: created alertmanager-" in told
    assert "→ debugger" in told and "has ephemeral container forensics-" in told
    assert "(image busybox, target nginx, running)" in told
    assert "still Running with its labels (app=nginx)" in told
    assert "executor-debug: Succeeded (DebugContainerAttached)" in told
    assert told.count("is Completed") == 3
    assert_trace_shown(told)
    # the chat webhook (a local receiver) got the deletion's notification; the metrics add up
    assert "notify → chat webhook: amtd: delete Succeeded on pod demo/" in told
    assert "alerts created 3, duplicate 0, refused 0, decisions 3, steps succeeded 3" in told


def assert_trace_shown(told: str) -> None:
    """The Falco alert's trace: every hop with its service, each indented under the one before."""
    assert "one trace (OpenTelemetry" in told
    trace = read_trace(told)
    shown = [(name, service) for _, name, service in trace]
    assert all(hop in shown for hop in HOPS), trace
    places = [shown.index(hop) for hop in HOPS]
    assert places == sorted(places), trace  # parent before child
    indents = [trace[place][0] for place in places]
    assert indents == sorted(set(indents)), trace  # each deeper than its parent
