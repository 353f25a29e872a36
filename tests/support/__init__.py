"""Helpers shared by the tests (and the benchmarks): one module per concern.

``waiting`` (deadlines), ``processes`` (serving processes), ``functions`` (a function in-process
or as a process), ``cloudevents``, ``receivers`` (loopback HTTP endpoints), ``standins`` (the API
stand-in set up), ``ingesting``, ``executors`` and ``stacks`` (the embedded stack for e2e).
"""
