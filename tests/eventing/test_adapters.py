"""The ApiServerSource adapter's process edge (amtd_stack.running.adapters): its journal reads
back what it emitted, and a spec file that is not the stack's is refused."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

from cloudevents.http import CloudEvent

from amtd_stack.running.adapters import EmittedFile, read_journal


def test_the_journal_reads_back_every_emitted_event_in_order(tmp_path: Path) -> None:
    journal = tmp_path / "emitted.jsonl"
    assert read_journal(journal) == []
    log = EmittedFile(journal)
    sent = [CloudEvent({"type": "t", "source": "/s", "id": str(n)}, {"n": n}) for n in range(3)]
    for event in sent:
        log.append(event)
    again = EmittedFile(journal)  # a restarted adapter journals on
    again.append(CloudEvent({"type": "t", "source": "/s", "id": "3"}, {"n": 3}))

    read = read_journal(journal)
    assert [event["id"] for event in read] == ["0", "1", "2", "3"]
    assert read[1].get_data() == {"n": 1}
    assert [event["id"] for event in log.snapshot()] == ["0", "1", "2"]


def test_a_spec_file_holding_anything_else_is_refused(tmp_path: Path) -> None:
    spec = tmp_path / "spec"
    spec.write_bytes(pickle.dumps({"not": "a spec"}))
    done = subprocess.run(
        [sys.executable, "-m", "amtd_stack.running.adapters", str(spec)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "holds no AdapterSpec" in done.stderr
