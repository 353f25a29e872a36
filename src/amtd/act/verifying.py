"""Verifying: an executor checks the matcher's signature on each of its steps before anything.

The trusted public keys come from ``MATCHER_PUBLIC_KEYS`` (one or more PEM blocks; on a cluster
the ``matcher-public-keys`` ConfigMap). Several keys are trusted at once during a rotation
(docs/DEPLOY.md). A request with any step of ours that is unsigned, signed by an unknown key or
altered since it was signed is refused as a whole, before the SecurityEvent or a pod is read:
it did not come from the matcher. Pure.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from amtd.model.actionevents import ActionStep, SecurityEventRef, signed_fields
from amtd.model.signatures import KeyRing, check_fields, load_key_ring

LOG = logging.getLogger(__name__)
PUBLIC_KEYS_ENV = "MATCHER_PUBLIC_KEYS"


class UnverifiedStepError(Exception):
    """A step the matcher did not sign as it is; ``reason`` is one word, ``detail`` says more."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Verifier:
    """The trusted keys; ``problem`` says why there are none (every step is then refused)."""

    ring: KeyRing
    problem: str = ""


def read_verifier(env: Mapping[str, str]) -> Verifier:
    """The key ring from ``env``; a missing or unreadable one trusts nothing (logged)."""
    try:
        ring = load_cached_ring(env.get(PUBLIC_KEYS_ENV, ""))
    except ValueError as error:
        problem = f"{PUBLIC_KEYS_ENV}: {error}"
    else:
        problem = "" if ring else f"{PUBLIC_KEYS_ENV} holds no public key"
    if problem:
        LOG.error("no trusted matcher key (%s): every step will be refused", problem)
        return Verifier({}, problem)
    return Verifier(ring)


@lru_cache(maxsize=4)
def load_cached_ring(text: str) -> KeyRing:
    """:func:`load_key_ring`, parsed once per text (settings are made per request)."""
    return load_key_ring(text)


def verify_steps(verifier: Verifier, ref: SecurityEventRef, steps: Sequence[ActionStep]) -> None:
    """Raise UnverifiedStepError for the first step whose signature does not check out."""
    for step in steps:
        if verifier.problem:
            raise UnverifiedStepError("NoTrustedKeys", verifier.problem)
        problem = check_fields(verifier.ring, signed_fields(ref, step), step.signature)
        if problem is not None:
            reason, message = problem
            LOG.warning("step %s on %s of SecurityEvent %s refused: %s (%s)",
                        step.step_id, step.target, ref.name, reason, message)  # fmt: skip
            raise UnverifiedStepError(reason, f"step {step.step_id}: {message}")
