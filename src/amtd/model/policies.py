"""Policies: the AdaptiveMovingTargetDefense (AMTD) resource, namespaced.

Phoenix's shape unchanged (``podSelector``, ordered ``strategy`` of ``{rule, action}``), extended
compatibly with ``dryRun`` and ``allowStandalonePods``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from amtd.model.actions import Action
from amtd.model.rules import Rule

KIND = "AdaptiveMovingTargetDefense"
PLURAL = "adaptivemovingtargetdefenses"


def clean_rule(value: Any) -> dict[str, str]:
    """Validate a rule map; keys with an empty value count as unset (Go writes ``""``)."""
    if not isinstance(value, dict):
        raise ValueError(
            f"a rule is a map of string keys to string values, got {type(value).__name__}"
        )
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"rule key {key!r} must be a non-empty string")
        if not isinstance(item, str):
            raise ValueError(f"rule value for {key!r} must be a string, got {type(item).__name__}")
    return {key: item for key, item in value.items() if item != ""}


class StrategyEntry(BaseModel):
    """One ``{rule, action}`` pair of a policy's ordered strategy."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    rule: dict[str, str]
    action: Action

    _clean_rule = field_validator("rule", mode="before")(clean_rule)


class PolicySpec(BaseModel):
    """``spec`` of an AMTD."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    pod_selector: dict[str, str] = Field(alias="podSelector")
    strategy: list[StrategyEntry] = Field(min_length=1)
    dry_run: bool = Field(default=False, alias="dryRun")
    allow_standalone_pods: bool = Field(default=False, alias="allowStandalonePods")


class ObjectMeta(BaseModel):
    """The part of ``metadata`` the core reads."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)
    name: str
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None
    resource_version: str | None = Field(default=None, alias="resourceVersion")
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class CustomObject(BaseModel):
    """What every ``amtd.r6security.com/v1beta1`` object has; a subclass fixes ``kind``."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)
    api_version: Literal["amtd.r6security.com/v1beta1"] = Field(
        alias="apiVersion", default="amtd.r6security.com/v1beta1"
    )
    kind: str
    metadata: ObjectMeta


class Policy(CustomObject):
    """An AdaptiveMovingTargetDefense object."""

    kind: Literal["AdaptiveMovingTargetDefense"] = "AdaptiveMovingTargetDefense"
    spec: PolicySpec

    @property
    def ref(self) -> str:
        """``namespace/name``, how decisions name the policy."""
        return f"{self.metadata.namespace or ''}/{self.metadata.name}"

    def rules(self) -> list[Rule]:
        """The rules of the strategy, in order."""
        return [entry.rule for entry in self.spec.strategy]
