"""The ``debugger`` and ``customAction`` actions: an ephemeral container added to the pod.

Both of Phoenix's actions do one thing, attach an ephemeral container to the attacked pod (it
keeps running, now with a container to inspect it from); they differ only in how the policy
describes that container: ``debugger`` by Phoenix's three fields (name, image, terminal),
``customAction`` by a whole EphemeralContainer spec. So they share one package, one executor
function (``functions/executors/debug/``), one RBAC rule and one Trigger, and are two registered
actions only because policies and steps name them apart:
:mod:`~amtd.act.debug.attaching` builds the container (pure), :mod:`~amtd.act.debug.performing`
adds it through the ``pods/{name}/ephemeralcontainers`` subresource.
"""
