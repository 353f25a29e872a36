"""Actions: the one interface every executable action implements (see :mod:`amtd.act.registry`).

:mod:`amtd.act.executing` and :mod:`amtd.act.guarding` are the same for every action; all they
ask of one is what it would do to a pod (also the dry-run message), how to do it, and what it
means when the pod is already gone. Each action is a package ``amtd.act.<name>`` defining one
:class:`ExecutableAction`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from amtd.act.verdicts import StepVerdict
from amtd.kube.api import Cluster
from amtd.model.actionevents import ActionStep

Pod = Mapping[str, Any]
# (cluster, step, claimed pod, SecurityEvent name, the executor's environment) -> verdict.
# Kubernetes errors escape: the executor re-reads on ConflictError and judges NotFoundError.
Perform = Callable[[Cluster, ActionStep, Pod, str, Mapping[str, str]], StepVerdict]


@dataclass(frozen=True)
class ExecutableAction:
    """One action an executor performs on a pod, by the name policies use (``delete``)."""

    name: str
    perform: Perform
    describe: Callable[[ActionStep, Pod], str]  # "delete pod a/b (uid ...)": also the dry run
    judge_gone: Callable[[str], StepVerdict]  # the target pod is gone or terminating
    # whether it may act on a pod amtd quarantined (else Skipped / PodQuarantined: evidence kept)
    acts_on_quarantined: bool = False
    # whether its effect outlives the step on a pod that stays (a quarantine): then it claims the
    # pod first (amtd.act.claiming). A delete ends the pod: it claims nothing, its call is made
    # conditional on the resourceVersion read, so a claim written since is a 409 all the same.
    leaves_claim: bool = True
