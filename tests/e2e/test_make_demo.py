"""``make demo`` stays true: the narrated demo runs to the end and tells what happened."""

from __future__ import annotations

import subprocess
import sys

import pytest

from support.functions import ROOT

pytestmark = pytest.mark.e2e


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
