"""Timeouts: how long one API call may take, as configured by the environment (pure)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

# Bounds of one API call (env AMTD_API_CONNECT_TIMEOUT_S, AMTD_API_TIMEOUT_S; docs/events.md).
CONNECT_TIMEOUT_S = 5.0
TOTAL_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Timeouts:
    """How long one API call may take: to connect, and then to be answered in full.

    A call ends within ``connect_s + total_s``: the answer's headers must come within
    ``total_s`` of connecting, and its body is cut at the same overall deadline.
    """

    connect_s: float = CONNECT_TIMEOUT_S
    total_s: float = TOTAL_TIMEOUT_S

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Timeouts:
        """The bounds set by ``AMTD_API_CONNECT_TIMEOUT_S`` / ``AMTD_API_TIMEOUT_S``, if any."""
        connect = read_seconds(env, "AMTD_API_CONNECT_TIMEOUT_S", CONNECT_TIMEOUT_S)
        return cls(connect, read_seconds(env, "AMTD_API_TIMEOUT_S", TOTAL_TIMEOUT_S))


def read_seconds(env: Mapping[str, str], key: str, default: float) -> float:
    """A positive number of seconds from ``env[key]``; ValueError naming the key otherwise."""
    text = env.get(key, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise ValueError(f"{key} must be a positive number of seconds, got {text!r}")
    return value
