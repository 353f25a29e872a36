"""Planning the stack from the committed files, before anything starts (no side effects).

Reads knative/ and functions/, parses every eventing object, and refuses to start on anything
the stack cannot honour: a bad filter or delivery, an unknown Service or Broker reference, a
Knative kind the stack does not run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from amtd_stack.errors import ManifestError
from amtd_stack.eventing.apiserversources import (
    ApiServerSourceDefinition,
    is_apiserversource,
    parse_apiserversource,
)
from amtd_stack.eventing.deliveries import Destination
from amtd_stack.eventing.pingsources import PingSourceDefinition, is_pingsource, parse_pingsource
from amtd_stack.eventing.sinkbindings import (
    SinkBindingDefinition,
    is_sinkbinding,
    parse_sinkbinding,
)
from amtd_stack.eventing.triggers import (
    BROKER,
    BrokerDefinition,
    TriggerDefinition,
    check_trigger_brokers,
    is_broker,
    is_trigger,
    parse_broker,
    parse_trigger,
)
from amtd_stack.manifests import Manifest, load_manifests
from amtd_stack.running.definitions import SERVICE, FunctionDefinition, discover_functions

KNATIVE_GROUP_SUFFIX = ".knative.dev/"


@dataclass
class StackPlan:
    """Everything the stack will run, parsed and cross-checked."""

    objects: list[Manifest] = field(default_factory=list)  # applied to the API stand-in
    brokers: list[BrokerDefinition] = field(default_factory=list)
    triggers: list[TriggerDefinition] = field(default_factory=list)
    apiserversources: list[ApiServerSourceDefinition] = field(default_factory=list)
    pingsources: list[PingSourceDefinition] = field(default_factory=list)
    sinkbindings: list[SinkBindingDefinition] = field(default_factory=list)
    functions: dict[str, FunctionDefinition] = field(default_factory=dict)


def plan_stack(manifests_dir: Path, functions_dir: Path) -> StackPlan:
    """Parse and check the manifests and functions; ManifestError on the first refusal."""
    plan = StackPlan(functions=discover_functions(functions_dir))
    for manifest in load_manifests(manifests_dir):
        classify(plan, manifest)
    check_trigger_brokers(plan.triggers, plan.brokers)
    check_references(plan)
    return plan


def classify(plan: StackPlan, manifest: Manifest) -> None:
    """Put one manifest where it belongs: eventing (run here) or the API stand-in (applied)."""
    if is_broker(manifest):
        plan.brokers.append(parse_broker(manifest))
    elif is_trigger(manifest):
        plan.triggers.append(parse_trigger(manifest))
    elif is_apiserversource(manifest):
        plan.apiserversources.append(parse_apiserversource(manifest))
    elif is_pingsource(manifest):
        plan.pingsources.append(parse_pingsource(manifest))
    elif is_sinkbinding(manifest):
        plan.sinkbindings.append(parse_sinkbinding(manifest))
    elif KNATIVE_GROUP_SUFFIX in manifest.api_version:
        raise manifest.refuse("kind", "this Knative kind is not run by the local stack")
    else:
        plan.objects.append(manifest)


def check_references(plan: StackPlan) -> None:
    """Every subscriber, dead-letter sink and source sink names something that exists."""
    brokers = {(b.namespace, b.name): b for b in plan.brokers}
    for trigger in plan.triggers:
        owner = f"Trigger {trigger.key}"
        check_destination(trigger.subscriber, plan, owner, trigger.path, "spec.subscriber")
        broker = brokers[(trigger.namespace, trigger.broker)]
        holder = trigger if trigger.delivery is not None else broker
        sink = holder.delivery.dead_letter_sink if holder.delivery else None
        if sink is not None:
            where = "spec.delivery.deadLetterSink"
            check_destination(sink, plan, owner, holder.path, where)
    sources: list[ApiServerSourceDefinition | PingSourceDefinition | SinkBindingDefinition] = [
        *plan.apiserversources,
        *plan.pingsources,
        *plan.sinkbindings,
    ]
    for source in sources:
        owner = f"source {source.namespace}/{source.name}"
        check_destination(source.sink, plan, owner, source.path, "spec.sink")
    for binding in plan.sinkbindings:
        subject = Destination(api_version=SERVICE[0], kind=SERVICE[1], name=binding.subject)
        owner = f"SinkBinding {binding.namespace}/{binding.name}"
        check_destination(subject, plan, owner, binding.path, "spec.subject")


def check_destination(
    destination: Destination, plan: StackPlan, owner: str, path: Path, where: str
) -> None:
    """A reference must be a known function (Service) or Broker; URIs pass."""
    if not destination.is_ref:
        return
    kind = (destination.api_version, destination.kind)
    if kind == SERVICE and destination.name in plan.functions:
        return
    brokers = {(b.namespace, b.name) for b in plan.brokers}
    if kind == BROKER and (destination.namespace, destination.name) in brokers:
        return
    if kind == SERVICE:
        problem = f"{owner}: no function named {destination.name!r} (functions/*/func.yaml)"
    elif kind == BROKER:
        problem = f"{owner}: no Broker {destination.namespace}/{destination.name}"
    else:
        problem = f"{owner}: references {destination.describe()}, only Service or Broker"
    raise ManifestError(where, problem, path)


def resolve_destination(
    destination: Destination,
    function_urls: Mapping[str, str],
    broker_url: Callable[[str, str], str],
) -> str:
    """The URL a checked destination points at (pure)."""
    if not destination.is_ref:
        return destination.uri
    if (destination.api_version, destination.kind) == BROKER:
        base = broker_url(destination.namespace, destination.name)
    else:
        base = function_urls[destination.name]
    if destination.uri:
        return f"{base.rstrip('/')}/{destination.uri.lstrip('/')}"
    return base
