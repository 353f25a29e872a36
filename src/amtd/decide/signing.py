"""Signing: the matcher signs each executable step it decides, before recording it. Pure.

The private key comes from ``MATCHER_SIGNING_KEY`` (PEM; on a cluster the ``matcher-signing-key``
Secret, which only the matcher's func.yaml references). Executors act only on steps whose
signature checks out (:mod:`amtd.act.verifying`), so nobody who can merely write a SecurityEvent's
status can make a step executable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache

from amtd.model.actionevents import (
    ActionStep,
    SecurityEventRef,
    is_executable_decision,
    signed_fields,
)
from amtd.model.securityevents import Decision
from amtd.model.signatures import SigningKey, load_signing_key, sign_fields

SIGNING_KEY_ENV = "MATCHER_SIGNING_KEY"


def read_signing_key(env: Mapping[str, str]) -> SigningKey:
    """The matcher's key from ``env``; ValueError (naming the variable) if missing or bad."""
    pem = env.get(SIGNING_KEY_ENV, "").strip()
    if not pem:
        raise ValueError(f"{SIGNING_KEY_ENV} is not set: the matcher cannot sign steps")
    try:
        return load_cached_key(pem)
    except ValueError as error:
        raise ValueError(f"{SIGNING_KEY_ENV}: {error}") from None


@lru_cache(maxsize=2)
def load_cached_key(pem: str) -> SigningKey:
    """:func:`load_signing_key`, parsed once per key (it is read for every event)."""
    return load_signing_key(pem)


def sign_decision(key: SigningKey, ref: SecurityEventRef, decision: Decision) -> Decision:
    """The decision with its signature when an executor must act on it; else unchanged."""
    if not is_executable_decision(decision):
        return decision
    unsigned = ActionStep.from_decision(decision.model_copy(update={"signature": None}))
    signature = sign_fields(key, signed_fields(ref, unsigned))
    return decision.model_copy(update={"signature": signature})


def sign_decisions(
    key: SigningKey, ref: SecurityEventRef, decisions: Sequence[Decision]
) -> list[Decision]:
    """Every executable decision of one SecurityEvent generation, signed."""
    return [sign_decision(key, ref, decision) for decision in decisions]
