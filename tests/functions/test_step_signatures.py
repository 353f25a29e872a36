"""Only the matcher can make an executor act: steps carry its Ed25519 signature.

Over real HTTP-level requests to the in-process executor against the API stand-in: a status
write (which executors may make) never makes a step executable; a signed step altered in any
field, or signed by a key the executors were not given, is refused with 403 before anything is
read; a replayed signed step (the sweeper's re-request) acts once.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from amtd.decide.signing import sign_decisions
from amtd.kube.api import PODS, SECURITY_EVENTS
from amtd.model.actionevents import ActionRequest, ActionStep, SecurityEventRef
from amtd.model.securityevents import SecurityEventStatus
from amtd.model.signatures import export_public_pem, generate_signing_key, load_key_ring
from amtd.model.statuses import record_decisions
from support.builders import create_security_event
from support.executors import (
    create_decided_event,
    make_decision,
    only_execution,
    post_event,
    read_status,
)
from support.fixtures import connected_client_fixture
from support.signing import MATCHER_KEY, matcher_key_environment
from support.standins import Stand, connect, create_deployment

USER = "executor-delete"


client = connected_client_fixture("executors/delete", USER)


def reads_and_writes_by(stand: Stand, user: str) -> list[Any]:
    """Every API request ``user`` sent."""
    return [record for record in stand.server.requests if record.user == user]


def refused(reply: Any, error: str) -> None:
    """A 403 naming ``error``."""
    assert (reply.status_code, reply.get_json()["error"]) == (403, error), reply.data


def test_a_delete_decision_minted_in_the_status_by_another_executor_is_refused(
    stand: Stand, client: FlaskClient
) -> None:
    """The attack: executor-quarantine's identity writes a delete decision for a pod in a
    namespace with no AMTD into a SecurityEvent's status, then sends the action event."""
    victim, _ = create_deployment(stand.cluster, "shop", "web")  # no AMTD in shop
    target = f"shop/{victim['metadata']['name']}"
    created = create_security_event(stand.cluster, "sev-minted", targets=[target])
    ref = SecurityEventRef(name="sev-minted", uid=created["metadata"]["uid"],
                           generation=created["metadata"]["generation"])  # fmt: skip
    minted = make_decision(ref, target, victim["metadata"]["uid"], "delete", {})
    attacker = connect(stand.kubeconfig("executor-quarantine"))

    def mint(current: dict[str, Any]) -> dict[str, Any] | None:
        status = SecurityEventStatus.model_validate(current.get("status") or {})
        return record_decisions(status, ref.generation, [minted], [])

    attacker.mutate_status(SECURITY_EVENTS, "sev-minted", mint)  # its Role allows this write
    assert read_status(stand.cluster, "sev-minted").decisions == [minted]
    stand.server.clear_requests()

    reply = post_event(client, ActionRequest(security_event=ref, steps=[
        ActionStep.from_decision(minted)]))  # fmt: skip

    refused(reply, "Unsigned")
    assert stand.cluster.find(PODS, victim["metadata"]["name"], "shop") is not None
    assert reads_and_writes_by(stand, USER) == []  # refused before anything was read
    assert read_status(stand.cluster, "sev-minted").executions == []


def test_a_real_signature_copied_onto_a_minted_step_is_refused(
    stand: Stand, client: FlaskClient
) -> None:
    """A signature the matcher made for another SecurityEvent does not cover this one."""
    decided, victim = create_deployment(stand.cluster, "shop", "web")
    genuine = create_decided_event(stand.cluster, "sev-genuine", [decided], "delete")
    other = create_decided_event(stand.cluster, "sev-other", [victim], "delete")
    copied = other.steps[0].model_copy(update={"signature": genuine.steps[0].signature})

    refused(post_event(client, other.model_copy(update={"steps": [copied]})), "InvalidSignature")
    assert stand.cluster.find(PODS, victim["metadata"]["name"], "shop") is not None


