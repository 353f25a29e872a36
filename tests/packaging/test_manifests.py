"""The manifests in knative/, checked offline the way a cluster checks them at apply time.

Built-in kinds: kubernetes_validate (strict). Knative objects: the Knative CRD schemas AND the
webhook's rules (the local stack's checks). Our custom resources: our CRDs. Each check also has
a negative test proving it catches what it is there for.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from amtd_packaging.validating import (
    check_builtin_kinds,
    check_custom_resources,
    check_service_accounts,
    read_crd_schemas,
    read_schema_files,
)
from amtd_stack.errors import ManifestError
from amtd_stack.manifests import Manifest, load_manifests
from amtd_stack.running.definitions import FunctionDefinition
from amtd_stack.running.planning import plan_stack

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = Path(__file__).with_name("schemas")  # upstream schemas, copied (see its README)
EditDocuments = Callable[[Path, Callable[[list[dict[str, Any]]], None]], None]
KNATIVE_KINDS = {"Broker", "Trigger", "ApiServerSource", "PingSource", "SinkBinding"}
TOKEN_TEMPLATE = ROOT / "knative" / "ingest-token-secret.yaml"
NOTIFY_TEMPLATE = ROOT / "knative" / "notify-secret.yaml"
YAML_BLOCK = re.compile(r"```ya?ml\n(.*?)```", re.DOTALL)


def render_kustomization() -> list[dict[str, Any]]:
    """``kubectl kustomize knative/`` (kubectl 1.32 ships with the machine image)."""
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is needed to render knative/ (it is on the machine image)"
    result = subprocess.run(
        [kubectl, "kustomize", str(ROOT / "knative")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def identify(obj: dict[str, Any]) -> tuple[str, str, str]:
    """(kind, namespace, name) of an object."""
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace", ""), meta["name"]


def test_kubectl_kustomize_renders_what_the_stack_loads(manifests: list[Manifest]) -> None:
    rendered = {identify(obj) for obj in render_kustomization()}
    assert rendered == {identify(m.obj) for m in manifests}
    assert len(rendered) == len(manifests)


def test_every_manifest_file_is_in_the_kustomization(manifests: list[Manifest]) -> None:
    listed = {m.path.resolve() for m in manifests}
    files = {p.resolve() for p in (ROOT / "knative").rglob("*.yaml")}
    kustomizations = {p.resolve() for p in (ROOT / "knative").rglob("kustomization.yaml")}
    optional = {p.resolve() for p in (ROOT / "knative" / "monitoring").rglob("*.yaml")}  # 9.1
    assert files - listed - kustomizations - optional == {
        TOKEN_TEMPLATE.resolve(),
        NOTIFY_TEMPLATE.resolve(),
    }


def test_token_secret_is_a_template_outside_the_kustomization(manifests: list[Manifest]) -> None:
    (secret,) = yaml.safe_load_all(TOKEN_TEMPLATE.read_text())
    assert identify(secret) == ("Secret", "amtd-system", "amtd-ingest-token")
    assert secret["stringData"] == {"token": "REPLACE-WITH-A-RANDOM-TOKEN"}
    assert not [m for m in manifests if m.kind == "Secret"]  # an apply never resets a token
    assert check_builtin_kinds([Manifest(secret, TOKEN_TEMPLATE)]).problems == []


def test_notify_secret_template_holds_every_key_the_function_reads() -> None:
    (secret,) = yaml.safe_load_all(NOTIFY_TEMPLATE.read_text())
    assert identify(secret) == ("Secret", "amtd-system", "amtd-notify")
    assert secret["stringData"]["kind"] == "none"  # applied as it is: notifications off
    func = yaml.safe_load((ROOT / "functions" / "notify" / "func.yaml").read_text())
    keys = {
        match.group(1)
        for env in func["run"]["envs"]
        if (match := re.fullmatch(r"\{\{ secret:amtd-notify:(\w+) \}\}", str(env["value"])))
    }
    assert keys == set(secret["stringData"])  # a missing key would stop the pod from starting
    assert check_builtin_kinds([Manifest(secret, NOTIFY_TEMPLATE)]).problems == []


def test_builtin_kinds_are_valid_and_knative_kinds_not_counted(manifests: list[Manifest]) -> None:
    report = check_builtin_kinds(manifests)
    assert report.problems == []
    unknown_kinds = {label.split()[0] for label in report.unknown}
    assert unknown_kinds == KNATIVE_KINDS
    assert len(report.checked) + len(report.unknown) == len(manifests)
    checked_kinds = {label.split()[0] for label in report.checked}
    assert checked_kinds.isdisjoint(KNATIVE_KINDS)
    assert {"CustomResourceDefinition", "ServiceAccount", "ClusterRole", "Role"} <= checked_kinds


def test_builtin_check_catches_an_unknown_field_and_a_wrong_type(
    manifests: list[Manifest],
) -> None:
    account = next(m for m in manifests if m.kind == "ServiceAccount")
    role = next(m for m in manifests if m.kind == "ClusterRole")
    broken_role = copy.deepcopy(role.obj)
    broken_role["rules"][0]["verbs"] = "get"
    broken = [
        Manifest({**account.obj, "automountToken": True}, account.path),
        Manifest(broken_role, role.path),
    ]
    report = check_builtin_kinds(broken)
    assert len(report.problems) == 2
    assert "automountToken" in report.problems[0]
    assert "rules.0.verbs" in report.problems[1]


def knative_schemas() -> dict[tuple[str, str], Any]:
    """The Knative Eventing CRD schemas kept as data."""
    return read_schema_files(sorted((SCHEMAS / "knative-eventing").glob("*.yaml")))


def test_knative_objects_match_the_knative_crd_schemas(manifests: list[Manifest]) -> None:
    knative = [(m.obj, str(m.path)) for m in manifests if m.kind in KNATIVE_KINDS]
    report = check_custom_resources(knative, knative_schemas())
    assert report.problems == []
    assert report.unknown == []
    assert len(report.checked) == len(knative) >= 7


def test_knative_schema_check_catches_a_type_error(manifests: list[Manifest]) -> None:
    trigger = copy.deepcopy(next(m.obj for m in manifests if m.kind == "Trigger"))
    trigger["spec"]["broker"] = 5
    report = check_custom_resources([(trigger, "test")], knative_schemas())
    assert len(report.problems) == 1
    assert "spec.broker" in report.problems[0]


def example_files() -> list[Path]:
    """The Phoenix fixtures and the demo objects (examples/)."""
    phoenix = sorted((ROOT / "tests" / "unit" / "phoenix").glob("*.yaml"))
    return phoenix + sorted((ROOT / "examples").rglob("*.yaml"))


def example_objects() -> list[tuple[dict[str, Any], str]]:
    """Every object of the example files, with its file."""
    found = []
    for path in example_files():
        found += [(doc, str(path)) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


def custom_resource_examples() -> list[tuple[dict[str, Any], str]]:
    """Our kinds in the example files and in the YAML examples of README.md and docs/."""
    found = example_objects()
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for block in YAML_BLOCK.findall(path.read_text()):
            try:
                documents = [doc for doc in yaml.safe_load_all(block) if doc]
            except yaml.YAMLError:
                continue  # prose snippets with placeholders are not manifests
            found += [(doc, str(path)) for doc in documents if isinstance(doc, dict)]
    return [(doc, where) for doc, where in found if is_ours(doc)]


def is_ours(doc: dict[str, Any]) -> bool:
    """An object of our API group."""
    return str(doc.get("apiVersion", "")).startswith("amtd.r6security.com/")


def test_phoenix_fixtures_and_doc_examples_match_our_crds(manifests: list[Manifest]) -> None:
    examples = custom_resource_examples()
    report = check_custom_resources(examples, read_crd_schemas(m.obj for m in manifests))
    assert report.problems == []
    assert report.unknown == []
    origins = {Path(where).name for _, where in examples}
    assert {"amtd-sample.yaml", "README.md", "DEPLOY.md"} <= origins
    assert any("examples" in where for _, where in examples)


def test_built_in_example_objects_are_valid() -> None:
    objects = [Manifest(o, Path(w)) for o, w in example_objects() if not is_ours(o)]
    report = check_builtin_kinds(objects)
    assert report.problems == []
    assert report.unknown == []
    assert {"Namespace", "Deployment"} <= {label.split()[0] for label in report.checked}


def test_crd_check_catches_a_policy_without_pod_selector(manifests: list[Manifest]) -> None:
    policy, where = next(e for e in custom_resource_examples() if e[0]["kind"] != "SecurityEvent")
    broken = copy.deepcopy(policy)
    del broken["spec"]["podSelector"]
    report = check_custom_resources([(broken, where)], read_crd_schemas(m.obj for m in manifests))
    assert len(report.problems) == 1
    assert "podSelector" in report.problems[0]


def test_knative_webhook_rules_and_references_hold() -> None:
    plan = plan_stack(ROOT / "knative", ROOT / "functions")
    assert len(plan.triggers) >= 5
    assert [s.name for s in plan.apiserversources] == ["securityevents"]


def refusal(project: Path) -> ManifestError:
    """The stack's (= the webhook rules') refusal of a broken copy."""
    with pytest.raises(ManifestError) as caught:
        plan_stack(project / "knative", project / "functions")
    return caught.value


def edit_first_trigger(spec_change: Any) -> Any:
    """A document editor applying ``spec_change(spec)`` to the first Trigger."""

    def change(documents: list[dict[str, Any]]) -> None:
        spec_change(next(d for d in documents if d["kind"] == "Trigger")["spec"])

    return change


@pytest.mark.parametrize(
    ("spec_change", "field", "words"),
    [
        (
            lambda s: s["filters"].__setitem__(0, {"exact": {"type": "x"}, "prefix": {"id": "y"}}),
            "spec.filters[0]",
            "exactly one dialect",
        ),
        (
            lambda s: s["filters"].__setitem__(0, {"exact": {}}),
            "spec.filters[0].exact",
            "at least one attribute",
        ),
        (
            lambda s: s["filters"].__setitem__(0, {"exact": {"type": "x", "id": ""}}),
            "spec.filters[0].exact.id",
            "must not be empty",
        ),
        (
            lambda s: s["filters"].__setitem__(0, {"exact": {"Type": "x"}}),
            "spec.filters[0].exact.Type",
            "must match",
        ),
        (
            lambda s: s["filters"].__setitem__(0, {"suffix": {"amtd_delete": "true"}}),
            "spec.filters[0].suffix.amtd_delete",
            "must match",
        ),
        (
            lambda s: s["subscriber"]["ref"].__setitem__("name", "matchr"),
            "spec.subscriber",
            "no function named 'matchr'",
        ),
        (
            lambda s: s.__setitem__("delivery", {"backoffDelay": "0.5s"}),
            "spec.delivery.backoffDelay",
            "ISO-8601",
        ),
    ],
    ids=[
        "dialect-mix",
        "no-pair",
        "empty-value",
        "capital-attribute",
        "underscore",
        "missing-fn",
        "duration",
    ],
)
def test_webhook_rule_checks_catch_broken_triggers(
    project_copy: Path, edit_documents: EditDocuments, spec_change: Any, field: str, words: str
) -> None:
    edit_documents(project_copy / "knative" / "triggers.yaml", edit_first_trigger(spec_change))
    error = refusal(project_copy)
    assert error.field == field
    assert words in error.problem
    assert error.path is not None and error.path.endswith("triggers.yaml")


def test_webhook_rule_checks_catch_a_bad_source_mode(
    project_copy: Path, edit_documents: EditDocuments
) -> None:
    def change(documents: list[dict[str, Any]]) -> None:
        documents[0]["spec"]["mode"] = "Resources"

    edit_documents(project_copy / "knative" / "sources.yaml", change)
    error = refusal(project_copy)
    assert error.field == "spec.mode"
    assert "Reference or Resource" in error.problem


def test_dead_letter_sink_must_be_a_function(
    project_copy: Path, edit_documents: EditDocuments
) -> None:
    def change(documents: list[dict[str, Any]]) -> None:
        documents[0]["spec"]["delivery"]["deadLetterSink"]["ref"]["name"] = "dead-letter"

    edit_documents(project_copy / "knative" / "broker.yaml", change)
    error = refusal(project_copy)
    assert "deadLetterSink" in error.field
    assert "no function named 'dead-letter'" in error.problem


def test_every_identity_has_its_service_account(
    manifests: list[Manifest], functions: dict[str, FunctionDefinition]
) -> None:
    assert check_service_accounts(manifests, functions.values()) == []


def test_service_account_check_catches_a_missing_account(
    project_copy: Path, edit_documents: EditDocuments, functions: dict[str, FunctionDefinition]
) -> None:
    def change(documents: list[dict[str, Any]]) -> None:
        documents[0]["spec"]["serviceAccountName"] = "securityevent-source"

    edit_documents(project_copy / "knative" / "sources.yaml", change)
    problems = check_service_accounts(load_manifests(project_copy / "knative"), [])
    assert len(problems) == 1
    assert "amtd-system/securityevent-source" in problems[0]
    renamed = [
        FunctionDefinition(f.name, f.folder, f.target, f.envs, f.namespace, "nobody")
        for f in functions.values()
    ][:1]
    (problem,) = check_service_accounts(load_manifests(ROOT / "knative"), renamed)
    assert "deploy.serviceAccountName" in problem
