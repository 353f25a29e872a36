"""Broker and Trigger definitions read from manifests and checked like the Knative webhook."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from amtd_stack.errors import ManifestError
from amtd_stack.eventing.deliveries import (
    DeliverySpec,
    Destination,
    parse_delivery,
    parse_destination,
)
from amtd_stack.eventing.filtering import Filter, compile_trigger_filter
from amtd_stack.manifests import Manifest, namespace_of

EVENTING_V1 = "eventing.knative.dev/v1"
BROKER = (EVENTING_V1, "Broker")
TRIGGER = (EVENTING_V1, "Trigger")


@dataclass(frozen=True)
class BrokerDefinition:
    """A Broker: where it lives and its default delivery."""

    namespace: str
    name: str
    delivery: DeliverySpec | None
    path: Path


@dataclass(frozen=True)
class TriggerDefinition:
    """A Trigger: its broker, compiled filter, subscriber and own delivery (if any)."""

    namespace: str
    name: str
    broker: str
    filter: Filter
    subscriber: Destination
    delivery: DeliverySpec | None
    path: Path

    @property
    def key(self) -> str:
        """``namespace/name``."""
        return f"{self.namespace}/{self.name}"


def is_broker(manifest: Manifest) -> bool:
    """True for an eventing.knative.dev/v1 Broker."""
    return (manifest.api_version, manifest.kind) == BROKER


def is_trigger(manifest: Manifest) -> bool:
    """True for an eventing.knative.dev/v1 Trigger."""
    return (manifest.api_version, manifest.kind) == TRIGGER


def parse_broker(manifest: Manifest) -> BrokerDefinition:
    """A BrokerDefinition; ManifestError naming the file and field on bad delivery."""
    namespace = namespace_of(manifest)
    try:
        delivery = parse_delivery(manifest.spec.get("delivery"), namespace, "spec.delivery")
    except ManifestError as error:
        raise manifest.refuse(error.field, error.problem) from error
    return BrokerDefinition(namespace, manifest.name, delivery, manifest.path)


def parse_trigger(manifest: Manifest) -> TriggerDefinition:
    """A TriggerDefinition; ManifestError naming the file and field on any refused field."""
    namespace = namespace_of(manifest)
    spec = manifest.spec
    try:
        broker = spec.get("broker")
        if not isinstance(broker, str) or not broker:
            raise ManifestError("spec.broker", "is required")
        return TriggerDefinition(
            namespace=namespace,
            name=manifest.name,
            broker=broker,
            filter=compile_trigger_filter(spec),
            subscriber=parse_destination(spec.get("subscriber"), namespace, "spec.subscriber"),
            delivery=parse_delivery(spec.get("delivery"), namespace, "spec.delivery"),
            path=manifest.path,
        )
    except ManifestError as error:
        raise manifest.refuse(error.field, error.problem) from error


def check_trigger_brokers(
    triggers: Iterable[TriggerDefinition], brokers: Iterable[BrokerDefinition]
) -> None:
    """Every Trigger names a Broker defined in its namespace."""
    known = {(b.namespace, b.name) for b in brokers}
    for trigger in triggers:
        if (trigger.namespace, trigger.broker) not in known:
            problem = f"Trigger {trigger.key}: no Broker {trigger.namespace}/{trigger.broker}"
            raise ManifestError("spec.broker", problem, trigger.path)
