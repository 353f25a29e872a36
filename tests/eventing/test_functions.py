"""The function registry (func.yaml + main.py) and environment resolution."""

from __future__ import annotations

from pathlib import Path

import pytest

from amtd_stack.errors import ManifestError, StackError
from amtd_stack.running.definitions import (
    FunctionDefinition,
    build_environment,
    discover_functions,
    read_secret_variables,
    resolve_value,
    withhold_secrets,
)


def make_function(folder: Path, func_yaml: str, with_main: bool = True) -> None:
    """Write a function folder."""
    folder.mkdir(parents=True)
    (folder / "func.yaml").write_text(func_yaml)
    if with_main:
        (folder / "main.py").write_text("def handle(request):\n    return ''\n")


def test_registry_finds_nested_functions_by_func_yaml_name(tmp_path: Path) -> None:
    make_function(
        tmp_path / "matcher", "name: matcher\nrun: {envs: [{name: FUNCTION_TARGET, value: m}]}\n"
    )
    make_function(
        tmp_path / "executors" / "delete",
        "name: executor-delete\nrun:\n  envs:\n    - {name: FUNCTION_TARGET, value: d}\n"
        "    - {name: LOG_LEVEL, value: DEBUG}\n"
        "deploy: {namespace: ops, serviceAccountName: deleter}\n",
    )
    make_function(tmp_path / "draft", "name: draft\n", with_main=False)
    found = discover_functions(tmp_path)
    assert set(found) == {"matcher", "executor-delete"}
    delete = found["executor-delete"]
    assert (delete.target, delete.namespace, delete.service_account) == ("d", "ops", "deleter")
    assert delete.envs == (("LOG_LEVEL", "DEBUG"),)
    assert found["matcher"].service_account == "matcher"
    assert found["matcher"].namespace == "amtd-system"


def test_registry_refuses_missing_target_and_duplicates(tmp_path: Path) -> None:
    make_function(tmp_path / "a", "name: a\n")
    with pytest.raises(ManifestError, match="FUNCTION_TARGET"):
        discover_functions(tmp_path)
    (tmp_path / "a" / "func.yaml").write_text(
        "name: a\nrun: {envs: [{name: FUNCTION_TARGET, value: x}]}\n"
    )
    make_function(tmp_path / "b", "name: a\nrun: {envs: [{name: FUNCTION_TARGET, value: x}]}\n")
    with pytest.raises(ManifestError, match="also in"):
        discover_functions(tmp_path)


def test_templates_resolve_secrets_and_environment() -> None:
    def secrets(namespace: str, name: str, key: str) -> str:
        return f"{namespace}/{name}/{key}"

    assert resolve_value("{{ secret:auth:token }}", "ns", secrets, {}) == "ns/auth/token"
    assert resolve_value("{{env:HOME}}", "ns", secrets, {"HOME": "/h"}) == "/h"
    assert resolve_value("plain {{ x }}", "ns", secrets, {}) == "plain {{ x }}"
    with pytest.raises(StackError, match="NOPE"):
        resolve_value("{{ env:NOPE }}", "ns", secrets, {})
    with pytest.raises(StackError, match="unsupported"):
        resolve_value("{{ configMap:a:b }}", "ns", secrets, {})


def test_environment_layers_base_func_yaml_then_overrides() -> None:
    definition = FunctionDefinition(
        "f", Path("."), "t", (("A", "from-yaml"), ("B", "{{ env:SRC }}")), "ns", "f"
    )
    environment = build_environment(
        definition, lambda *a: "", {"A": "override"}, {"SRC": "base", "PATH": "/bin"}
    )
    assert environment == {"SRC": "base", "PATH": "/bin", "A": "override", "B": "base"}


def test_overridden_variables_are_not_resolved() -> None:
    definition = FunctionDefinition(
        "f", Path("."), "t", (("TOKEN", "{{ secret:gone:token }}"),), "ns", "f"
    )

    def no_secret(namespace: str, name: str, key: str) -> str:
        raise StackError(f"Secret {namespace}/{name} cannot be read: 404")

    with pytest.raises(StackError, match="function f, env TOKEN"):
        build_environment(definition, no_secret, {}, {})
    assert build_environment(definition, no_secret, {"TOKEN": "x"}, {}) == {"TOKEN": "x"}


def test_a_concurrency_limit_becomes_the_functions_threads(tmp_path: Path) -> None:
    envs = "run: {envs: [{name: FUNCTION_TARGET, value: s}]}\n"
    limits = "deploy: {options: {resources: {limits: {concurrency: %s}}}}\n"
    make_function(tmp_path / "one", "name: one\n" + envs + limits % "1")
    make_function(tmp_path / "free", "name: free\n" + envs)
    found = discover_functions(tmp_path)
    assert build_environment(found["one"], lambda *a: "", {}, {"THREADS": "8"}) == {"THREADS": "1"}
    assert "THREADS" not in build_environment(found["free"], lambda *a: "", {}, {})
    make_function(tmp_path / "bad", "name: bad\n" + envs + limits % "0")
    with pytest.raises(ManifestError, match="must be a positive integer"):
        discover_functions(tmp_path)


def test_the_sweeper_serves_one_request_at_a_time() -> None:
    functions = Path(__file__).resolve().parents[2] / "functions"
    sweeper = discover_functions(functions)["sweeper"]
    assert build_environment(sweeper, lambda *a: "", {}, {})["THREADS"] == "1"


def test_only_functions_naming_a_secret_variable_keep_it() -> None:
    functions = discover_functions(Path(__file__).resolve().parents[2] / "functions")
    secret_variables = read_secret_variables(functions.values())
    assert "INGEST_TOKEN" in secret_variables
    shared = {"INGEST_TOKEN": "t", "PATH": "/bin"}
    kept = {name for name in functions if "INGEST_TOKEN" in withhold_secrets(
        shared, functions[name], secret_variables)}  # fmt: skip
    assert kept == {"ingest-falco", "ingest-kubearmor", "ingest-alertmanager"}
    assert withhold_secrets(shared, functions["matcher"], secret_variables) == {"PATH": "/bin"}
