"""Processes that serve on a loopback port: started, waited for, always stopped.

Free ports and the "is it listening" probe are the stack's own (``amtd_stack.serving``).
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator, Sequence
from typing import Any

from amtd_stack.serving import is_port_open
from support.waiting import wait_for


def wait_for_port(port: int, deadline_s: float = 30.0) -> None:
    """Block until something accepts connections on the loopback port."""
    wait_for(lambda: is_port_open("127.0.0.1", port), f"a listener on port {port}", deadline_s)


def stop_process(process: subprocess.Popen[Any], grace_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL when it has not exited after ``grace_s``."""
    process.terminate()
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(grace_s)


@contextlib.contextmanager
def serve_process(
    command: Sequence[str], port: int, grace_s: float = 10.0, **popen: Any
) -> Iterator[str]:
    """Run ``command`` (it listens on ``port``); yield its URL once it accepts, stop it after."""
    process = subprocess.Popen(list(command), **popen)
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process, grace_s)
