"""The stack supervises its function processes: a crashed one is reported and restarted on the
same port, nothing is lost or done twice meanwhile, a crash loop degrades the stack (``amtd up``
exits 3), and no process is left behind: every child is reaped, no old process group survives.
"""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import threading
from pathlib import Path

import pytest

from amtd.kube.api import Cluster
from amtd.model.actionevents import ACTION_REQUESTED
from amtd_stack.apiserver.faults import RequestRecord
from amtd_stack.eventing.delivering import DeliveryAttempt
from amtd_stack.running.cli import EXIT_DEGRADED, build_parser, run_until
from amtd_stack.running.processes import FunctionProcess
from amtd_stack.running.stack import Stack
from amtd_stack.running.supervising import (
    Death,
    Degradation,
    RestartDecision,
    RestartPolicy,
    decide_restart,
    describe_exit,
)
from amtd_stack.serving import is_port_open
from support.processes import group_members, list_processes, stop_process, zombie_children
from support.stacks import AMTD_CLI
from support.standins import deploy_defended_workload
from support.waiting import wait_for

from .chains import Audit, alerts_about, count_effects, post_storm, run_fault_stack, settle
from .conftest import report_counts

STORM_PODS = 30


def test_the_restart_policy_backs_off_and_gives_up_past_its_bound() -> None:
    policy = RestartPolicy(max_restarts=3, window_s=60, initial_backoff_s=0.5, max_backoff_s=1.5)
    assert decide_restart(policy, [], 100.0) == RestartDecision(0, 0.5)
    assert decide_restart(policy, [90.0], 100.0) == RestartDecision(1, 1.0)
    assert decide_restart(policy, [85.0, 90.0], 100.0) == RestartDecision(2, 1.5)  # capped
    assert decide_restart(policy, [80.0, 85.0, 90.0], 100.0).is_degraded
    # a rolling window: restarts 60 s ago or more no longer count
    assert decide_restart(policy, [40.0, 85.0, 90.0], 100.0) == RestartDecision(2, 1.5)
    assert decide_restart(policy, [10.0, 20.0, 30.0], 100.0) == RestartDecision(0, 0.5)
    assert not decide_restart(policy, [40.0, 85.0, 90.0], 100.0).is_degraded


def test_an_exit_is_told_by_its_code_or_signal() -> None:
    assert describe_exit(3) == "exit code 3"
    assert describe_exit(0) == "exit code 0"
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL"
    assert describe_exit(-200) == "killed by signal 200"


def live_members(processes: list[FunctionProcess], *pids: int) -> list[object]:
    """Live processes in the groups of these function processes (and of ``pids``).

    An orphaned worker that init has not reaped yet is a zombie of init's, not ours.
    """
    groups = [*pids, *(p.pid for p in processes if p.pid is not None)]
    return [member for member in group_members(groups) if member.state != "Z"]


