"""Warm policy indexes: kept per namespace while the AMTD watch reports no change there, against
the API server stand-in over HTTP (its real watch), and the matcher deciding with them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from amtd.decide import indexing
from amtd.decide.indexing import PolicyIndexes
from amtd.decide.matching import choose_best_match
from amtd.decide.triaging import list_policies
from amtd.kube import api as kubeapi
from amtd.kube.api import POLICIES, Cluster
from support.builders import create_security_event, make_policy
from support.functions import load_function_client
from support.matching import decide
from support.standins import list_pods, open_phoenix_sample
from support.waiting import wait_for

POD_LABELS = {"app": "nginx", "mtdSecured": "true"}


@pytest.fixture
def cluster(apiserver: Any, kubeconfig: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    """Phoenix's sample installed (both pods running); the matcher connects as ``matcher``."""
    with open_phoenix_sample(apiserver, kubeconfig, "matcher", monkeypatch) as own:
        yield own


@pytest.fixture
def indexes(cluster: Cluster) -> Iterator[PolicyIndexes]:
    """Indexes whose watch session on ``cluster`` is open."""
    warm = PolicyIndexes(list_policies)
    warm.start_watching(lambda: cluster)
    wait_for(lambda: warm.watched is cluster, "the AMTD watch to open")
    yield warm
    warm.stop()


def policy_lists(apiserver: Any) -> list[str]:
    """Namespaces of the AMTD lists the stand-in served since the last clear."""
    return [r.namespace for r in apiserver.requests if r.resource == POLICIES.plural and
            r.verb == "list"]  # fmt: skip


def test_a_namespace_index_is_listed_once_while_nothing_changes(
    indexes: PolicyIndexes, cluster: Cluster, apiserver: Any
) -> None:
    apiserver.clear_requests()
    first = indexes.index_for(cluster, ["demo"])
    assert indexes.index_for(cluster, ["demo"]) is first
    assert policy_lists(apiserver) == ["demo"]


def test_a_change_in_the_namespace_drops_its_index_and_only_its_own(
    indexes: PolicyIndexes, cluster: Cluster
) -> None:
    demo = indexes.index_for(cluster, ["demo"])
    shop = indexes.index_for(cluster, ["shop"])
    rule = {"type": "crypto-miner"}
    cluster.create(POLICIES, make_policy("demo", [(rule, "quarantine")], name="late"), "demo")
    wait_for(lambda: "demo" not in indexes.indexes, "the watch to report the new AMTD")
    assert indexes.index_for(cluster, ["shop"]) is shop
    fresh = indexes.index_for(cluster, ["demo"])
    assert fresh is not demo
    choice = choose_best_match(fresh, "demo", POD_LABELS, {"type": "crypto-miner"})
    assert choice.winner is not None and choice.winner.policy.metadata.name == "late"


def test_nothing_is_kept_without_a_watch_or_for_another_connection(
    cluster: Cluster, apiserver: Any, kubeconfig: Path
) -> None:
    cold = PolicyIndexes(list_policies)  # never started: every index is listed afresh
    assert cold.index_for(cluster, ["demo"]) is not cold.index_for(cluster, ["demo"])
    warm = PolicyIndexes(list_policies)
    warm.start_watching(lambda: cluster)
    wait_for(lambda: warm.watched is cluster, "the AMTD watch to open")
    other = Cluster.connect(str(kubeconfig))
    assert warm.index_for(other, ["demo"]) is not warm.index_for(other, ["demo"])
    warm.stop()
    warm.close_session()
    assert warm.index_for(cluster, ["demo"]) is not warm.index_for(cluster, ["demo"])


def test_the_warm_matcher_lists_policies_once_and_sees_a_new_rule(
    cluster: Cluster, apiserver: Any
) -> None:
    matcher: FlaskClient = load_function_client("matcher")
    target = f"demo/{list_pods(cluster, 'demo', 'app=nginx')[0]['metadata']['name']}"

    def decide_one(rule_type: str) -> str:
        obj = create_security_event(
            cluster, targets=[target], rule_type=rule_type, source="FalcoIntegrator"
        )
        code, _, data = decide(matcher, obj)
        assert code == 200, data
        return str(data["steps"][0]["action"])

    assert decide_one("network-attack") == "quarantine"  # starts the watch
    warm = indexing.warm_policy_indexes(list_policies, kubeapi.shared_cluster)
    wait_for(lambda: warm.watched is kubeapi.shared_cluster(), "the matcher's AMTD watch")
    decide_one("network-attack")  # lists demo once more, now kept
    apiserver.clear_requests()
    assert decide_one("network-attack") == "quarantine"
    assert policy_lists(apiserver) == []
    rule = {"type": "network-attack", "source": "FalcoIntegrator"}
    cluster.create(POLICIES, make_policy("demo", [(rule, "delete")], name="sharper"), "demo")
    wait_for(lambda: "demo" not in warm.indexes, "the watch to report the new AMTD")
    assert decide_one("network-attack") == "delete"
