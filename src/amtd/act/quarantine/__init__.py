"""The ``quarantine`` action: the pod keeps running, isolated, while its workload replaces it.

:mod:`~amtd.act.quarantine.quarantining` builds the names, labels and NetworkPolicy (pure),
:mod:`~amtd.act.quarantine.performing` applies them, and
:mod:`~amtd.act.quarantine.releasing` ends a quarantine (``amtd release``).
"""
