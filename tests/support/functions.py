"""Run a function the way its deployment does: in-process (test client) or as its own process.

Either reaches the API stand-in the way ``support.standins`` connects it: in-process through the
KUBECONFIG that ``Stand.connect_functions`` sets, as a process through a KUBECONFIG in ``env``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import functions_framework
import yaml
from flask.testing import FlaskClient

from amtd_stack.serving import pick_free_port
from support.processes import serve_process
from support.signing import matcher_key_environment

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


@contextlib.contextmanager
def serve_function(name: str, env: Mapping[str, str] | None = None, **popen: Any) -> Iterator[str]:
    """Run ``functions/<name>`` under functions-framework as its own process; yield its URL.

    ``popen``: more ``subprocess.Popen`` arguments (``stderr=`` to read its logs)."""
    folder = FUNCTIONS / name
    port = pick_free_port()
    command = [
        str(Path(sys.executable).with_name("functions-framework")),
        *("--target", read_target(folder), "--source", str(folder / "main.py")),
        *("--host", "127.0.0.1", "--port", str(port)),
    ]
    environment = {**os.environ, **matcher_key_environment(), **(env or {})}
    with serve_process(command, port, env=environment, **popen) as url:
        yield url
