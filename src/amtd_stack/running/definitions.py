"""The function registry: folders with func.yaml + main.py, read into FunctionDefinitions.

Pure (files in, values out): the packaging reads functions the same way the local stack runs them,
without importing anything that starts processes or servers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from amtd_stack.errors import ManifestError, StackError

DEFAULT_NAMESPACE = "amtd-system"
SERVICE = ("serving.knative.dev/v1", "Service")  # how manifests address a function
TEMPLATE = re.compile(r"^\{\{\s*(?P<kind>\w+)\s*:\s*(?P<args>[^}]*?)\s*\}\}$")

SecretLookup = Callable[[str, str, str], str]  # (namespace, name, key) -> value


@dataclass(frozen=True)
class FunctionDefinition:
    """One function: its Service name, folder, target, raw run.envs, identity and concurrency."""

    name: str
    folder: Path
    target: str
    envs: tuple[tuple[str, str], ...]
    namespace: str
    service_account: str
    concurrency: int | None = None  # deploy.options.resources.limits.concurrency


def discover_functions(functions_dir: Path) -> dict[str, FunctionDefinition]:
    """Every folder under ``functions_dir`` holding func.yaml and main.py, by func.yaml name."""
    found: dict[str, FunctionDefinition] = {}
    for func_yaml in sorted(functions_dir.rglob("func.yaml")):
        if not (func_yaml.parent / "main.py").is_file():
            continue
        definition = read_function(func_yaml)
        if definition.name in found:
            other = found[definition.name].folder / "func.yaml"
            raise ManifestError("name", f"function {definition.name!r} also in {other}", func_yaml)
        found[definition.name] = definition
    return found


def read_function(func_yaml: Path) -> FunctionDefinition:
    """Parse one func.yaml; ManifestError naming the file and field."""
    spec = yaml.safe_load(func_yaml.read_text(encoding="utf-8"))
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise ManifestError("name", "func.yaml needs a name", func_yaml)
    envs = read_envs(spec, func_yaml)
    target = dict(envs).get("FUNCTION_TARGET")
    if not target:
        raise ManifestError(
            "run.envs", "needs FUNCTION_TARGET (the functions-framework target)", func_yaml
        )
    deploy = spec.get("deploy") or {}
    return FunctionDefinition(
        name=spec["name"],
        folder=func_yaml.parent,
        target=target,
        envs=tuple((k, v) for k, v in envs if k != "FUNCTION_TARGET"),
        namespace=str(deploy.get("namespace") or DEFAULT_NAMESPACE),
        service_account=str(deploy.get("serviceAccountName") or spec["name"]),
        concurrency=read_concurrency(deploy, func_yaml),
    )


def read_concurrency(deploy: Mapping[str, Any], func_yaml: Path) -> int | None:
    """The containerConcurrency func.yaml asks for (None: unlimited), a positive integer."""
    limits = ((deploy.get("options") or {}).get("resources") or {}).get("limits") or {}
    value = limits.get("concurrency")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        field = "deploy.options.resources.limits.concurrency"
        raise ManifestError(field, f"must be a positive integer, not {value!r}", func_yaml)
    return value


def read_envs(spec: Mapping[str, Any], func_yaml: Path) -> list[tuple[str, str]]:
    """``run.envs`` as (name, value) pairs."""
    entries = (spec.get("run") or {}).get("envs") or []
    pairs = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ManifestError(f"run.envs[{index}].name", "is required", func_yaml)
        pairs.append((entry["name"], str(entry.get("value") or "")))
    return pairs


def resolve_value(
    value: str, namespace: str, secrets: SecretLookup, environ: Mapping[str, str],
    config_maps: SecretLookup | None = None,
) -> str:  # fmt: skip
    """Expand ``{{ secret:NAME:KEY }}``, ``{{ configMap:NAME:KEY }}`` (with ``config_maps``)
    and ``{{ env:VAR }}``; other text is literal."""
    match = TEMPLATE.match(value)
    if match is None:
        return value
    kind, args = match["kind"], match["args"].split(":")
    if kind == "secret" and len(args) == 2:
        return secrets(namespace, args[0].strip(), args[1].strip())
    if kind == "configMap" and len(args) == 2 and config_maps is not None:
        return config_maps(namespace, args[0].strip(), args[1].strip())
    if kind == "env" and len(args) == 1:
        if args[0].strip() not in environ:
            raise StackError(f"environment variable {args[0].strip()} is not set")
        return environ[args[0].strip()]
    raise StackError(f"unsupported func.yaml value template {value!r}")


def is_secret_reference(value: str) -> bool:
    """Whether a run.envs value is a ``{{ secret:NAME:KEY }}`` template."""
    match = TEMPLATE.match(value)
    return match is not None and match["kind"] == "secret"


def read_secret_variables(definitions: Iterable[FunctionDefinition]) -> frozenset[str]:
    """The variables some func.yaml fills from a Secret (``INGEST_TOKEN``...)."""
    return frozenset(
        name for each in definitions for name, value in each.envs if is_secret_reference(value)
    )


def withhold_secrets(
    variables: Mapping[str, str], definition: FunctionDefinition, secret_variables: frozenset[str]
) -> dict[str, str]:
    """``variables`` without the Secret-filled ones ``definition``'s func.yaml does not name.

    On a cluster a function sees only the Secrets its own func.yaml references; locally a shared
    override or the parent's environment must not hand them to every other function.
    """
    own = {name for name, _ in definition.envs}
    return {k: v for k, v in variables.items() if k not in secret_variables or k in own}


def build_environment(
    definition: FunctionDefinition,
    secrets: SecretLookup,
    overrides: Mapping[str, str],
    base: Mapping[str, str],
    config_maps: SecretLookup | None = None,
) -> dict[str, str]:
    """The process environment: base, resolved run.envs, then overrides.

    An overridden variable is not resolved, so an override can stand in for a missing Secret.
    A func.yaml concurrency limit becomes functions-framework's THREADS (gunicorn threads), so
    locally the function serves no more requests at once than Knative would send it.
    """
    environment = dict(base)
    if definition.concurrency is not None:
        environment["THREADS"] = str(definition.concurrency)
    for name, value in definition.envs:
        if name in overrides:
            continue
        try:
            environment[name] = resolve_value(
                value, definition.namespace, secrets, base, config_maps
            )
        except StackError as error:
            raise StackError(f"function {definition.name}, env {name}: {error}") from error
    environment.update(overrides)
    return environment
