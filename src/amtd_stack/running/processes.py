"""One functions-framework process per function, started, supervised and stopped.

Each function runs under ``functions-framework`` as its own process, with the identity of its
ServiceAccount (a kubeconfig whose user is that name), like a Knative Service's pod would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from amtd_stack.errors import StackError
from amtd_stack.running.definitions import FunctionDefinition
from amtd_stack.serving import is_port_open, pick_free_port

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 5.0


class FunctionProcess:
    """One functions-framework process serving a function on a loopback port.

    The process is *wanted* from ``start()`` until a deliberate ``stop()``/``terminate()``: one
    that exits while wanted has crashed, and the supervisor restarts it. The lock keeps a
    deliberate stop or start and the supervisor from acting on the process at the same time.
    """

    def __init__(
        self, definition: FunctionDefinition, environment: Mapping[str, str], log_path: Path
    ) -> None:
        self.definition = definition
        self.port = pick_free_port()
        self.log_path = log_path
        self._environment = dict(environment)
        self._process: subprocess.Popen[bytes] | None = None
        self._wanted = False
        self._lock = threading.RLock()

    @property
    def url(self) -> str:
        """Base URL of the function."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The process id of the current (or last) process, which also names its group."""
        return None if self._process is None else self._process.pid

    @property
    def is_running(self) -> bool:
        """True while the process has been started and has not exited."""
        return self._process is not None and not has_exited(self._process)

    def add_environment(self, values: Mapping[str, str]) -> None:
        """Set more variables for the process (before start, e.g. a SinkBinding's K_SINK)."""
        self._environment.update(values)

    def command(self) -> list[str]:
        """The functions-framework command line (the venv's own executable)."""
        return [
            str(Path(sys.executable).parent / "functions-framework"),
            *("--target", self.definition.target),
            *("--source", str(self.definition.folder / "main.py")),
            *("--host", "127.0.0.1", "--port", str(self.port)),
        ]

    def start(self) -> None:
        """Launch the process in its own process group, logging to ``log_path``.

        Same port, same environment every time; an exited predecessor is reaped first.
        """
        with self._lock:
            if self._process is not None and not has_exited(self._process):
                raise StackError(f"function {self.definition.name} is already running")
            if self._process is not None and self._process.returncode is None:
                reap_group(self._process)
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("ab") as log:
                self._process = subprocess.Popen(
                    self.command(),
                    cwd=self.definition.folder,
                    env=self._environment,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            self._wanted = True

    def wait_ready(self, deadline: float) -> None:
        """Block until the port accepts TCP; StackError when the process dies or time runs out."""
        while time.monotonic() < deadline:
            if self._process is None or has_exited(self._process):
                raise StackError(f"function {self.definition.name} exited: {self.log_tail()}")
            if is_port_open("127.0.0.1", self.port):
                return
            time.sleep(0.05)
        raise StackError(f"function {self.definition.name} not ready: {self.log_tail()}")

    def log_tail(self, limit: int = 2000) -> str:
        """The end of the process log, for error messages."""
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return "(no log)"

    def reap_if_crashed(self) -> int | None:
        """The exit status of a process that exited while wanted, reaped with its group.

        None when it runs, was stopped on purpose, was already reaped, or a deliberate stop or
        start holds it right now (that caller deals with it).
        """
        if not self._lock.acquire(blocking=False):
            return None
        try:
            process = self._process
            if not self._wanted or process is None or process.returncode is not None:
                return None
            return reap_group(process) if has_exited(process) else None
        finally:
            self._lock.release()

    def revive(self) -> bool:
        """Start a crashed process again; False when it was stopped on purpose or runs again."""
        with self._lock:
            if not self._wanted or self.is_running:
                return False
            self.start()
            return True

    def terminate(self) -> None:
        """Ask the process group to exit (SIGTERM) without waiting; a deliberate stop."""
        with self._lock:
            self._wanted = False
            if self._process is not None and not has_exited(self._process):
                signal_group(self._process.pid, signal.SIGTERM)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """A deliberate stop: SIGTERM the group, SIGKILL what is left after ``timeout_s``, reap."""
        with self._lock:
            self._wanted = False
            process = self._process
            if process is None or process.returncode is not None:
                return
            signal_group(process.pid, signal.SIGTERM)
            wait_exited(process, timeout_s)
            reap_group(process, timeout_s)


def has_exited(process: subprocess.Popen[bytes]) -> bool:
    """Whether our child exited, without reaping it: until reaped, its pid still names its group
    (so signalling the group cannot hit a newer process that reused the number)."""
    if process.returncode is not None:
        return True
    flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
    try:
        return os.waitid(os.P_PID, process.pid, flags) is not None
    except ChildProcessError:  # reaped behind Popen's back: gone all the same
        return True


def wait_exited(process: subprocess.Popen[bytes], timeout_s: float) -> bool:
    """Poll until the process exited (not reaped) or ``timeout_s`` passed; whether it exited."""
    deadline = time.monotonic() + timeout_s
    while not has_exited(process):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def reap_group(process: subprocess.Popen[bytes], timeout_s: float = STOP_TIMEOUT_S) -> int:
    """SIGKILL the group (the leader if it lingers; workers it left behind), reap the leader.

    gunicorn's workers outlive a killed master and keep its port: killing the group before a
    restart is what lets the new process bind the same port.
    """
    signal_group(process.pid, signal.SIGKILL)
    return process.wait(timeout_s)


def signal_group(pid: int, signum: int) -> None:
    """Signal the process group led by ``pid`` (our own child), ignoring one already gone."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signum)


def start_functions(processes: list[FunctionProcess], timeout_s: float = READY_TIMEOUT_S) -> None:
    """Start all processes at once, then wait until every one is ready (stops all on failure)."""
    for process in processes:
        process.start()
    deadline = time.monotonic() + timeout_s
    try:
        for process in processes:
            process.wait_ready(deadline)
    except StackError:
        stop_functions(processes)
        raise


def stop_functions(processes: list[FunctionProcess], timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM every process at once, then wait for each (SIGKILL after the shared deadline)."""
    for process in processes:
        process.terminate()
    deadline = time.monotonic() + timeout_s
    for process in processes:
        process.stop(max(deadline - time.monotonic(), 0.1))