def test_a_function_killed_mid_storm_is_restarted_and_every_action_happens_once(
    tmp_path: Path,
) -> None:
    with run_fault_stack(tmp_path / "state") as stack:
        cluster = Cluster.connect(str(stack.kubeconfig))
        pods = deploy_defended_workload(cluster, "crash", "web", STORM_PODS, "delete")
        alerts = alerts_about(pods, "crash")
        victim = stack.functions["executor-delete"]
        first_pid = victim.pid
        assert first_pid is not None
        post_storm(stack, alerts[: STORM_PODS // 2])
        done = wait_for(lambda: count_effects(stack, "crash"), "a first deletion", 60)
        os.kill(first_pid, signal.SIGKILL)  # its master only: gunicorn's worker is orphaned
        post_storm(stack, alerts[STORM_PODS // 2 :])
        tally = settle(stack, cluster, alerts)
        audit, effects = Audit(stack, cluster), count_effects(stack, "crash")
        dead_letters = stack.dead_letters
        assert stack.supervisor is not None
        supervisor = stack.supervisor
        processes = list(stack.functions.values())
        assert is_port_open("127.0.0.1", victim.port)  # the same port again
        after_restart = live_members([], first_pid), zombie_children()
    report_counts(tally.line("killed mid-storm") + f" effected-before-the-kill={len(done)} "
                  f"restarts={supervisor.restarts}")  # fmt: skip
    assert tally.lost == [] and tally.dead_lettered == 0 and tally.effected == STORM_PODS
    assert dead_letters == []
    assert effects == {pod["metadata"]["name"]: 1 for pod in pods}
    for alert in alerts:
        (security_event,) = audit.by_target[alert.target]
        status = security_event["status"]
        assert len(status["executions"]) == len(status["decisions"]) == 1, status
        assert status["executions"][0]["result"] == "Succeeded", status
    assert supervisor.deaths == [Death("executor-delete", first_pid, "killed by SIGKILL")]
    assert supervisor.restarts == {"executor-delete": 1} and supervisor.degradations == []
    assert victim.pid != first_pid
    assert after_restart == ([], [])  # the old group is gone (its orphaned worker too), reaped
    assert live_members(processes, first_pid) == [] and zombie_children() == []


HOLD_S = 3.0  # how long the stand-in holds the executor's delete call before acting on it


def test_a_function_killed_mid_request_is_retried_and_acts_exactly_once(tmp_path: Path) -> None:
    with run_fault_stack(tmp_path / "state") as stack:
        assert stack.apiserver is not None
        cluster = Cluster.connect(str(stack.kubeconfig))
        (pod,) = deploy_defended_workload(cluster, "midreq", "web", 1, "delete")
        held = threading.Event()

        def hold_the_first_delete(record: RequestRecord) -> bool:
            if record.user != "executor-delete" or (record.resource, record.verb) != (
                "pods", "delete") or held.is_set():  # fmt: skip
                return False
            held.set()
            return True

        stack.apiserver.inject_faults(1.0, (), latency_s=HOLD_S, match=hold_the_first_delete)
        victim = stack.functions["executor-delete"]
        first_pid = victim.pid
        assert first_pid is not None
        alerts = alerts_about([pod], "midreq")
        post_storm(stack, alerts)
        wait_for(held.is_set, "the executor's delete call to reach the API server", 60)
        # mid-request: the delivery is open, the delete not yet done, nothing recorded
        in_flight = delivery_attempts(stack)
        assert count_effects(stack, "midreq") == {} and in_flight == []
        (security_event,) = Audit(stack, cluster).by_target[alerts[0].target]
        assert not (security_event.get("status") or {}).get("executions")
        os.killpg(first_pid, signal.SIGKILL)  # master and the worker serving the delivery
        tally = settle(stack, cluster, alerts)
        attempts = delivery_attempts(stack)
        effects = count_effects(stack, "midreq")
        assert stack.supervisor is not None
        deaths = list(stack.supervisor.deaths)
    report_counts(tally.line("killed mid-request") + f" delivery-attempts={len(attempts)} "
                  f"pod-deletes={sum(effects.values())}")  # fmt: skip
    assert deaths == [Death("executor-delete", first_pid, "killed by SIGKILL")]
    assert attempts[0].attempt == 1 and attempts[0].status != 200  # the killed one failed
    # a retry of that delivery completed it (a sweep may re-request the step meanwhile: its
    # own delivery is another event, and finds the step recorded)
    retried = [a for a in attempts if a.event_id == attempts[0].event_id]
    assert retried[-1].status == 200 and retried[-1].attempt > 1
    assert tally.effected == tally.sent == 1 and tally.dead_lettered == 0
    assert effects == {pod["metadata"]["name"]: 1}  # deleted exactly once


def delivery_attempts(stack: Stack) -> list[DeliveryAttempt]:
    """Finished attempts to deliver action requests to executor-delete, in order."""
    return [a for a in stack.attempts
            if a.event_type == ACTION_REQUESTED and "executor-delete" in a.subscriber]  # fmt: skip


CRASHLOOP_MAIN = '''
"""Serves until its folder holds BROKEN; from then on it exits at once on every start."""
import pathlib
import sys

import functions_framework

if (pathlib.Path(__file__).parent / "BROKEN").exists():
    sys.exit("crashloop: BROKEN is present, cannot start")


@functions_framework.http
def serve(request):
    return "ok"
'''

CRASHLOOP_FUNC = """
specVersion: 0.36.0
name: crashloop
runtime: python
run:
  envs:
    - {name: FUNCTION_TARGET, value: serve}
deploy: {namespace: amtd-system}
"""


def write_crashloop_project(root: Path) -> Path:
    """A project root with one function and no eventing: knative/ holds only its namespace."""
    (root / "knative").mkdir(parents=True)
    (root / "knative" / "kustomization.yaml").write_text("resources: [all.yaml]\n")
    (root / "knative" / "all.yaml").write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: amtd-system}\n"
    )
    folder = root / "functions" / "crashloop"
    folder.mkdir(parents=True)
    (folder / "func.yaml").write_text(CRASHLOOP_FUNC)
    (folder / "main.py").write_text(textwrap.dedent(CRASHLOOP_MAIN))
    return root


def test_a_crash_loop_degrades_the_stack_and_amtd_up_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    root = write_crashloop_project(tmp_path / "project")
    policy = RestartPolicy(max_restarts=2, window_s=60, initial_backoff_s=0.05)
    stack = Stack(root, tmp_path / "state", restart_policy=policy)
    stop, exit_codes = threading.Event(), []
    runner = threading.Thread(target=lambda: exit_codes.append(run_until(stack, stop)))
    runner.start()
    try:
        process = wait_for(
            lambda: stack.supervisor and stack.functions.get("crashloop"), "the stack to be up", 60
        )
        processes, first_pid = [process], process.pid
        assert first_pid is not None
        (root / "functions" / "crashloop" / "BROKEN").touch()
        os.kill(first_pid, signal.SIGKILL)
        runner.join(120)
    finally:
        stop.set()
        runner.join(30)
    assert exit_codes == [EXIT_DEGRADED]
    supervisor = stack.supervisor
    assert supervisor is not None
    assert [death.status for death in supervisor.deaths] == [
        "killed by SIGKILL", "exit code 1", "exit code 1"
    ]  # fmt: skip
    assert supervisor.restarts == {"crashloop": 2}
    assert stack.degradations == [
        Degradation("crashloop", "exit code 1 after 2 restarts within 60 s")
    ]
    assert "degraded: function crashloop is down: exit code 1" in capsys.readouterr().err
    assert "crashloop: BROKEN is present" in caplog.text  # the last log lines were shown
    pids = [death.pid for death in supervisor.deaths]
    assert live_members(processes, *pids) == [] and zombie_children() == []


def test_amtd_up_help_documents_the_degraded_exit_status() -> None:
    told = " ".join(build_parser().format_help().split())
    assert f"{EXIT_DEGRADED} degraded" in told and "restarted on the same port" in told


def test_amtd_up_stopped_by_sigterm_leaves_no_function_process(tmp_path: Path) -> None:
    root, state = write_crashloop_project(tmp_path / "project"), tmp_path / "state"
    command = [str(AMTD_CLI), "up", "--state-dir", str(state), "--root", str(root)]
    up = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: (state / "endpoints.json").exists(), "amtd up to be up", 60)
        functions = [entry.pid for entry in list_processes() if entry.parent == up.pid]
        up.send_signal(signal.SIGTERM)
        told, _ = up.communicate(timeout=30)
    finally:
        stop_process(up)
    assert up.returncode == 0 and "stopping..." in told
    assert len(functions) == 1  # the crashloop function's server
    assert live_members([], *functions) == []
