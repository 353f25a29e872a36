"""The local stack hands a Secret-filled variable only to the functions whose func.yaml names it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from amtd_stack.running.stack import ALL_FUNCTIONS, Stack
from support.functions import ROOT

INGESTERS = {"ingest-falco", "ingest-kubearmor", "ingest-alertmanager"}


def read_process_environment(pid: int) -> dict[str, str]:
    """What the running process was really started with (not what the stack meant to pass)."""
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.decode().partition("=") for item in raw.split(b"\0") if item)
    return {name: value for name, _, value in pairs}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The project's stack as `amtd up` starts it: the token given to all, and in the parent."""
    overrides = {ALL_FUNCTIONS: {"INGEST_TOKEN": "shared-token"}}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INGEST_TOKEN", "parent-token")
        with Stack(ROOT, tmp_path_factory.mktemp("state"), env_overrides=overrides) as running:
            yield running


def test_only_the_ingest_functions_get_the_ingest_token(stack: Stack) -> None:
    environments = {
        name: read_process_environment(process.pid or 0)
        for name, process in stack.functions.items()
    }
    assert {"matcher", "executor-delete", "executor-quarantine"} <= set(environments)
    holders = {name for name, env in environments.items() if "INGEST_TOKEN" in env}
    assert holders == INGESTERS
    assert {environments[name]["INGEST_TOKEN"] for name in INGESTERS} == {"shared-token"}
