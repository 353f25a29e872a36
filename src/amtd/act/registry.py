"""Registry: every action an executor performs, one line each.

An action is a package ``amtd.act.<name>`` defining an :class:`~amtd.act.actions.ExecutableAction`
plus an executor function ``functions/executors/<name>/`` (and its Trigger and RBAC in knative/).
The layers below ``act`` (the matcher's decisions and the event contract) cannot import this
module, so they know executable actions by name only: ``EXECUTABLE_KINDS`` in
:mod:`amtd.model.actions`, which tests/unit/test_registry.py holds equal to :data:`ACTIONS`.
Adding an action therefore touches its package, one line here and one name there; the
matching, routing, guards and execution follow from those.
"""

from __future__ import annotations

from collections.abc import Mapping

from amtd.act.actions import ExecutableAction
from amtd.act.debug.performing import CUSTOM_ACTION, DEBUGGER
from amtd.act.delete.performing import DELETE
from amtd.act.quarantine.performing import QUARANTINE

REGISTERED = (
    DELETE,
    QUARANTINE,
    DEBUGGER,
    CUSTOM_ACTION,
)
ACTIONS: Mapping[str, ExecutableAction] = {action.name: action for action in REGISTERED}
