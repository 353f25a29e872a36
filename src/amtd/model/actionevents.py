"""Action events: the contract between the matcher and the executors (docs/events.md).

The matcher sends ``action.requested`` events per SecurityEvent generation listing a step per
target, at most ``MAX_STEPS_PER_REQUEST`` steps each (:func:`split_request`: a request must be
done within one delivery timeout; a Knative reply carries one event, the others are published
to the Broker). Extension flags (``amtddelete``,
``amtdquarantine``) let Trigger filters route it to every executor that has a step in it; each
executor performs only its own steps. Ids are deterministic so redeliveries are recognisable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from amtd.model.actions import EXECUTABLE_KINDS, is_executable
from amtd.model.securityevents import Decision, Execution
from amtd.model.signatures import Signature

ACTION_REQUESTED = "com.r6security.amtd.action.requested.v1"
ACTION_COMPLETED = "com.r6security.amtd.action.completed.v1"
MATCHER_SOURCE = "/amtd/matcher"
MAX_LISTED_TARGETS_LENGTH = 200
MAX_STEPS_PER_REQUEST = 50  # at 8 steps at once, a few API round trips per step: well under 10 s


def executor_source(action: str) -> str:
    """The CloudEvents ``source`` of an executor's replies."""
    return f"/amtd/executors/{action}"


def flag_extension(action: str) -> str:
    """The extension attribute that marks an event as carrying steps for ``action``.

    Lower-cased: CloudEvents attribute names are lower-case letters and digits only
    (``customAction`` is flagged ``amtdcustomaction``).
    """
    return f"amtd{action.lower()}"


class SecurityEventRef(BaseModel):
    """Which SecurityEvent (and which generation of its spec) a step belongs to."""

    model_config = ConfigDict(frozen=True)
    name: str
    uid: str
    generation: int


class ActionStep(BaseModel):
    """One target's action, as decided."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)
    step_id: str = Field(alias="stepId")
    target: str
    pod_uid: str = Field(alias="podUid")
    action: str
    parameters: dict[str, Any] = Field(default_factory=dict)
    policy: str
    rule_index: int = Field(alias="ruleIndex")
    dry_run: bool = Field(default=False, alias="dryRun")
    allow_standalone_pods: bool = Field(default=False, alias="allowStandalonePods")
    signature: Signature | None = None  # the matcher's, over signed_fields (model.signatures)

    @classmethod
    def from_decision(cls, decision: Decision) -> ActionStep:
        """The step for a matched decision on an existing pod."""
        return cls(
            step_id=decision.step_id,
            target=decision.target,
            pod_uid=decision.pod_uid or "",
            action=decision.action or "",
            parameters=decision.parameters or {},
            policy=decision.policy or "",
            rule_index=decision.rule_index if decision.rule_index is not None else -1,
            dry_run=decision.dry_run,
            allow_standalone_pods=decision.allow_standalone_pods,
            signature=decision.signature,
        )


def signed_fields(ref: SecurityEventRef, step: ActionStep) -> dict[str, Any]:
    """What the matcher's signature covers: the SecurityEvent (name, uid, spec generation) and
    every field of the step but the signature itself."""
    fields = step.model_dump(by_alias=True, mode="json", exclude={"signature"})
    return {**fields, "securityEvent": ref.model_dump(mode="json")}


def is_executable_decision(decision: Decision) -> bool:
    """Whether an executor has to act on this decision (a matched, executable action)."""
    return decision.outcome == "Matched" and is_executable(decision.action or "")


def is_step_decided(step: ActionStep, decisions: Mapping[str, Decision]) -> bool:
    """The step is exactly what the matcher recorded (so a forged or altered event is refused);
    ``decisions`` by step id."""
    recorded = decisions.get(step.step_id)
    return recorded is not None and ActionStep.from_decision(recorded) == step


class ActionRequest(BaseModel):
    """``data`` of an ``action.requested`` event."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)
    security_event: SecurityEventRef = Field(alias="securityEvent")
    steps: list[ActionStep] = Field(min_length=1)

    def steps_for(self, action: str) -> list[ActionStep]:
        """The steps one executor is responsible for."""
        return [step for step in self.steps if step.action == action]


class ActionCompletion(BaseModel):
    """``data`` of an ``action.completed`` event: what one executor did."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)
    security_event: SecurityEventRef = Field(alias="securityEvent")
    executions: list[Execution]


def make_action_request(
    ref: SecurityEventRef, decisions: Sequence[Decision], executions: Sequence[Execution]
) -> ActionRequest | None:
    """The request for every step an executor must perform and has not yet recorded (pure).

    Built from recorded decisions, it is the same event (same id) whenever it is rebuilt, so a
    redelivered SecurityEvent re-emits exactly what the executors may have missed.
    """
    done = {execution.step_id for execution in executions}
    steps = [
        ActionStep.from_decision(decision)
        for decision in decisions
        if is_executable_decision(decision) and decision.step_id not in done
    ]
    return ActionRequest(security_event=ref, steps=steps) if steps else None


def split_request(
    request: ActionRequest, max_steps: int = MAX_STEPS_PER_REQUEST
) -> list[ActionRequest]:
    """The request as consecutive requests of at most ``max_steps`` steps (pure). The same
    request always splits the same way, and each part's id names its own targets."""
    steps = request.steps
    return [
        ActionRequest(security_event=request.security_event, steps=steps[start : start + max_steps])
        for start in range(0, len(steps), max_steps)
    ]


def make_request_id(ref: SecurityEventRef, steps: Sequence[ActionStep]) -> str:
    """Deterministic event id: SecurityEvent uid + generation + targets.

    With many targets the list is replaced by its hash, so the ``ce-id`` header stays short.
    """
    targets = ",".join(sorted(step.target for step in steps))
    if len(targets) > MAX_LISTED_TARGETS_LENGTH:
        targets = "sha256:" + hashlib.sha256(targets.encode()).hexdigest()[:32]
    return f"{ref.uid}/{ref.generation}/{targets}"


def to_request_attributes(request: ActionRequest) -> dict[str, str]:
    """CloudEvent attributes for an ``action.requested`` event (routable by Trigger filters)."""
    attributes = {
        "type": ACTION_REQUESTED,
        "source": MATCHER_SOURCE,
        "id": make_request_id(request.security_event, request.steps),
        "subject": request.security_event.name,
        "datacontenttype": "application/json",
        "securityevent": request.security_event.name,
    }
    for action in sorted({step.action for step in request.steps} & set(EXECUTABLE_KINDS)):
        attributes[flag_extension(action)] = "true"
    return attributes


def to_completion_attributes(request_id: str, action: str, name: str) -> dict[str, str]:
    """CloudEvent attributes for an executor's ``action.completed`` reply."""
    return {
        "type": ACTION_COMPLETED,
        "source": executor_source(action),
        "id": f"{request_id}/{action}",
        "subject": name,
        "datacontenttype": "application/json",
        "securityevent": name,
        "action": action,
    }


def from_request_data(data: Mapping[str, Any]) -> ActionRequest:
    """Parse an ``action.requested`` event's data; raises pydantic.ValidationError."""
    return ActionRequest.model_validate(data)
