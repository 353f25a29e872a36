"""Request records and fault injection.

A faulted request first waits `latency_s`; then either
- it fails with a status drawn from `statuses` *before* touching any state, or
- with `drop=True`, it is executed and its connection is then closed without a response
  (the "lost reply" case: state changed, the client cannot know), or
- with `statuses=()` and `drop=False`, it just proceeds late (pure latency), and
- with `trickle_s > 0` as well, its answer's headers go out at once and its body one byte every
  `trickle_s` seconds (a slow body, as a watch or a hostile server sends it).
Only resource requests (the ones that produce a RequestRecord) can be faulted.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestRecord:
    """One resource request as the server saw it. ``user`` names the credential: the bearer
    token itself on a stand-in that enforces nothing, else the name its token was issued for
    (a ServiceAccount's name, an administrator's), or the user it impersonates."""

    user: str
    verb: str
    api_group: str
    resource: str
    subresource: str
    namespace: str
    name: str
    status: int
    fault: str = ""  # "", "status", "drop", "latency" or "trickle"


@dataclass(frozen=True)
class Fault:
    """What to do to one request: wait, then fail with `status` or drop after acting."""

    latency_s: float
    status: int
    drop: bool
    trickle_s: float = 0.0


Match = Callable[[RequestRecord], bool]


class FaultPlan:
    """Seeded, thread-safe decisions about which requests to fault."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rate = 0.0
        self._statuses: tuple[int, ...] = ()
        self._latency_s = 0.0
        self._drop = False
        self._trickle_s = 0.0
        self._match: Match | None = None
        self._random = random.Random(0)

    def configure(
        self,
        rate: float,
        statuses: tuple[int, ...],
        latency_s: float,
        drop: bool,
        seed: int,
        match: Match | None,
        trickle_s: float = 0.0,
    ) -> None:
        """Replace the current plan (rate 0 disables it)."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be within [0, 1], got {rate}")
        with self._lock:
            self._rate, self._statuses, self._latency_s = rate, tuple(statuses), latency_s
            self._trickle_s = trickle_s
            self._drop, self._match, self._random = drop, match, random.Random(seed)

    def clear(self) -> None:
        """No more faults."""
        self.configure(0.0, (), 0.0, False, 0, None)

    def decide(self, record: RequestRecord) -> Fault | None:
        """The fault for this request, or None."""
        with self._lock:
            if self._rate <= 0.0 or (self._match is not None and not self._match(record)):
                return None
            if self._random.random() >= self._rate:
                return None
            status = self._random.choice(self._statuses) if self._statuses else 0
            return Fault(self._latency_s, 0 if self._drop else status, self._drop, self._trickle_s)
