"""``amtd explain``: which AMTD rule an event selects for a pod, and why.

Reads the files, builds the explanation with :mod:`amtd.decide.explaining` (pure) and renders it as
text or JSON. Unreadable or invalid input exits with 2 and a message naming the file and field.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError

from amtd.decide.explaining import (
    DEFAULT_NAMESPACE,
    Explanation,
    KnownPod,
    PodView,
    TargetExplanation,
    describe_known_pods,
    explain_event,
    read_pod_manifest,
    resolve_pods,
    to_data,
)
from amtd.model.policies import KIND as POLICY_KIND
from amtd.model.policies import Policy
from amtd.model.rules import format_rule
from amtd.model.securityevents import KIND as EVENT_KIND
from amtd.model.securityevents import SecurityEvent
from amtd.model.targets import check_namespace_name

Model = TypeVar("Model", Policy, SecurityEvent)

HELP = "explain which AMTD rule an event selects for a pod, and why"


class InputError(Exception):
    """Input that cannot be explained; the message names the file and the field."""


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``amtd explain``."""
    parser.description = "Explain the best match of an event against AMTD policies for a pod."
    parser.add_argument(
        "-f", "--filename", dest="policy_files", action="append", required=True, metavar="FILE",
        help="YAML with AdaptiveMovingTargetDefense objects (multi-document; repeatable)",
    )  # fmt: skip
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--event", metavar="FILE", help="a SecurityEvent YAML")
    source.add_argument(
        "--rule", action="append", metavar="KEY=VALUE", help="an event rule key (repeatable)"
    )
    parser.add_argument("-n", "--namespace", help="the pod's namespace (with --rule)")
    parser.add_argument("-l", "--labels", metavar="K=V,K=V", help="the pod's labels")
    parser.add_argument(
        "--pod", action="append", metavar="FILE",
        help="a Pod YAML, or a workload whose pod template stands for its pods (repeatable)",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    """Explain, print, and return the exit status (2 for unusable input)."""
    try:
        explanation = build_explanation(args)
    except InputError as error:
        print(f"amtd explain: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(to_data(explanation), indent=2))
    else:
        print(render_text(explanation))
    return 0


def build_explanation(args: argparse.Namespace) -> Explanation:
    """Read every input and explain the event on each target."""
    check_pod_options(args)
    policies = [policy for path in args.policy_files for policy in read_policies(path)]
    known = [pod for path in args.pod or [] for pod in read_pods(path)]
    labels = parse_pairs(args.labels.split(","), "--labels") if args.labels else None
    if args.event:
        event = read_event(args.event)
        pods = resolve_pods(event.spec.parsed_targets(), known, labels)
        return explain_event(policies, event.spec.rule, pods)
    rule = parse_pairs(args.rule, "--rule")
    if known:
        return explain_event(policies, rule, describe_known_pods(known))
    pod = PodView(f"{args.namespace}/(pod)", args.namespace, labels or {}, "given labels")
    return explain_event(policies, rule, [pod])


def check_pod_options(args: argparse.Namespace) -> None:
    """The pod comes from --pod files, or from --namespace/--labels; say which is missing."""
    if args.pod and (args.namespace or args.labels):
        raise InputError("give the pod either with --pod or with --namespace/--labels, not both")
    if args.event and args.namespace:
        raise InputError("--namespace goes with --rule; an event's targets name their namespace")
    if args.rule and not args.pod and not args.namespace:
        raise InputError("--rule needs the pod: --namespace NS [--labels K=V,...] or --pod FILE")
    if args.namespace:
        try:
            check_namespace_name(args.namespace)
        except ValueError as error:
            raise InputError(f"--namespace: {error}") from None


def parse_pairs(pairs: list[str], option: str) -> dict[str, str]:
    """``key=value`` items into a map; raise InputError naming the bad item."""
    result: dict[str, str] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key.strip():
            raise InputError(f"{option}: {pair!r} is not key=value")
        result[key.strip()] = value.strip()
    return result


def load_documents(path: str) -> list[tuple[int, dict[str, Any]]]:
    """The non-empty YAML documents of a file, numbered from 1; InputError when unusable."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        documents = list(yaml.safe_load_all(text))
    except OSError as error:
        raise InputError(f"{path}: cannot read: {error.strerror}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: not valid YAML: {error}") from None
    numbered = []
    for number, document in enumerate(documents, start=1):
        if document is None:
            continue
        if not isinstance(document, dict):
            raise InputError(f"{path} (document {number}): not an object")
        numbered.append((number, document))
    return numbered


def read_policies(path: str) -> list[Policy]:
    """The AMTDs of a file (other kinds are skipped); the namespace defaults to ``default``."""
    policies = []
    for number, document in load_documents(path):
        if document.get("kind") != POLICY_KIND:
            continue
        metadata = document.get("metadata")
        if isinstance(metadata, dict) and not metadata.get("namespace"):
            document = {**document, "metadata": {**metadata, "namespace": DEFAULT_NAMESPACE}}
        policies.append(validate(Policy, document, path, number))
    if not policies:
        raise InputError(f"{path}: no {POLICY_KIND} in this file")
    return policies


def read_event(path: str) -> SecurityEvent:
    """The one SecurityEvent of a file."""
    found = [(n, doc) for n, doc in load_documents(path) if doc.get("kind") == EVENT_KIND]
    if len(found) != 1:
        raise InputError(f"{path}: expected exactly one {EVENT_KIND}, found {len(found)}")
    number, document = found[0]
    return validate(SecurityEvent, document, path, number)


def read_pods(path: str) -> list[KnownPod]:
    """The pods (or pod templates) of a file."""
    pods = []
    for number, document in load_documents(path):
        if document.get("kind") == "Namespace":
            continue
        try:
            pods.append(read_pod_manifest(document, path))
        except ValueError as error:
            raise InputError(f"{path} (document {number}): {error}") from None
    if not pods:
        raise InputError(f"{path}: no Pod or workload in this file")
    return pods


def validate(model: type[Model], document: dict[str, Any], path: str, number: int) -> Model:
    """Validate a document; the error names the file, document, object and every bad field."""
    try:
        return model.model_validate(document)
    except ValidationError as error:
        name = (document.get("metadata") or {}).get("name", "?")
        problems = "; ".join(
            f"{'.'.join(map(str, item['loc'])) or '(object)'}: {item['msg']}"
            for item in error.errors()
        )
        raise InputError(
            f"{path} (document {number}, {document['kind']} {name}): {problems}"
        ) from None


def render_text(explanation: Explanation) -> str:
    """The explanation as an aligned, readable report."""
    lines = [f"event rule: {format_rule(explanation.event_rule)}"]
    for target in explanation.targets:
        lines += ["", *render_target(target)]
    return "\n".join(lines)


def render_target(target: TargetExplanation) -> list[str]:
    """One target: its labels, policy coverage, rule scores and the decision."""
    pod = target.pod
    lines = [
        f"target {pod.target}",
        f"  labels {format_rule(pod.labels)} ({pod.origin})",
        "  policies:",
    ]
    lines += [
        f"    {'covers ' if item.is_covering else 'skipped'} {item.policy}: {item.reason}"
        for item in target.coverage
    ] or ["    (none given)"]
    lines.append("  rules (score, * = type: default fallback; entry; rule -> action):")
    width = max((len(item.entry) for item in target.rules), default=0)
    for item in target.rules:
        score = "no" if item.score is None else f"{item.score}{'*' if item.is_fallback else ''}"
        why = f"  ({'; '.join(item.mismatches)})" if item.mismatches else ""
        rule = format_rule(item.rule)
        lines.append(f"    {score:>3}  {item.entry:<{width}}  {rule} -> {item.action}{why}")
    if not target.rules:
        lines.append("    (no covering policy)")
    verdict = target.verdict
    action = f" -> {verdict.action}" if verdict.action else ""
    lines.append(f"  decision: {verdict.outcome} ({verdict.reason}){action}: {verdict.summary}")
    return lines
