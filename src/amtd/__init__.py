"""The shared core of the moving-target defense: models, matching and the event contract.

Everything here is pure (no I/O) except :mod:`amtd.kube.api`, the one module that talks to the
Kubernetes API server. The import contract in ``pyproject.toml`` keeps it that way.
"""

GROUP = "amtd.r6security.com"
VERSION = "v1beta1"
API_VERSION = f"{GROUP}/{VERSION}"
# here, not only in amtd.model.securityevents: modules that just name the kind stay free of pydantic
SECURITY_EVENT_KIND = "SecurityEvent"
