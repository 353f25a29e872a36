"""The matcher's signing key is the matcher's alone; executors are given the public keys."""

from __future__ import annotations

from pathlib import Path

import yaml

from support.functions import ROOT

SECRET_REFERENCE = "{{ secret:matcher-signing-key:private.pem }}"
PUBLIC_REFERENCE = "{{ configMap:matcher-public-keys:public.pem }}"


def read_envs(func_yaml: Path) -> dict[str, str]:
    """run.envs of one func.yaml."""
    spec = yaml.safe_load(func_yaml.read_text())
    return {entry["name"]: str(entry["value"]) for entry in spec["run"].get("envs") or []}


def test_only_the_matcher_references_the_signing_key() -> None:
    referencing = {
        path.parent.relative_to(ROOT / "functions").as_posix()
        for path in (ROOT / "functions").rglob("func.yaml")
        if "matcher-signing-key" in path.read_text()
    }
    assert referencing == {"matcher"}
    assert read_envs(ROOT / "functions/matcher/func.yaml")["MATCHER_SIGNING_KEY"] == (
        SECRET_REFERENCE
    )


def test_the_executors_are_given_the_public_keys() -> None:
    for name in ("delete", "quarantine"):
        envs = read_envs(ROOT / "functions/executors" / name / "func.yaml")
        assert envs["MATCHER_PUBLIC_KEYS"] == PUBLIC_REFERENCE


def test_no_service_account_may_read_secrets() -> None:
    for path in sorted((ROOT / "knative" / "rbac").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["kind"] in ("Role", "ClusterRole"):
                for rule in doc.get("rules", []):
                    assert "secrets" not in rule.get("resources", []), (path.name, rule)
                    assert "*" not in rule.get("resources", []), (path.name, rule)


def test_the_crd_keeps_a_decisions_signature() -> None:
    crd = yaml.safe_load((ROOT / "knative/crds/securityevents.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    decision = schema["properties"]["status"]["properties"]["decisions"]["items"]
    assert set(decision["properties"]["signature"]["properties"]) == {"keyId", "value"}
