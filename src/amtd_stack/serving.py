"""Running small threaded WSGI servers on loopback (broker ingress) and finding free ports."""

from __future__ import annotations

import socket
import threading
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

POLL_INTERVAL_S = 0.05  # how fast stop() is noticed


class RunningServer:
    """A threaded werkzeug server serving in a background thread until ``stop()``."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server: BaseWSGIServer = make_server(host, port, app, threaded=True)
        self._server.daemon_threads = True  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL_S},
            name=f"wsgi-{self.port}",
            daemon=True,
        )
        self._thread.start()

    @property
    def port(self) -> int:
        """The bound TCP port."""
        return int(self._server.server_port)

    @property
    def url(self) -> str:
        """Base URL, without a trailing slash."""
        return f"http://{self._server.host}:{self.port}"

    def stop(self) -> None:
        """Stop accepting, wait for the serving loop, close the socket."""
        self._server.shutdown()
        self._thread.join(timeout=10)
        self._server.server_close()


_PICKED: set[int] = set()  # never hand out the same port twice in one process
_PICKED_LOCK = threading.Lock()


def pick_free_port(host: str = "127.0.0.1") -> int:
    """A port the OS reports free now (bind to 0), not handed out before; bind it soon after."""
    with _PICKED_LOCK:
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind((host, 0))
                port = int(probe.getsockname()[1])
            if port not in _PICKED:
                _PICKED.add(port)
                return port


def is_port_open(host: str, port: int, timeout_s: float = 0.2) -> bool:
    """True when a TCP connection to host:port succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False
