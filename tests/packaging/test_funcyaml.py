"""Every func.yaml: valid for func (its JSON schema), deployable as documented, target present."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from amtd_packaging.validating import check_func_yaml, check_target, load_json, read_func_yaml
from amtd_stack.running.definitions import FunctionDefinition

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = load_json(Path(__file__).with_name("schemas") / "func_yaml-schema.json")
FUNC_YAMLS = sorted((ROOT / "functions").rglob("func.yaml"))
INGEST = {"ingest-falco", "ingest-kubearmor", "ingest-alertmanager"}
HEALTH = {"liveness": "/health/liveness", "readiness": "/health/readiness"}


def label(path: Path) -> str:
    """Test id: the folder under functions/."""
    return str(path.parent.relative_to(ROOT / "functions"))


@pytest.mark.parametrize("path", FUNC_YAMLS, ids=label)
def test_func_yaml_validates_against_funcs_schema(path: Path) -> None:
    assert check_func_yaml(read_func_yaml(path), SCHEMA, str(path)) == []


@pytest.mark.parametrize("path", FUNC_YAMLS, ids=label)
def test_func_yaml_deploys_as_documented(path: Path) -> None:
    spec = read_func_yaml(path)
    assert (spec["specVersion"], spec["runtime"], spec["namespace"]) == (
        "0.36.0",
        "python",
        "amtd-system",
    )
    assert spec["registry"]  # a placeholder; `make deploy REGISTRY=...` overrides it
    assert spec["build"] == {
        "builder": "pack",
        "buildEnvs": [{"name": "BP_CPYTHON_VERSION", "value": "3.11.*"}],
    }
    deploy = spec["deploy"]
    assert deploy["namespace"] == "amtd-system"
    assert deploy["serviceAccountName"] == spec["name"]
    assert deploy["healthEndpoints"] == HEALTH
    assert deploy["options"]["scale"]["min"] >= 1  # an attack is answered without a cold start
    assert deploy["options"]["resources"]["limits"]["memory"]


@pytest.mark.parametrize("path", FUNC_YAMLS, ids=label)
def test_ingest_token_comes_from_the_secret_and_only_for_ingest(path: Path) -> None:
    spec = read_func_yaml(path)
    envs = {env["name"]: env["value"] for env in spec["run"]["envs"]}
    if spec["name"] in INGEST:
        assert envs["INGEST_TOKEN"] == "{{ secret:amtd-ingest-token:token }}"
    else:
        assert "INGEST_TOKEN" not in envs
    assert not [v for v in envs.values() if "secret" in v.lower() and "{{" not in v]


@pytest.mark.parametrize("path", FUNC_YAMLS, ids=label)
def test_target_is_an_http_function_in_main_py(
    path: Path, functions: dict[str, FunctionDefinition]
) -> None:
    name = read_func_yaml(path)["name"]
    assert name in functions, f"{path.parent}/main.py does not exist yet"
    assert check_target(functions[name]) == []


def broken(change: str) -> dict[str, Any]:
    """The matcher's func.yaml with one mistake."""
    spec: dict[str, Any] = copy.deepcopy(read_func_yaml(ROOT / "functions/matcher/func.yaml"))
    if change == "misspelled":
        spec["deploy"]["serviceAcountName"] = spec["deploy"].pop("serviceAccountName")
    elif change == "metric":
        spec["deploy"]["options"]["scale"]["metric"] = "cpu"
    elif change == "created":
        del spec["created"]
    return spec


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ("misspelled", "'serviceAcountName' was unexpected"),
        ("metric", "'cpu' is not one of"),
        ("created", "'created' is a required property"),
    ],
)
def test_schema_check_catches_mistakes(change: str, words: str) -> None:
    (problem,) = check_func_yaml(broken(change), SCHEMA, "func.yaml")
    assert words in problem


def test_target_check_catches_a_wrong_target(functions: dict[str, FunctionDefinition]) -> None:
    matcher = functions["matcher"]
    renamed = FunctionDefinition(
        matcher.name, matcher.folder, "match_event", (), matcher.namespace, "matcher"
    )
    (problem,) = check_target(renamed)
    assert "'match_event' is not defined" in problem
