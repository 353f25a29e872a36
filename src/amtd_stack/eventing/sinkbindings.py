"""SinkBinding: give a function its sink as ``K_SINK`` (and ``K_CE_OVERRIDES``), like Knative.

Knative's webhook injects the resolved sink URL into the subject's containers (Knative docs,
"SinkBinding"); namespaces labelled ``bindings.knative.dev/exclude`` opt out there.
Here the subject must be one of the functions (a Knative Service by name: the stack runs no
other workloads) and the variables are set in its process environment at start. Parsing is pure.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from amtd_stack.eventing.deliveries import Destination
from amtd_stack.eventing.sources import SOURCES_V1, parse_extensions, parse_sink
from amtd_stack.manifests import Manifest, namespace_of
from amtd_stack.running.definitions import SERVICE


@dataclass(frozen=True)
class SinkBindingDefinition:
    """A SinkBinding as the stack runs it: which function gets which sink."""

    namespace: str
    name: str
    subject: str  # the function (Knative Service) name
    sink: Destination
    extensions: Mapping[str, str]
    path: Path


def is_sinkbinding(manifest: Manifest) -> bool:
    """True for a sources.knative.dev/v1 SinkBinding."""
    return manifest.api_version == SOURCES_V1 and manifest.kind == "SinkBinding"


def parse_sinkbinding(manifest: Manifest) -> SinkBindingDefinition:
    """A SinkBindingDefinition; ManifestError naming the file and field."""
    subject = manifest.spec.get("subject")
    if not isinstance(subject, Mapping):
        raise manifest.refuse("spec.subject", "is required")
    if (subject.get("apiVersion"), subject.get("kind")) != SERVICE or not subject.get("name"):
        raise manifest.refuse(
            "spec.subject", "the local stack binds only Knative Services (functions) by name"
        )
    namespace = namespace_of(manifest)
    if str(subject.get("namespace") or namespace) != namespace:
        raise manifest.refuse("spec.subject.namespace", "must be the SinkBinding's namespace")
    return SinkBindingDefinition(
        namespace=namespace,
        name=manifest.name,
        subject=str(subject["name"]),
        sink=parse_sink(manifest),
        extensions=parse_extensions(manifest),
        path=manifest.path,
    )


def sink_environment(url: str, extensions: Mapping[str, str]) -> dict[str, str]:
    """The variables Knative injects: ``K_SINK``, and ``K_CE_OVERRIDES`` when there are any."""
    environment = {"K_SINK": url}
    if extensions:
        environment["K_CE_OVERRIDES"] = json.dumps({"extensions": dict(extensions)})
    return environment
