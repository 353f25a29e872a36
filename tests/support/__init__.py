"""Helpers shared by the tests (and the benchmarks): one module per concern.

The way up, each layer built on the one below:

1. ``standins``: the API server stand-in started (``start_stand``) or set up (``open_stand``,
   ``open_world``, ``run_module_world``) with our CRDs and namespaces, the test connected through
   the official client, in-process functions pointed at it; workloads on it.
2. ``receivers``: loopback HTTP endpoints standing in for subscribers and sinks (the Broker's
   place for a function's ``K_SINK``); the local eventing itself is ``amtd_stack.eventing``.
3. ``functions``: a function in-process (test client) or as its own process, connected to a
   stand-in through the KUBECONFIG the layer below wrote.
4. ``stacks``: the whole embedded stack for end-to-end tests, connected as ``standins`` does.

Beside the layers: ``builders`` (SecurityEvents, policies, Falco and KubeArmor alerts),
``cloudevents`` (CloudEvent requests), ``ingesting`` (the ingest token and switches),
``executors`` (decided SecurityEvents and their ``action.requested``), ``funcpack`` (func's pack
build redone), ``processes`` (serving processes) and ``waiting`` (deadlines).
"""
