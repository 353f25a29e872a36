"""Retrying: which failed API calls are repeated at once, in the same process, and when. Pure.

An answer that says the call was not carried out is repeated whatever the verb: 429 (API
Priority and Fairness or max-in-flight turned it away; the API server sends Retry-After) and
503 (the server is not serving now). client-go repeats such answers too, when they carry
Retry-After. A read (GET) is also repeated after any other 5xx: reading twice changes nothing;
and so is a PUT, since every PUT here carries a resourceVersion (:meth:`Cluster.replace` insists):
if the first was carried out after all, the repeat is a 409 its caller handles. Anything else
goes back to the caller, and from a function to the Broker, which retries the whole delivery: a
create, patch or delete answered 500 or 504 may have been carried out, and only its caller knows
how to find out (:func:`is_outcome_unknown`; a delete reads the pod back).

A call that got no answer at all is repeated by urllib3 (the client's connection pool) only if
it is one of those harmless to repeat (:data:`REPEATABLE_METHODS`). Not DELETE, which urllib3
repeats by default: a repeated delete of a pod that is gone or terminating answers 404 or 409,
and the executor would record its own delete as someone else's. A lost answer reaches the
caller, which reads back what happened (:mod:`amtd.act.delete.performing`).

A few short waits only: every call of a delivery shares its timeout (the Broker's 10 s), and a
server that keeps refusing is the Broker's retry to wait out, with its longer backoff.
"""

from __future__ import annotations

REPEATS = 3  # after the first try
FIRST_WAIT_S = 0.05  # doubled for each repeat
MAX_WAIT_S = 1.0  # also the most of a Retry-After honoured
NOT_CARRIED_OUT = frozenset({429, 503})
REPEATABLE_METHODS = frozenset({"GET", "HEAD", "PUT"})  # harmless to repeat, see above
EVICTION = "/eviction"


def is_repeatable(
    method: str, path: str, status: int, repeats_done: int, conditional: bool = False
) -> bool:
    """Whether a call answered ``status`` (0: no answer) is repeated now (``repeats_done``
    repeats so far). A ``conditional`` call (a patch that pins the resourceVersion it read) is
    harmless to repeat as a PUT is: carried out already, it answers 409."""
    if repeats_done >= REPEATS:
        return False
    if conditional and (status == 0 or 500 <= status <= 599):
        return True
    if status == 429 and path.endswith(EVICTION):
        return False  # a disruption budget's answer: its caller leaves the step for later
    if status in NOT_CARRIED_OUT:
        return True
    return method.upper() in REPEATABLE_METHODS and 500 <= status <= 599


def is_outcome_unknown(status: int) -> bool:
    """Whether a failed call may have been carried out: no answer (0), or a 5xx other than 503
    (a timeout, an internal error after the write). 429 and 503 say it was not."""
    return status == 0 or (500 <= status <= 599 and status not in NOT_CARRIED_OUT)


def compute_wait(repeats_done: int, retry_after_s: float | None, spread: float) -> float:
    """Seconds before the next repeat: the server's Retry-After if it gave one, else a doubling
    backoff; at most ``MAX_WAIT_S``. ``spread`` in [0, 1) staggers clients refused together."""
    if retry_after_s is not None:
        return min(retry_after_s, MAX_WAIT_S)
    backoff = FIRST_WAIT_S * (1 << repeats_done)
    return min(backoff * (1 + spread), MAX_WAIT_S)
