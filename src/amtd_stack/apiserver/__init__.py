"""A stateful Kubernetes API server stand-in on loopback HTTP.

The official `kubernetes` client and `kubectl` use it unchanged through a generated kubeconfig:

    with start_apiserver() as server:
        server.write_kubeconfig(tmp_path / "kubeconfig", user="test")
"""

from .faults import RequestRecord
from .server import ApiServer, start_apiserver

__all__ = ["ApiServer", "RequestRecord", "start_apiserver"]
