"""Recording executions as JSON Patch operations on the status as stored (amtd.model.statuses)."""

from __future__ import annotations

import copy
from typing import Any

from amtd.model.securityevents import Execution, to_stored
from amtd.model.statuses import plan_execution_records
from amtd_stack.apiserver.patching import apply_json_patch


def execution(step: str, reason: str = "PodDeleted") -> Execution:
    return Execution(step_id=step, target=f"demo/{step}", action="delete", result="Succeeded",
                     reason=reason, executor="executor-delete",
                     time="2026-12-04T00:00:00Z")  # fmt: skip


def decision(step: str) -> dict[str, Any]:
    return {"target": f"demo/{step}", "outcome": "Matched", "stepId": step, "action": "delete"}


def stored_status(*executions: Execution) -> dict[str, Any]:
    return {"phase": "Decided", "decisions": [decision("a"), decision("b")],
            "executions": [to_stored(item) for item in executions]}  # fmt: skip


def patched(status: dict[str, Any] | None, operations: list[dict[str, Any]]) -> dict[str, Any]:
    document = {} if status is None else {"status": copy.deepcopy(status)}
    result: dict[str, Any] = apply_json_patch(document, operations)
    return result["status"]


def test_new_records_are_appended_and_the_phase_follows() -> None:
    status = stored_status(execution("a"))
    operations, standing = plan_execution_records(status, [(execution("b"), None)])
    assert operations is not None and standing == [execution("b")]
    after = patched(status, operations)
    assert [item["stepId"] for item in after["executions"]] == ["a", "b"]
    assert after["phase"] == "Completed" and after["decisions"] == status["decisions"]


def test_a_recorded_step_is_not_written_again_and_its_record_stands() -> None:
    status = stored_status(execution("a", "PodAlreadyGone"))
    operations, standing = plan_execution_records(status, [(execution("a"), None)])
    assert operations is None and standing[0].reason == "PodAlreadyGone"


def test_the_attempt_that_acted_replaces_a_duplicates_already_gone_in_place() -> None:
    status = stored_status(execution("a", "PodAlreadyGone"), execution("b"))
    operations, standing = plan_execution_records(status, [(execution("a"), "PodAlreadyGone")])
    assert operations is not None and standing == [execution("a")]
    after = patched(status, operations)
    assert [(e["stepId"], e["reason"]) for e in after["executions"]] == [
        ("a", "PodDeleted"), ("b", "PodDeleted")]  # fmt: skip


def test_a_status_without_executions_or_at_all_gets_its_list() -> None:
    for status in (None, {"decisions": [decision("a")]}):
        operations, _ = plan_execution_records(
            status, [(execution("a"), None), (execution("a"), None)]
        )
        assert operations is not None
        assert [e["stepId"] for e in patched(status, operations)["executions"]] == ["a"]
