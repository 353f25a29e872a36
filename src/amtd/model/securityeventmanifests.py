"""SecurityEvent manifests: the one builder of the object an integrator creates. Pure, no pydantic.

Ingest and the timer both create SecurityEvents; both build them here, so the shape Phoenix's
integrators write (``spec.targets``, ``spec.rule``, ``spec.description``) is known in one place.
Reading one back is :mod:`amtd.model.securityevents` (pydantic), which these functions never load
for their cold start.
"""

from __future__ import annotations

from collections.abc import Mapping

from amtd import API_VERSION, SECURITY_EVENT_KIND
from amtd.model.objects import Object
from amtd.model.targets import Target

INGESTED_BY_LABEL = "amtd.r6security.com/ingested-by"


def build_security_event_manifest(
    name: str, target: Target, rule: Mapping[str, str], description: str, *,
    ingested_by: str, annotations: Mapping[str, str] | None = None,
) -> Object:  # fmt: skip
    """A SecurityEvent about one pod, labelled with the function that made it."""
    metadata: Object = {"name": name, "labels": {INGESTED_BY_LABEL: ingested_by}}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {
        "apiVersion": API_VERSION,
        "kind": SECURITY_EVENT_KIND,
        "metadata": metadata,
        "spec": {"targets": [str(target)], "rule": dict(rule), "description": description},
    }
