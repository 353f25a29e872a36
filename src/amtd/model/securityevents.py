"""SecurityEvents: the cluster-scoped record of one detected threat, and its status.

``spec`` is Phoenix's (``targets``, ``rule``, ``description``). ``status`` is ours: Phoenix never
wrote one (docs/phoenix.md); here it holds the decision per target and every execution, so
``kubectl get securityevents`` shows what happened.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from amtd import SECURITY_EVENT_KIND
from amtd.model.policies import CustomObject, clean_rule
from amtd.model.signatures import Signature
from amtd.model.targets import Target, parse_target

KIND = SECURITY_EVENT_KIND
PLURAL = "securityevents"


def to_stored(model: BaseModel) -> dict[str, Any]:
    """A model as the API server stores it: field aliases, no unset fields, JSON values."""
    return model.model_dump(by_alias=True, exclude_none=True, mode="json")


DecisionOutcome = Literal["Matched", "Unmatched", "PodNotFound", "InvalidTarget"]
ExecutionResult = Literal["Succeeded", "Skipped", "Failed", "DryRun"]
Phase = Literal["Pending", "Decided", "Unmatched", "Completed", "Failed"]


class SecurityEventSpec(BaseModel):
    """``spec`` of a SecurityEvent, as Phoenix's integrators write it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    targets: list[str] = Field(min_length=1)
    rule: dict[str, str]
    description: str = ""

    _clean_rule = field_validator("rule", mode="before")(clean_rule)

    @field_validator("targets")
    @classmethod
    def check_targets(cls, targets: list[str]) -> list[str]:
        """Every target must be ``namespace/name``; the message names the bad one."""
        for position, text in enumerate(targets):
            try:
                parse_target(text)
            except ValueError as error:
                raise ValueError(f"targets[{position}]: {error}") from None
        return targets

    def parsed_targets(self) -> list[Target]:
        """The targets as (namespace, name) pairs, duplicates dropped, order kept."""
        return list(dict.fromkeys(parse_target(text) for text in self.targets))


class Decision(BaseModel):
    """What the matcher decided for one target."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)
    target: str
    outcome: DecisionOutcome
    step_id: str = Field(alias="stepId")
    pod_uid: str | None = Field(default=None, alias="podUid")
    policy: str | None = None
    rule_index: int | None = Field(default=None, alias="ruleIndex")
    rule: dict[str, str] | None = None
    score: int | None = None
    action: str | None = None
    parameters: dict[str, Any] | None = None
    dry_run: bool = Field(default=False, alias="dryRun")
    allow_standalone_pods: bool = Field(default=False, alias="allowStandalonePods")
    ties: list[str] = Field(default_factory=list)
    reason: str = ""
    decided_at: str | None = Field(default=None, alias="decidedAt")
    signature: Signature | None = None  # the matcher's, on executable steps (docs/events.md)


class Execution(BaseModel):
    """What an executor (or the matcher, for actions that need none) did for one step."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)
    step_id: str = Field(alias="stepId")
    target: str
    action: str
    result: ExecutionResult
    reason: str
    message: str = ""
    executor: str
    time: str
    pod_uid: str | None = Field(default=None, alias="podUid")


class SecurityEventStatus(BaseModel):
    """``status`` of a SecurityEvent (our extension)."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)
    phase: Phase | None = None
    action: str | None = None
    observed_generation: int | None = Field(default=None, alias="observedGeneration")
    decisions: list[Decision] = Field(default_factory=list)
    executions: list[Execution] = Field(default_factory=list)


class SecurityEvent(CustomObject):
    """A SecurityEvent object."""

    kind: Literal["SecurityEvent"] = "SecurityEvent"
    spec: SecurityEventSpec
    status: SecurityEventStatus = Field(default_factory=SecurityEventStatus)

    def to_manifest(self) -> dict[str, Any]:
        """The object as the API server takes it (aliases, no unset fields)."""
        return to_stored(self)
