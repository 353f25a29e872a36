"""The defaults a real API server fills in when it decodes built-in objects (pure).

Values follow upstream's defaulting functions (core/v1, apps/v1, batch/v1 `defaults.go`) and,
for pods, what the ServiceAccount admission plugin adds (`serviceAccountName: default`).
Only unset fields are filled, so defaulting a stored object again changes nothing. A Service's
clusterIP is derived from its uid (stable across updates, as an allocated one is) in
10.96.0.0/12, and so are node ports (30000-32767); upstream allocates both at random.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable
from typing import Any

from amtd.model.objects import Object

SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/12")
DEFAULT_SERVICE_ACCOUNT = "default"


def image_pull_policy(image: str) -> str:
    """Always for `:latest` or no tag (a digest counts as a tag), else IfNotPresent."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    tag = last.rsplit(":", 1)[1] if ":" in last else "latest"
    return "Always" if tag == "latest" else "IfNotPresent"


def default_container(container: Any) -> None:
    """SetDefaults_Container (in place): pull policy, termination message, ports' protocol."""
    if not isinstance(container, dict):
        return
    container.setdefault("imagePullPolicy", image_pull_policy(str(container.get("image", ""))))
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("resources", {})
    for port in container.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")


def default_pod_spec(spec: Any) -> None:
    """SetDefaults_PodSpec and its containers' defaults (pod templates get these too)."""
    if not isinstance(spec, dict):
        return
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(key) or []:
            default_container(container)


def _spec(obj: Object) -> Object:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = obj["spec"] = {}
    return spec


def _default_template(spec: Object) -> None:
    template = spec.get("template")
    if isinstance(template, dict):
        default_pod_spec(template.get("spec"))


def default_pod(obj: Object) -> None:
    """Pod: its spec, enableServiceLinks, and the ServiceAccount admission plugin's name."""
    spec = _spec(obj)
    default_pod_spec(spec)
    spec.setdefault("enableServiceLinks", True)
    account = spec.setdefault("serviceAccountName", DEFAULT_SERVICE_ACCOUNT)
    spec.setdefault("serviceAccount", account)  # the deprecated alias upstream fills in


def _default_deployment(obj: Object) -> None:
    spec = _spec(obj)
    spec.setdefault("replicas", 1)
    strategy = spec.setdefault("strategy", {})
    if isinstance(strategy, dict) and strategy.setdefault("type", "RollingUpdate") == (
        "RollingUpdate"
    ):
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    _default_template(spec)


def _default_replicaset(obj: Object) -> None:
    spec = _spec(obj)
    spec.setdefault("replicas", 1)
    _default_template(spec)


def _default_daemonset(obj: Object) -> None:
    spec = _spec(obj)
    strategy = spec.setdefault("updateStrategy", {})
    if isinstance(strategy, dict) and strategy.setdefault("type", "RollingUpdate") == (
        "RollingUpdate"
    ):
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", 1)
        rolling.setdefault("maxSurge", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    _default_template(spec)


def _default_job(obj: Object) -> None:
    spec = _spec(obj)
    if "completions" not in spec and "parallelism" not in spec:
        spec["completions"] = 1
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels")
    if labels and not obj["metadata"].get("labels"):
        obj["metadata"]["labels"] = dict(labels)
    _default_template(spec)


def cluster_ip(uid: str) -> str:
    """A stable address in the service CIDR for a Service uid (never .0 or .1, kubernetes')."""
    digest = int.from_bytes(hashlib.sha256(uid.encode()).digest()[:8], "big")
    offset = 2 + digest % (SERVICE_CIDR.num_addresses - 3)
    return str(SERVICE_CIDR.network_address + offset)


def node_port(uid: str, index: int) -> int:
    """A stable port in 30000-32767 for a Service uid's index-th port (upstream: at random)."""
    digest = int.from_bytes(hashlib.sha256(f"{uid}/{index}".encode()).digest()[:8], "big")
    return 30000 + digest % 2768


def _default_node_ports(obj: Object) -> None:
    uid = str(obj["metadata"].get("uid", ""))
    for index, port in enumerate(obj["spec"].get("ports") or []):
        if isinstance(port, dict) and not port.get("nodePort"):
            port["nodePort"] = node_port(uid, index)


def _default_service(obj: Object) -> None:
    spec = _spec(obj)
    kind = spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            if port.get("targetPort") in (None, 0, ""):
                port["targetPort"] = port.get("port")
    if kind == "ExternalName":
        return
    if kind in ("NodePort", "LoadBalancer"):
        _default_node_ports(obj)
    spec.setdefault("internalTrafficPolicy", "Cluster")
    address = spec.get("clusterIP") or cluster_ip(str(obj["metadata"].get("uid", "")))
    spec["clusterIP"] = address
    spec.setdefault("clusterIPs", [address])
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")


def _default_secret(obj: Object) -> None:
    obj.setdefault("type", "Opaque")


_DEFAULTERS: dict[tuple[str, str], Callable[[Object], None]] = {
    ("", "Pod"): default_pod,
    ("", "Service"): _default_service,
    ("", "Secret"): _default_secret,
    ("apps", "Deployment"): _default_deployment,
    ("apps", "ReplicaSet"): _default_replicaset,
    ("apps", "DaemonSet"): _default_daemonset,
    ("batch", "Job"): _default_job,
}


def default_object(group: str, kind: str, obj: Object) -> Object:
    """`obj` with the server's defaults for its kind filled in (in place; returned)."""
    defaulter = _DEFAULTERS.get((group, kind))
    if defaulter is not None:
        defaulter(obj)
    return obj
