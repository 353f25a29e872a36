"""``amtd explain``: in-process through ``main([...])`` and as the installed console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from amtd_cli import main
from unit.samples import PHOENIX_AMTD, PHOENIX_DEPLOYMENT, load_phoenix_amtd

SAMPLE_REF = "demo/adaptivemovingtargetdefense-sample"
POD = "demo/nginx-7d9c4b5f6-k2m9x"
AMTD_SCRIPT = Path(sys.executable).parent / "amtd"


def write_yaml(path: Path, *documents: Any) -> str:
    """Write documents as one multi-document YAML file; return its path."""
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return str(path)


def security_event(rule: dict[str, str], targets: list[str] | None = None) -> dict[str, Any]:
    """A SecurityEvent document as an integrator writes it."""
    return {
        "apiVersion": "amtd.r6security.com/v1beta1",
        "kind": "SecurityEvent",
        "metadata": {"name": "sample-event"},
        "spec": {"targets": targets or [POD], "rule": rule, "description": "test"},
    }


@pytest.fixture
def event_file(tmp_path: Path) -> str:
    """The sample's SecurityEvent: {type: network-attack} on one nginx pod."""
    return write_yaml(tmp_path / "event.yaml", security_event({"type": "network-attack"}))


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    """Run ``amtd explain ... --json`` in-process; the parsed output."""
    assert main(["explain", *argv, "--json"]) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def test_event_on_the_phoenix_deployment_text(
    capsys: pytest.CaptureFixture[str], event_file: str
) -> None:
    argv = [
        "explain",
        "-f",
        str(PHOENIX_AMTD),
        "--event",
        event_file,
        "--pod",
        str(PHOENIX_DEPLOYMENT),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "event rule: {type=network-attack}"
    assert f"target {POD}" in out
    assert "pod template of Deployment demo/nginx in" in out
    assert f"covers  {SAMPLE_REF}: podSelector {{mtdSecured=true}} is in the pod's labels" in out
    assert f"  1  {SAMPLE_REF}#2  {{type=network-attack}} -> quarantine" in out
    assert f" 1*  {SAMPLE_REF}#0  {{type=default}} -> disable" in out
    assert (
        f"decision: Matched (BestMatch) -> quarantine: {SAMPLE_REF}#2 matches 1 key(s), the most"
        in out
    )


def test_event_on_the_phoenix_deployment_json(
    capsys: pytest.CaptureFixture[str], event_file: str
) -> None:
    data = run_json(
        capsys, "-f", str(PHOENIX_AMTD), "--event", event_file, "--pod", str(PHOENIX_DEPLOYMENT)
    )
    (target,) = data["targets"]
    assert target["target"] == POD
    assert target["labels"] == {"mtdSecured": "true", "app": "nginx"}
    assert [rule["score"] for rule in target["rules"]] == [1, None, 1, None, None]
    assert target["decision"]["winner"] == f"{SAMPLE_REF}#2"
    assert target["decision"]["action"] == "quarantine"


@pytest.mark.parametrize(
    ("rules", "winner", "reason"),
    [
        (["threatLevel=medium"], 4, "BestMatch"),
        (["type=filesystem-corruption", "threatLevel=medium", "source=falco"], 3, "BestMatch"),
        (["type=Terminal shell in container"], 0, "FallbackRule"),
    ],
)
def test_rule_with_namespace_and_labels(
    capsys: pytest.CaptureFixture[str], rules: list[str], winner: int, reason: str
) -> None:
    argv = ["-f", str(PHOENIX_AMTD), "-n", "demo", "-l", "mtdSecured=true,app=nginx"]
    data = run_json(capsys, *argv, *(arg for rule in rules for arg in ("--rule", rule)))
    (target,) = data["targets"]
    assert target["target"] == "demo/(pod)"
    assert target["decision"]["winner"] == f"{SAMPLE_REF}#{winner}"
    assert target["decision"]["reason"] == reason


def test_rule_with_pod_file_explains_each_workload(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(
        capsys, "-f", str(PHOENIX_AMTD), "--rule", "type=x", "--pod", str(PHOENIX_DEPLOYMENT)
    )
    assert [target["target"] for target in data["targets"]] == ["demo/nginx-*"]


def test_multi_document_files_unlabelled_pods_and_default_namespace(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    other = load_phoenix_amtd()
    other["metadata"] = {"name": "catch-all"}  # no namespace: kubectl would use "default"
    other["spec"]["podSelector"] = {}
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}}
    policies = write_yaml(tmp_path / "policies.yaml", namespace, load_phoenix_amtd(), other)
    targets = [POD, "default/web-1"]
    event = write_yaml(tmp_path / "event.yaml", security_event({"threatLevel": "medium"}, targets))
    data = run_json(capsys, "-f", policies, "--event", event, "-l", "mtdSecured=true")
    first, second = data["targets"]
    assert first["decision"]["winner"] == f"{SAMPLE_REF}#4"
    assert [p["policy"] for p in first["policies"]] == ["default/catch-all", SAMPLE_REF]
    assert second["decision"]["winner"] == "default/catch-all#4"
    assert second["labelsFrom"] == "given labels"


def test_unmatched_pod_is_explained(capsys: pytest.CaptureFixture[str], event_file: str) -> None:
    assert main(["explain", "-f", str(PHOENIX_AMTD), "--event", event_file]) == 0
    out = capsys.readouterr().out
    assert "labels {} (no labels given: none assumed)" in out
    assert "(no covering policy)" in out
    assert "decision: Unmatched (NoPolicyCovers): no policy in namespace 'demo'" in out


def explain_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run ``amtd explain`` expecting exit 2; the error line."""
    assert main(["explain", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err.strip()


def test_unreadable_and_invalid_files_name_file_and_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, event_file: str
) -> None:
    missing = str(tmp_path / "missing.yaml")
    assert explain_error(capsys, "-f", missing, "--event", event_file) == (
        f"amtd explain: {missing}: cannot read: No such file or directory"
    )
    broken = tmp_path / "broken.yaml"
    broken.write_text("spec: [unclosed\n")
    message = explain_error(capsys, "-f", str(broken), "--event", event_file)
    assert message.startswith(f"amtd explain: {broken}: not valid YAML:")
    assert "line" in message
    invalid = load_phoenix_amtd()
    invalid["spec"]["strategy"] = []
    path = write_yaml(tmp_path / "invalid.yaml", invalid)
    assert explain_error(capsys, "-f", path, "--event", event_file) == (
        f"amtd explain: {path} (document 1, AdaptiveMovingTargetDefense "
        "adaptivemovingtargetdefense-sample): spec.strategy: List should have at least 1 item "
        "after validation, not 0"
    )


def test_invalid_event_names_the_target(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    event = write_yaml(tmp_path / "e.yaml", security_event({"type": "x"}, ["/cart"]))
    assert explain_error(capsys, "-f", str(PHOENIX_AMTD), "--event", event) == (
        f"amtd explain: {event} (document 1, SecurityEvent sample-event): spec.targets: "
        "Value error, targets[0]: namespace is empty"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rule", "type", "-n", "demo"], "--rule: 'type' is not key=value"),
        (
            ["--rule", "type=x"],
            "--rule needs the pod: --namespace NS [--labels K=V,...] or --pod FILE",
        ),
        (
            ["--rule", "type=x", "-n", "Demo"],
            "--namespace: namespace 'Demo' is not a DNS-1123 label (a-z, 0-9, '-')",
        ),
        (["--rule", "type=x", "-n", "demo", "-l", "a=b,c"], "--labels: 'c' is not key=value"),
        (
            ["--rule", "type=x", "-n", "demo", "--pod", str(PHOENIX_DEPLOYMENT)],
            "give the pod either with --pod or with --namespace/--labels, not both",
        ),
    ],
)
def test_bad_options_are_named(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert explain_error(capsys, "-f", str(PHOENIX_AMTD), *argv) == f"amtd explain: {message}"


def test_event_with_namespace_and_files_without_objects(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, event_file: str
) -> None:
    assert explain_error(capsys, "-f", str(PHOENIX_AMTD), "--event", event_file, "-n", "demo") == (
        "amtd explain: --namespace goes with --rule; an event's targets name their namespace"
    )
    empty = write_yaml(tmp_path / "ns.yaml", {"kind": "Namespace", "metadata": {"name": "x"}})
    assert explain_error(capsys, "-f", empty, "--event", event_file) == (
        f"amtd explain: {empty}: no AdaptiveMovingTargetDefense in this file"
    )
    assert explain_error(capsys, "-f", str(PHOENIX_AMTD), "--event", str(PHOENIX_AMTD)) == (
        f"amtd explain: {PHOENIX_AMTD}: expected exactly one SecurityEvent, found 0"
    )
    service = write_yaml(tmp_path / "svc.yaml", {"kind": "Service", "metadata": {"name": "s"}})
    assert explain_error(
        capsys, "-f", str(PHOENIX_AMTD), "--event", event_file, "--pod", service
    ) == (
        f"amtd explain: {service} (document 1): kind 'Service' is neither a Pod nor a workload "
        "with a pod template"
    )


def test_missing_required_options_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["explain", "--rule", "type=x"])
    assert caught.value.code == 2
    assert "-f/--filename" in capsys.readouterr().err


def test_console_script_on_the_phoenix_fixtures(event_file: str) -> None:
    argv = ["explain", "-f", str(PHOENIX_AMTD), "--event", event_file]
    argv += ["--pod", str(PHOENIX_DEPLOYMENT), "--json"]
    result = subprocess.run(
        [str(AMTD_SCRIPT), *argv], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    (target,) = json.loads(result.stdout)["targets"]
    assert (target["target"], target["decision"]["winner"]) == (POD, f"{SAMPLE_REF}#2")


def test_console_script_reports_errors_with_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    argv = [str(AMTD_SCRIPT), "explain", "-f", str(missing), "--rule", "type=x", "-n", "demo"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2
    assert (
        result.stderr.strip() == f"amtd explain: {missing}: cannot read: No such file or directory"
    )
    assert result.stdout == ""
