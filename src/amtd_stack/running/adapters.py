"""Adapters: each ApiServerSource's adapter runs as a process of its own, as on a cluster.

Knative runs an ApiServerSource as a Deployment of its own that watches the API server and
posts CloudEvents to the sink, both over HTTP. The local stack does the same: the watch, the
events' building and their posting (about a third of the stack process's time in an alert
storm) no longer share one interpreter, and its lock, with the API stand-in and the Broker.
The adapter appends every event it emits to a journal file (JSON lines of structured
CloudEvents), which :meth:`AdapterProcess.emitted` reads back; stopping the process is an
outage of the source (changes meanwhile are never sent), starting it again lists afresh.

``python -m amtd_stack.running.adapters SPEC`` is the adapter; SPEC is a pickle the stack wrote
in its own state directory (never anyone else's file).
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cloudevents.conversion import to_json
from cloudevents.http import CloudEvent, from_json

from amtd_stack.errors import StackError
from amtd_stack.eventing.apiserversources import ApiServerSourceDefinition, ApiServerSourceRunner
from amtd_stack.eventing.delivering import AttemptLog
from amtd_stack.eventing.sources import EmittedLog, SourceContext, make_sink_sender

READY = "ready"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 5.0
PARENT_CHECK_S = 1.0


@dataclass(frozen=True)
class AdapterSpec:
    """What one adapter process runs: the source, its identity, the API server, the sink."""

    source: ApiServerSourceDefinition
    kubeconfig: Path
    api_url: str
    sink_url: str
    journal: Path  # the emitted events, appended


class EmittedFile(EmittedLog):
    """An emitted-events log that also appends each event to the journal file, flushed."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._file = path.open("a", encoding="utf-8")

    def append(self, entry: CloudEvent) -> None:
        """Record one event, in memory and in the file."""
        super().append(entry)
        self._file.write(to_json(entry).decode() + "\n")
        self._file.flush()


def read_journal(path: Path) -> list[CloudEvent]:
    """The events an adapter journalled, oldest first (none before it started)."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [from_json(line) for line in lines if line.strip()]


def run_adapter(spec: AdapterSpec) -> None:
    """Watch and emit until SIGTERM; says READY on stdout once it watches."""
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    label = f"source {spec.source.namespace}/{spec.source.name}"
    sender = make_sink_sender(label, spec.sink_url, AttemptLog(), stopping)
    context = SourceContext(spec.kubeconfig, spec.api_url, sender, EmittedFile(spec.journal))
    runner = ApiServerSourceRunner(spec.source, context)
    runner.start()
    print(READY, flush=True)
    parent = os.getppid()
    while not stopping.wait(PARENT_CHECK_S):
        if os.getppid() != parent:  # the stack died without stopping us: do not watch on alone
            break
    runner.stop()


class AdapterProcess:
    """One ApiServerSource's adapter process, started and stopped by the stack."""

    def __init__(self, spec: AdapterSpec, spec_path: Path, log_path: Path) -> None:
        self.spec = spec
        self.source = spec.source
        self._spec_path = spec_path
        self._log_path = log_path
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> AdapterProcess:
        """Start the process and wait until it watches (StackError if it fails to)."""
        self._spec_path.write_bytes(pickle.dumps(self.spec))
        with self._log_path.open("a", encoding="utf-8") as log:
            command = [sys.executable, "-m", "amtd_stack.running.adapters", str(self._spec_path)]
            self._process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True)
        self._wait_ready(self._process)
        return self

    def _wait_ready(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            readable, _, _ = select.select([process.stdout], [], [], 0.1)
            if readable and process.stdout.readline().strip() == READY:
                return
            if process.poll() is not None:
                break
        self.stop()
        raise StackError(f"the adapter of ApiServerSource {self.source.name} did not start "
                         f"(log: {self._log_path})")  # fmt: skip

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL after STOP_TIMEOUT_S)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restarted(self) -> AdapterProcess:
        """A fresh process for the same source, journalling on (not started yet)."""
        return AdapterProcess(self.spec, self._spec_path, self._log_path)

    def emitted(self) -> list[CloudEvent]:
        """The events this source emitted so far (across restarts)."""
        return read_journal(self.spec.journal)


def main(argv: list[str]) -> int:
    """The adapter process."""
    spec = pickle.loads(Path(argv[0]).read_bytes())  # written by the stack that started us
    if not isinstance(spec, AdapterSpec):
        print("adapter: the spec file holds no AdapterSpec", file=sys.stderr)
        return 2
    run_adapter(spec)
    return 0


if __name__ == "__main__":
    # through the module's own name: the pickled spec's classes are that module's, not __main__'s
    from amtd_stack.running.adapters import main as run_main

    sys.exit(run_main(sys.argv[1:]))
