"""Statuses: pure updates of a SecurityEvent's ``status``.

Each function takes the current status (as stored) and returns the new one, or None when there is
nothing to write. The caller applies it with an optimistic-concurrency retry, so two executors
writing at once never lose each other's records.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from amtd.model.securityevents import Decision, Execution, Phase, SecurityEventStatus


def derive_phase(decisions: Sequence[Decision], executions: Sequence[Execution]) -> Phase:
    """Pending → Decided → Completed/Failed; Unmatched when no target has anything to do."""
    if not decisions:
        return "Pending"
    matched = [decision for decision in decisions if decision.outcome == "Matched"]
    if not matched:
        return "Unmatched"
    done = {execution.step_id: execution for execution in executions}
    if not all(decision.step_id in done for decision in matched):
        return "Decided"
    failed = any(done[decision.step_id].result == "Failed" for decision in matched)
    return "Failed" if failed else "Completed"


def summarize_actions(decisions: Sequence[Decision]) -> str:
    """The printer column ``Action``: the chosen actions, or ``none``."""
    actions = sorted({decision.action for decision in decisions if decision.action})
    return ",".join(actions) or "none"


def is_generation_decided(status: SecurityEventStatus, generation: int) -> bool:
    """The matcher already decided this spec generation (status writes must not re-fire)."""
    return status.observed_generation == generation and bool(status.decisions)


def find_execution(status: SecurityEventStatus, step_id: str) -> Execution | None:
    """The recorded execution of a step, if any."""
    return next((item for item in status.executions if item.step_id == step_id), None)


def record_decisions(
    status: SecurityEventStatus,
    generation: int,
    decisions: Sequence[Decision],
    executions: Sequence[Execution],
) -> dict[str, Any] | None:
    """Store a generation's decisions (and executions done at once); None if already stored."""
    if is_generation_decided(status, generation):
        return None
    known = {item.step_id for item in status.executions}
    merged = [*status.executions, *(item for item in executions if item.step_id not in known)]
    return render_status(generation, list(decisions), merged)


def record_executions(
    status: SecurityEventStatus, attempts: Sequence[tuple[Execution, str | None]]
) -> tuple[dict[str, Any] | None, list[Execution]]:
    """Record many steps' executions at once, each exactly once; the new status (None: nothing
    changed) and, per attempt, the execution that stands for its step.

    An attempt's second item names a reason that gives way to it: the "pod already gone" that a
    racing duplicate recorded after this attempt itself deleted the pod.
    """
    by_step = {item.step_id: item for item in status.executions}
    standing: list[Execution] = []
    changed = False
    for execution, supersedes in attempts:
        found = by_step.get(execution.step_id)
        if found is None or (supersedes is not None and found.reason == supersedes):
            by_step[execution.step_id] = found = execution
            changed = True
        standing.append(found)
    if not changed:
        return None, standing
    generation = status.observed_generation or 0
    return render_status(generation, status.decisions, list(by_step.values())), standing


def render_status(
    generation: int, decisions: Sequence[Decision], executions: Sequence[Execution]
) -> dict[str, Any]:
    """The status object as written to the API server."""
    status = SecurityEventStatus(
        phase=derive_phase(decisions, executions),
        action=summarize_actions(decisions),
        observed_generation=generation,
        decisions=list(decisions),
        executions=list(executions),
    )
    return status.model_dump(by_alias=True, exclude_none=True, mode="json")
