"""Actions: what a policy rule asks for, in Phoenix's shapes.

The current form is an object with exactly one key (``{delete: {}}``); Phoenix v0.1 used a plain
string (``action: delete``), which is read as the same thing.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ActionKind = Literal["delete", "quarantine", "disable", "debugger", "customAction"]
ACTION_KINDS: tuple[ActionKind, ...] = (
    "delete",
    "quarantine",
    "disable",
    "debugger",
    "customAction",
)
EXECUTABLE_KINDS: tuple[ActionKind, ...] = ("delete", "quarantine", "debugger", "customAction")
# Phoenix v0.1's string form knew only these (the CRD's `pattern` says the same).
STRING_KINDS: tuple[ActionKind, ...] = ("delete", "quarantine", "disable")


class DeleteParameters(BaseModel):
    """``delete``: the pod is deleted and its workload replaces it.

    ``eviction: true`` (ours, not Phoenix's) evicts it instead: PodDisruptionBudgets are honoured.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    grace_period_seconds: int | None = Field(default=None, ge=0, alias="gracePeriodSeconds")
    eviction: bool | None = None


class EmptyParameters(BaseModel):
    """``quarantine`` and ``disable`` take no parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DebuggerParameters(BaseModel):
    """``debugger``: an ephemeral container attached to the pod (Phoenix's shape)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str | None = None
    image: str
    terminal: bool | None = None


class CustomActionParameters(BaseModel):
    """``customAction``: an EphemeralContainer-like spec; every field is kept, not just four."""

    model_config = ConfigDict(extra="allow", frozen=True)
    name: str
    image: str | None = None


class Action(BaseModel):
    """One action; exactly one of its keys is set."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    delete: DeleteParameters | None = None
    quarantine: EmptyParameters | None = None
    disable: EmptyParameters | None = None
    debugger: DebuggerParameters | None = None
    custom_action: CustomActionParameters | None = Field(default=None, alias="customAction")

    @model_validator(mode="before")
    @classmethod
    def read_legacy_string(cls, value: Any) -> Any:
        """Phoenix v0.1 wrote ``action: delete``; read it as ``{delete: {}}``."""
        if isinstance(value, str):
            if value not in STRING_KINDS:
                raise ValueError(
                    f"unknown action {value!r}; as a string it is one of {', '.join(STRING_KINDS)}"
                    f" (the others need an object, e.g. {{debugger: {{image: busybox}}}})"
                )
            return {value: {}}
        if isinstance(value, dict):
            check_action_keys(value)
        return value

    @property
    def kind(self) -> ActionKind:
        """The action's key, e.g. ``delete``."""
        for kind in ACTION_KINDS:
            if self.parameters_of(kind) is not None:
                return kind
        raise AssertionError("validated actions always have one key")

    def parameters_of(self, kind: ActionKind) -> BaseModel | None:
        """The parameters object stored under ``kind``, if that is this action."""
        field = "custom_action" if kind == "customAction" else kind
        value: BaseModel | None = getattr(self, field)
        return value

    @property
    def parameters(self) -> dict[str, Any]:
        """The action's parameters as they appear in YAML."""
        chosen = self.parameters_of(self.kind)
        return chosen.model_dump(by_alias=True, exclude_none=True) if chosen else {}


def check_action_keys(value: dict[Any, Any]) -> None:
    """Raise ValueError unless the action object names exactly one known action with an object.

    YAML ``delete:`` with nothing after it is null; the API server prunes that and then rejects
    the empty action, so it is refused here too, with the fix in the message.
    """
    if len(value) != 1:
        keys = ", ".join(sorted(map(str, value))) or "none"
        raise ValueError(
            f"an action names exactly one of {', '.join(ACTION_KINDS)}; this one names {keys}"
        )
    ((key, parameters),) = value.items()
    if key not in ACTION_KINDS and key != "custom_action":
        raise ValueError(f"unknown action {key!r}; expected one of {', '.join(ACTION_KINDS)}")
    if parameters is None:
        raise ValueError(
            f"action {key} needs an object ({{}} when it takes no parameters), not null"
        )


def is_executable(kind: str) -> bool:
    """Whether an executor performs this action (the others are recorded, not executed)."""
    return kind in EXECUTABLE_KINDS
