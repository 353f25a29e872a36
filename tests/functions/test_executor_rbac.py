"""Least privilege: each executor's RBAC rules equal the API calls it really makes.

The executors run as real functions-framework processes, each with its own ServiceAccount token
on a stand-in that enforces the committed RBAC (as the local stack runs it), through a full
scenario: a call its rules do not grant is a 403 and fails the scenario. The stand-in's request
log then says exactly which (group, resource, subresource, verb) each one used;
knative/rbac/executor-*.yaml must grant those and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import kubernetes_validate
import pytest
import requests
import yaml

from amtd.act.quarantine.quarantining import build_network_policy, make_quarantine_name
from amtd.kube.api import NETWORK_POLICIES, PODS
from support.executors import create_decided_event, event_of, read_status
from support.functions import FUNCTIONS, ROOT, serve_function
from support.standins import Stand, create_deployment, start_stand

Call = tuple[str, str, str, str]
RBAC = ROOT / "knative" / "rbac"
EXECUTORS = {
    "executor-delete": "executors/delete",
    "executor-quarantine": "executors/quarantine",
    "executor-debug": "executors/debug",
}


def load_documents(name: str) -> list[dict[str, Any]]:
    """The YAML documents of knative/rbac/<name>.yaml."""
    return [doc for doc in yaml.safe_load_all((RBAC / f"{name}.yaml").read_text()) if doc]


def granted_calls(documents: list[dict[str, Any]]) -> set[Call]:
    """(group, resource, subresource, verb) for every rule of the (Cluster)Roles."""
    calls: set[Call] = set()
    for doc in documents:
        if doc["kind"] not in ("Role", "ClusterRole"):
            continue
        for rule in doc["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    plural, _, sub = resource.partition("/")
                    calls |= {(group, plural, sub, verb) for verb in rule["verbs"]}
    return calls


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, set[Call]]]:
    """Run the full scenario once; the calls each executor made."""
    folder = tmp_path_factory.mktemp("rbac")
    with start_stand(folder, rbac=True) as stand:  # enforced: a missing rule fails the run
        run_scenario(stand)
        yield {user: stand.calls_by(user) for user in EXECUTORS}


def run_scenario(stand: Stand) -> None:
    """Delete one pod, evict another and quarantine a third, each through its executor's own
    process."""
    victim, suspect = create_deployment(stand.cluster, "shop", "web")
    (evicted,) = create_deployment(stand.cluster, "shop", "api", replicas=1)
    (debugged,) = create_deployment(stand.cluster, "shop", "db", replicas=1)
    debugger = {"parameters": {"image": "busybox", "terminal": True}}
    eviction = {"parameters": {"eviction": True}}
    requests_by_user = {
        "executor-delete": [
            create_decided_event(stand.cluster, "sev-del", [victim], "delete"),
            create_decided_event(stand.cluster, "sev-evict", [evicted], "delete", **eviction),
        ],
        "executor-quarantine": [
            create_decided_event(stand.cluster, "sev-quar", [suspect], "quarantine")
        ],
        "executor-debug": [
            create_decided_event(stand.cluster, "sev-dbg", [debugged], "debugger", **debugger)
        ],
    }
    squat_on_quarantine_name(stand, suspect)  # so replacing a policy not ours is exercised too
    for user, folder in EXECUTORS.items():
        env = {"KUBECONFIG": str(stand.kubeconfig(user)), "KUBERNETES_SERVICE_HOST": ""}
        with serve_function(folder, env) as url:
            for request in requests_by_user[user]:
                headers, body = event_of(request)
                reply = requests.post(url, headers=headers, data=body, timeout=60)
                assert reply.status_code == 200, reply.text
    assert stand.cluster.find(PODS, victim["metadata"]["name"], "shop") is None
    assert stand.cluster.find(PODS, evicted["metadata"]["name"], "shop") is None
    assert len(stand.cluster.list(NETWORK_POLICIES, "shop")) == 1
    for name in ("sev-del", "sev-evict", "sev-quar", "sev-dbg"):
        assert [item.result for item in read_status(stand.cluster, name).executions] == [
            "Succeeded"
        ]


def squat_on_quarantine_name(stand: Stand, pod: dict[str, Any]) -> None:
    """An allow-all NetworkPolicy under the name the pod's quarantine will use."""
    meta = pod["metadata"]
    name = make_quarantine_name(meta["namespace"], meta["name"], meta["uid"])
    policy = build_network_policy(pod, name, "")
    policy["spec"] = {**policy["spec"], "ingress": [{}], "egress": [{}]}
    stand.cluster.create(NETWORK_POLICIES, policy, meta["namespace"])


@pytest.mark.parametrize("user", sorted(EXECUTORS))
def test_rules_equal_the_calls_made(observed: dict[str, set[Call]], user: str) -> None:
    granted = granted_calls(load_documents(user))

    assert observed[user], "the scenario made no calls as this identity"
    assert observed[user] - granted == set(), "calls the rules do not allow"
    assert granted - observed[user] == set(), "rules no call needs"


@pytest.mark.parametrize("user", sorted(EXECUTORS))
def test_the_service_account_is_bound_and_used(user: str) -> None:
    documents = load_documents(user)
    by_kind = {doc["kind"]: doc for doc in documents}

    account = by_kind["ServiceAccount"]["metadata"]
    assert (account["name"], account["namespace"]) == (user, "amtd-system")
    binding = by_kind["ClusterRoleBinding"]
    assert binding["roleRef"]["name"] == by_kind["ClusterRole"]["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": user, "namespace": "amtd-system"}
    ]
    func = yaml.safe_load((FUNCTIONS / EXECUTORS[user] / "func.yaml").read_text())
    assert func["deploy"]["serviceAccountName"] == user


@pytest.mark.parametrize("user", sorted(EXECUTORS))
def test_nothing_is_granted_on_policies_or_by_wildcard(user: str) -> None:
    granted = granted_calls(load_documents(user))

    assert not {call for call in granted if call[1] == "adaptivemovingtargetdefenses"}
    assert not {call for call in granted if "*" in call}


def test_the_manifests_are_valid_kubernetes() -> None:
    for user in EXECUTORS:
        for doc in load_documents(user):
            kubernetes_validate.validate(doc, "1.33", strict=True)
