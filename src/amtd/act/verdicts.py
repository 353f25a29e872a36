"""Verdicts: how a step is settled (result, reason, message), before it becomes an Execution."""

from __future__ import annotations

from dataclasses import dataclass

from amtd.model.securityevents import ExecutionResult


@dataclass(frozen=True)
class StepVerdict:
    """The outcome a guard or an action settles a step with."""

    result: ExecutionResult
    reason: str
    message: str