@pytest.mark.parametrize("field", ["target", "action", "uid", "generation", "dry_run"])
def test_a_signed_step_altered_in_transit_is_refused(
    stand: Stand, client: FlaskClient, field: str
) -> None:
    decided, bystander = create_deployment(stand.cluster, "shop", "web")
    request = create_decided_event(stand.cluster, "sev-altered", [decided], "delete",
                                   dry_run=True)  # fmt: skip
    step, ref = request.steps[0], request.security_event
    changes: dict[str, Any] = {
        "target": {"target": f"shop/{bystander['metadata']['name']}"},
        "action": {"action": "quarantine"},
        "dry_run": {"dry_run": False},
    }
    if field in ("uid", "generation"):
        forged_ref = ref.model_copy(update={field: "other" if field == "uid" else 2})
        altered = request.model_copy(update={"security_event": forged_ref})
    else:
        altered = request.model_copy(update={"steps": [step.model_copy(update=changes[field])]})
    altered = altered.model_copy(update={"steps": [
        item.model_copy(update={"action": "delete"}) if field != "action" else item
        for item in altered.steps]})  # fmt: skip

    reply = post_event(client, altered)

    if field == "action":  # no delete step left for this executor: nothing to do
        assert reply.status_code == 204
    else:
        refused(reply, "InvalidSignature")
    assert stand.cluster.find(PODS, decided["metadata"]["name"], "shop") is not None
    assert stand.cluster.find(PODS, bystander["metadata"]["name"], "shop") is not None


def test_a_step_signed_with_an_unknown_key_is_refused(stand: Stand, client: FlaskClient) -> None:
    decided, _ = create_deployment(stand.cluster, "shop", "web")
    request = create_decided_event(stand.cluster, "sev-unknown-key", [decided], "delete")
    unsigned = request.steps[0].model_copy(update={"signature": None})
    stranger = generate_signing_key()
    (resigned,) = sign_decisions(stranger, request.security_event, [
        read_status(stand.cluster, "sev-unknown-key").decisions[0]])  # fmt: skip
    forged = unsigned.model_copy(update={"signature": resigned.signature})

    refused(post_event(client, request.model_copy(update={"steps": [forged]})),
            "UnknownSigningKey")  # fmt: skip
    assert stand.cluster.find(PODS, decided["metadata"]["name"], "shop") is not None


def test_without_trusted_keys_every_step_is_refused(
    stand: Stand, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    decided, _ = create_deployment(stand.cluster, "shop", "web")
    request = create_decided_event(stand.cluster, "sev-no-keys", [decided], "delete")
    monkeypatch.delenv("MATCHER_PUBLIC_KEYS")

    refused(post_event(client, request), "NoTrustedKeys")
    assert stand.cluster.find(PODS, decided["metadata"]["name"], "shop") is not None


def test_a_replayed_signed_step_acts_once(stand: Stand, client: FlaskClient) -> None:
    """The sweeper's re-request carries the recorded signature: the step is executed once."""
    decided, _ = create_deployment(stand.cluster, "shop", "web")
    request = create_decided_event(stand.cluster, "sev-replayed", [decided], "delete")

    first = only_execution(post_event(client, request))
    replayed = only_execution(post_event(client, request))

    assert (first["result"], first["reason"]) == ("Succeeded", "PodDeleted")
    assert replayed == first  # the recorded execution, not a second effect
    deletes = [r for r in reads_and_writes_by(stand, USER)
               if r.resource == "pods" and r.verb == "delete"]  # fmt: skip
    assert len(deletes) == 1
    assert len(read_status(stand.cluster, "sev-replayed").executions) == 1


def test_several_trusted_keys_allow_a_rotation(
    stand: Stand, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Old and new public keys side by side: steps signed by the old key still act."""
    decided, _ = create_deployment(stand.cluster, "shop", "web")
    request = create_decided_event(stand.cluster, "sev-rotated", [decided], "delete")
    new_ring = generate_signing_key()
    both = export_public_pem(new_ring) + matcher_key_environment()["MATCHER_PUBLIC_KEYS"]
    monkeypatch.setenv("MATCHER_PUBLIC_KEYS", both)
    assert set(load_key_ring(both)) == {new_ring.key_id, MATCHER_KEY.key_id}

    assert only_execution(post_event(client, request))["reason"] == "PodDeleted"
