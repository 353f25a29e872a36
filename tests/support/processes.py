"""Processes that serve on a loopback port: started, waited for, always stopped; and what the
process table (/proc) says about children and process groups.

Free ports and the "is it listening" probe are the stack's own (``amtd_stack.serving``).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
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


@dataclass(frozen=True)
class ProcessEntry:
    """One line of the process table (/proc/<pid>/stat)."""

    pid: int
    state: str  # R, S, Z (zombie: exited, not reaped by its parent), ...
    parent: int
    group: int


def list_processes() -> list[ProcessEntry]:
    """Every process visible in /proc (those that vanish while being read are skipped)."""
    entries = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # the command name may hold spaces and parentheses: the fields follow its last ")"
            fields = stat.read_text().rsplit(")", 1)[1].split()
            entries.append(ProcessEntry(int(stat.parent.name), fields[0], int(fields[1]),
                                        int(fields[2])))  # fmt: skip
    return entries


def zombie_children() -> list[ProcessEntry]:
    """Children of this (test) process that exited and were never reaped."""
    return [p for p in list_processes() if p.parent == os.getpid() and p.state == "Z"]


def group_members(groups: Iterable[int]) -> list[ProcessEntry]:
    """Processes still alive (or unreaped) in any of these process groups."""
    wanted = set(groups)
    return [p for p in list_processes() if p.group in wanted]
