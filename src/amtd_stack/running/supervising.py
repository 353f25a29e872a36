"""Supervising the stack's function processes: a crashed one is reported and restarted.

Like a kubelet restarting a crashed container with CrashLoopBackOff, but small: a few restarts
within a rolling window, each after a short, doubling backoff; past the bound the function is
left down and the stack is *degraded*. The process comes back on the same port with the same
environment, so the Broker's retries (connection refused is retried) reach it again.

One thread watches every process. A deliberate ``FunctionProcess.stop()`` is not a crash: the
process is no longer wanted, and nothing restarts it.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from amtd_stack.running.processes import FunctionProcess

LOG = logging.getLogger(__name__)
CHECK_INTERVAL_S = 0.1
LOG_LINES_SHOWN = 8


@dataclass(frozen=True)
class RestartPolicy:
    """At most ``max_restarts`` within ``window_s``; backoff ``initial_backoff_s``, doubling."""

    max_restarts: int = 5
    window_s: float = 60.0
    initial_backoff_s: float = 0.25
    max_backoff_s: float = 4.0


@dataclass(frozen=True)
class RestartDecision:
    """What to do about one crash: restart after ``delay_s``, or (None) give up: degraded."""

    restarts_in_window: int
    delay_s: float | None

    @property
    def is_degraded(self) -> bool:
        """The bound is reached: no more restarts."""
        return self.delay_s is None


def decide_restart(
    policy: RestartPolicy, restart_times: Sequence[float], now: float
) -> RestartDecision:
    """Whether a process that crashed at ``now`` may restart, and after how long (pure).

    ``restart_times`` are the monotonic times of its earlier restarts; only those within the
    rolling window count, so a process that ran well for a while starts again from no backoff.
    """
    recent = sum(1 for when in restart_times if now - when < policy.window_s)
    if recent >= policy.max_restarts:
        return RestartDecision(recent, None)
    delay = min(policy.initial_backoff_s * 2**recent, policy.max_backoff_s)
    return RestartDecision(recent, delay)


def describe_exit(returncode: int) -> str:
    """``exit code 3`` or ``killed by SIGKILL`` (Popen gives a signal as a negative code)."""
    if returncode >= 0:
        return f"exit code {returncode}"
    try:
        return f"killed by {signal.Signals(-returncode).name}"
    except ValueError:
        return f"killed by signal {-returncode}"


@dataclass(frozen=True)
class Death:
    """A function process that exited while it was wanted."""

    function: str
    pid: int
    status: str  # describe_exit()


@dataclass(frozen=True)
class Degradation:
    """A function left down: it kept crashing past the restart bound."""

    function: str
    reason: str


class Supervisor:
    """Watch the processes from one thread; restart crashed ones within the policy's bound."""

    def __init__(
        self,
        processes: Mapping[str, FunctionProcess],
        policy: RestartPolicy,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.processes = dict(processes)
        self.policy = policy
        self.deaths: list[Death] = []
        self.restarts: dict[str, int] = {}  # restarts done, per function
        self.degradations: list[Degradation] = []
        self._clock = clock
        self._restart_times: dict[str, list[float]] = {}
        self._due: dict[str, float] = {}  # function -> when its pending restart is due
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="function-supervisor", daemon=True)

    def start(self) -> None:
        """Begin watching."""
        self._thread.start()

    def stop(self) -> None:
        """Stop watching; nothing is restarted once this returns (pending restarts are dropped)."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stopping.wait(CHECK_INTERVAL_S):
            try:
                self.check_once()
            except Exception:  # a supervisor that dies would silently stop restarting
                LOG.exception("supervising the function processes failed")

    def check_once(self) -> None:
        """One pass: reap and judge crashed processes, restart those whose backoff is over."""
        for name, process in self.processes.items():
            if self._stopping.is_set():
                return
            if name in self._due:
                self._restart_when_due(name, process)
            else:
                self._notice_crash(name, process)

    def _notice_crash(self, name: str, process: FunctionProcess) -> None:
        pid = process.pid
        returncode = process.reap_if_crashed()
        if returncode is None or pid is None:
            return
        death = Death(name, pid, describe_exit(returncode))
        self.deaths.append(death)
        self._report_death(process, death)
        decision = decide_restart(self.policy, self._restart_times.get(name, []), self._clock())
        if decision.delay_s is None:
            self._degrade(name, f"{death.status} after {decision.restarts_in_window} restarts "
                                f"within {self.policy.window_s:g} s")  # fmt: skip
            return
        LOG.warning("restarting function %s in %.2f s", name, decision.delay_s)
        self._due[name] = self._clock() + decision.delay_s

    def _restart_when_due(self, name: str, process: FunctionProcess) -> None:
        if self._clock() < self._due[name]:
            return
        del self._due[name]
        try:
            revived = process.revive()
        except Exception as error:  # e.g. the executable is gone: restarting cannot help
            self._degrade(name, f"cannot restart: {error}")
            return
        if revived:  # False: stopped or started on purpose meanwhile
            self._restart_times.setdefault(name, []).append(self._clock())
            self.restarts[name] = self.restarts.get(name, 0) + 1
            LOG.warning("function %s restarted on port %d (pid %s, restart %d)",
                        name, process.port, process.pid, self.restarts[name])  # fmt: skip

    def _report_death(self, process: FunctionProcess, death: Death) -> None:
        lines = process.log_tail().splitlines()[-LOG_LINES_SHOWN:]
        LOG.warning("function %s (pid %d, port %d) died: %s; last log lines:\n%s",
                    death.function, death.pid, process.port, death.status,
                    "\n".join(f"  | {line}" for line in lines) or "  (empty log)")  # fmt: skip

    def _degrade(self, name: str, reason: str) -> None:
        self.degradations.append(Degradation(name, reason))
        LOG.error("stack degraded: function %s is down: %s", name, reason)
