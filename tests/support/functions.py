"""Run a function the way its deployment does: in-process (test client) or as its own process."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import functions_framework
import yaml
from flask.testing import FlaskClient

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "functions"


def read_target(folder: Path) -> str:
    """The functions-framework target named by FUNCTION_TARGET in the folder's func.yaml."""
    spec = yaml.safe_load((folder / "func.yaml").read_text())
    envs = {env["name"]: env.get("value") for env in spec.get("run", {}).get("envs", [])}
    return str(envs["FUNCTION_TARGET"])


def load_function_client(name: str) -> FlaskClient:
    """A Flask test client for ``functions/<name>`` (e.g. ``matcher``, ``executors/delete``)."""
    folder = FUNCTIONS / name
    app = functions_framework.create_app(read_target(folder), str(folder / "main.py"), "http")
    return app.test_client()


def pick_free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, deadline_s: float = 30.0) -> None:
    """Block until something accepts connections on the port."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {deadline_s} s")


@contextlib.contextmanager
def serve_function(name: str, env: Mapping[str, str] | None = None) -> Iterator[str]:
    """Run ``functions/<name>`` under functions-framework as its own process; yield its URL."""
    folder = FUNCTIONS / name
    port = pick_free_port()
    command = [
        str(Path(sys.executable).with_name("functions-framework")),
        *("--target", read_target(folder), "--source", str(folder / "main.py")),
        *("--host", "127.0.0.1", "--port", str(port)),
    ]
    process = subprocess.Popen(command, env={**os.environ, **(env or {})})
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
