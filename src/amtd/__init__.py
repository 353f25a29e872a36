"""The shared core of the moving-target defense, by stage, each stage importing only those below.

- ``model`` (CRD shapes, the event contract), ``decide.matching/deciding/explaining``,
  ``ingest``'s parsers, ``schedule.schedules/timing/sweeping``, ``kube.events``, ``deadletters``,
  ``act.guarding/claiming`` and the actions' manifest builders are pure: no I/O, no clock.
- :mod:`amtd.kube.api` is the one module that talks to the API server (the official client);
  :mod:`amtd.kube.deferring` runs a background thread for after-the-reply work.
- ``ingest.ingesting``, ``schedule.triggering/housekeeping``, ``decide.triaging`` and the
  performing parts of ``act`` do cluster I/O, always through a :class:`~amtd.kube.api.Cluster`.
- ``edge`` does HTTP: decoding requests, answering them, publishing CloudEvents.

The import contracts in ``pyproject.toml`` enforce the layering (tests/unit/test_layers.py
shows that each one can fail).
"""

GROUP = "amtd.r6security.com"
VERSION = "v1beta1"
API_VERSION = f"{GROUP}/{VERSION}"
# here, not only in amtd.model.securityevents: modules that just name the kind stay free of pydantic
SECURITY_EVENT_KIND = "SecurityEvent"
