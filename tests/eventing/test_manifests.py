"""Reading manifests (kustomization resources + namespace) and planning the stack from them."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from amtd_stack.errors import ManifestError
from amtd_stack.manifests import load_manifests
from amtd_stack.running.planning import plan_stack

ROOT = Path(__file__).resolve().parents[2]
FUNCTION_ENVS = "run: {envs: [{name: FUNCTION_TARGET, value: h}]}\n"
BROKER = """
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default, namespace: amtd-system}
spec:
  delivery: {retry: 1, backoffDelay: PT0.01S, deadLetterSink: {uri: "http://127.0.0.1:9/dls"}}
"""


def write(directory: Path, files: dict[str, str]) -> Path:
    """Write dedented files under ``directory``; returns it."""
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return directory


def trigger(
    name: str = "t", subscriber: str = "echo", filters: str = "[{exact: {type: a}}]"
) -> str:
    """A Trigger manifest for broker ``default``."""
    return f"""
    apiVersion: eventing.knative.dev/v1
    kind: Trigger
    metadata: {{name: {name}, namespace: amtd-system}}
    spec:
      broker: default
      filters: {filters}
      subscriber: {{ref: {{apiVersion: serving.knative.dev/v1, kind: Service, name: {subscriber}}}}}
    """


def project(tmp_path: Path, manifests: str, functions: tuple[str, ...] = ("echo",)) -> Path:
    """A tmp project root: knative/ with one resources file, functions/<name>/ stubs."""
    write(
        tmp_path / "knative",
        {"kustomization.yaml": "resources: [all.yaml]\n", "all.yaml": manifests},
    )
    for name in functions:
        write(
            tmp_path / "functions" / name,
            {
                "func.yaml": f"name: {name}\n" + FUNCTION_ENVS,
                "main.py": "def h(request):\n    return ''\n",
            },
        )
    return tmp_path


def test_resources_files_and_directories_with_namespace_override(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "kustomization.yaml": "namespace: team\nresources: [objects.yaml, sub]\n",
            "objects.yaml": """
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: a, namespace: elsewhere}
            ---
            apiVersion: v1
            kind: Namespace
            metadata: {name: team}
            ---
            apiVersion: apiextensions.k8s.io/v1
            kind: CustomResourceDefinition
            metadata: {name: things.example.com}
            spec: {group: example.com, scope: Cluster, names: {kind: Thing, plural: things}}
        """,
            "sub/kustomization.yaml": "resources: [thing.yaml]\n",
            "sub/thing.yaml": """
            apiVersion: example.com/v1
            kind: Thing
            metadata: {name: t}
            ---
            apiVersion: v1
            kind: Secret
            metadata: {name: s}
        """,
        },
    )
    placed = {m.name: m for m in load_manifests(tmp_path)}
    assert placed["a"].namespace == "team"
    assert placed["s"].namespace == "team"
    assert placed["team"].namespace == ""
    assert placed["things.example.com"].namespace == ""
    assert placed["t"].namespace == ""  # cluster-scoped by its CRD
    assert placed["s"].path == tmp_path / "sub" / "thing.yaml"


@pytest.mark.parametrize(
    ("files", "field", "file"),
    [
        (
            {"kustomization.yaml": "resources: [a.yaml]\npatches: []\n", "a.yaml": ""},
            "patches",
            "kustomization.yaml",
        ),
        ({"kustomization.yaml": "namePrefix: x-\n"}, "namePrefix", "kustomization.yaml"),
        (
            {"kustomization.yaml": "configMapGenerator: []\n"},
            "configMapGenerator",
            "kustomization.yaml",
        ),
        (
            {"kustomization.yaml": "resources: [missing.yaml]\n"},
            "resources[0]",
            "kustomization.yaml",
        ),
        (
            {"kustomization.yaml": "resources: [https://example.com/x.yaml]\n"},
            "resources[0]",
            "kustomization.yaml",
        ),
        (
            {
                "kustomization.yaml": "resources: [a.yaml]\n",
                "a.yaml": "kind: ConfigMap\nmetadata: {name: a}\n",
            },
            "apiVersion",
            "a.yaml",
        ),
        ({"kustomization.yaml": "resources: [a.yaml]\n", "a.yaml": "a: [b\n"}, "(yaml)", "a.yaml"),
        (
            {
                "kustomization.yaml": "resources: [a.yaml, b.yaml]\n",
                "a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: n}\n",
                "b.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: n}\n",
            },
            "metadata.name",
            "b.yaml",
        ),
    ],
)
def test_unsupported_or_broken_kustomizations_are_refused(
    tmp_path: Path, files: dict[str, str], field: str, file: str
) -> None:
    with pytest.raises(ManifestError) as caught:
        load_manifests(write(tmp_path, files))
    assert caught.value.field == field
    assert caught.value.path == str(tmp_path / file)


def test_plan_splits_eventing_from_applied_objects(tmp_path: Path) -> None:
    namespace = "apiVersion: v1\nkind: Namespace\nmetadata: {name: amtd-system}\n"
    plan = plan_stack(
        project(tmp_path, namespace + "---" + BROKER + "---" + trigger()) / "knative",
        tmp_path / "functions",
    )
    assert [m.kind for m in plan.objects] == ["Namespace"]
    assert [b.name for b in plan.brokers] == ["default"]
    assert [t.key for t in plan.triggers] == ["amtd-system/t"]
    assert set(plan.functions) == {"echo"}


@pytest.mark.parametrize(
    ("extra", "field", "words"),
    [
        (trigger(subscriber="nobody"), "spec.subscriber", ["Trigger amtd-system/t", "nobody"]),
        (
            trigger(filters="[{cesql: \"type = 'a'\"}]"),
            "spec.filters[0].cesql",
            ["Trigger amtd-system/t"],
        ),
        (
            trigger(filters="[{exact: {type: a}, prefix: {type: b}}]"),
            "spec.filters[0]",
            ["one dialect"],
        ),
        (trigger().replace("broker: default", "broker: other"), "spec.broker", ["no Broker"]),
        (
            "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: s}\n",
            "kind",
            ["not run by the local stack"],
        ),
    ],
)
def test_plan_refuses_naming_file_object_and_field(
    tmp_path: Path, extra: str, field: str, words: list[str]
) -> None:
    root = project(tmp_path, BROKER + "---" + textwrap.dedent(extra))
    with pytest.raises(ManifestError) as caught:
        plan_stack(root / "knative", root / "functions")
    assert caught.value.field == field
    assert caught.value.path == str(root / "knative" / "all.yaml")
    assert all(word in str(caught.value) for word in words)


def test_broker_dead_letter_sink_must_exist(tmp_path: Path) -> None:
    broker = BROKER.replace(
        '{uri: "http://127.0.0.1:9/dls"}',
        "{ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: gone}}",
    )
    root = project(tmp_path, broker + "---" + textwrap.dedent(trigger()))
    with pytest.raises(ManifestError, match="gone"):
        plan_stack(root / "knative", root / "functions")


def test_committed_manifests_load_and_parse() -> None:
    manifests = load_manifests(ROOT / "knative")
    kinds = {m.kind for m in manifests}
    assert {"Broker", "Trigger", "CustomResourceDefinition"} <= kinds
    from amtd_stack.running.planning import StackPlan, classify

    plan = StackPlan()
    for manifest in manifests:
        classify(plan, manifest)  # every filter and delivery passes the webhook rules
    assert plan.brokers and plan.triggers
