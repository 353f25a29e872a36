"""Statuses: pure updates of a SecurityEvent's ``status``.

Each update takes the current status (as stored) and returns the change, or None when there is
nothing to write: the decisions as a whole new status, executions as JSON Patch operations (a
status holding a thousand decisions is about a megabyte; a record adds a few hundred bytes). The
caller applies it with an optimistic-concurrency retry, so two executors writing at once never
lose each other's records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from amtd.model.objects import JsonPatch, Object
from amtd.model.securityevents import (
    Decision,
    Execution,
    Phase,
    SecurityEventStatus,
    to_stored,
)


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


def plan_execution_records(
    stored: Mapping[str, Any] | None, attempts: Sequence[tuple[Execution, str | None]]
) -> tuple[JsonPatch | None, list[Execution]]:
    """Record many steps' executions at once, each exactly once, in the status as stored (None:
    the object has none yet): the JSON Patch operations that do it (None: nothing changes) and,
    per attempt, the execution that stands for its step.

    An attempt's second item names a reason that gives way to it: the "pod already gone" that a
    racing duplicate recorded after this attempt itself deleted the pod; its record is replaced
    in place, new steps' are appended, and the phase follows. Nothing else is sent back.
    """
    status = SecurityEventStatus.model_validate(stored or {})
    records = list(status.executions)
    where: dict[str, int] = {}
    for position, item in enumerate(records):
        where.setdefault(item.step_id, position)
    changes: JsonPatch = []
    standing: list[Execution] = []
    for execution, supersedes in attempts:
        index = where.get(execution.step_id)
        found = None if index is None else records[index]
        if found is None or (supersedes is not None and found.reason == supersedes):
            changes.append(place_record(records, where, execution))
            found = execution
        standing.append(found)
    if not changes:
        return None, standing
    phase = derive_phase(status.decisions, records)
    if phase != status.phase:
        changes.append({"op": "add", "path": "/status/phase", "value": phase})
    return [*open_executions(stored), *changes], standing


def place_record(records: list[Execution], where: dict[str, int], execution: Execution) -> Object:
    """Put ``execution`` in ``records`` (over its step's record, else at the end); the
    operation that does the same to the stored list."""
    index = where.get(execution.step_id)
    value = to_stored(execution)
    if index is not None:
        records[index] = execution
        return {"op": "replace", "path": f"/status/executions/{index}", "value": value}
    where[execution.step_id] = len(records)
    records.append(execution)
    return {"op": "add", "path": "/status/executions/-", "value": value}


def open_executions(stored: Mapping[str, Any] | None) -> JsonPatch:
    """The operations that make an empty list of executions where there is none yet."""
    if stored is None:
        return [{"op": "add", "path": "/status", "value": {"executions": []}}]
    if "executions" not in stored:
        return [{"op": "add", "path": "/status/executions", "value": []}]
    return []


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
    return to_stored(status)
