"""``amtd up``: run the whole system locally until Ctrl-C or SIGTERM.

Usage: ``amtd up --state-dir DIR [--root PATH] [--env [FUNCTION:]NAME=VALUE ...]``

Crashed functions are restarted; the exit status (3: degraded) is in ``EXIT_CODES``, which
``--help`` shows.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from amtd_stack.errors import ManifestError, StackError
from amtd_stack.running.stack import ALL_FUNCTIONS, Stack
from amtd_stack.running.supervising import RestartPolicy

EXIT_STOPPED, EXIT_CANNOT_START, EXIT_BAD_ARGUMENTS, EXIT_DEGRADED = 0, 1, 2, 3
POLICY = RestartPolicy()
EXIT_CODES = (
    f"A function process that dies is reported and restarted on the same port (at most "
    f"{POLICY.max_restarts} times in {POLICY.window_s:g} s); past that the stack is degraded "
    f"and stops. Exit status: {EXIT_STOPPED} stopped by Ctrl-C/SIGTERM, {EXIT_CANNOT_START} "
    f"cannot start, {EXIT_BAD_ARGUMENTS} bad arguments, {EXIT_DEGRADED} degraded (a function "
    "kept crashing)."
)
DEGRADED_CHECK_S = 0.2  # how soon a degraded stack is noticed


def build_parser() -> argparse.ArgumentParser:
    """The ``amtd up`` argument parser."""
    parser = argparse.ArgumentParser(prog="amtd up", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``amtd up`` (shared with the ``amtd`` console script)."""
    parser.epilog = EXIT_CODES
    parser.add_argument("--state-dir", type=Path, required=True, help="kubeconfig, logs, endpoints")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="project root (knative/)")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="[FUNCTION:]NAME=VALUE",
        help="environment override for one function or all (repeatable)",
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")


def parse_env_overrides(items: Sequence[str]) -> dict[str, dict[str, str]]:
    """``[FUNCTION:]NAME=VALUE`` items to ``{function or "*": {NAME: VALUE}}`` (pure)."""
    overrides: dict[str, dict[str, str]] = {}
    for item in items:
        qualified, equals, value = item.partition("=")
        function, _, name = qualified.rpartition(":")
        if not equals or not name:
            raise ValueError(f"--env {item!r} must look like [FUNCTION:]NAME=VALUE")
        overrides.setdefault(function or ALL_FUNCTIONS, {})[name] = value
    return overrides


def ensure_ingest_token(overrides: dict[str, dict[str, str]]) -> str | None:
    """Give ingest a fresh random token unless one was set: local runs stay authenticated.

    On a cluster the token comes from the ``amtd-ingest-token`` Secret, which knative/ leaves
    for the operator to create (a committed token would be a known password).
    """
    if any("INGEST_TOKEN" in values for values in overrides.values()):
        return None
    token = secrets.token_urlsafe(24)
    overrides.setdefault(ALL_FUNCTIONS, {})["INGEST_TOKEN"] = token
    return token


def describe(stack: Stack) -> str:
    """What ``amtd up`` prints once everything runs."""
    endpoints = stack.endpoints()
    lines = [
        "amtd stack is up",
        f"  API server   {endpoints['apiserver']}",
        f"  kubeconfig   {endpoints['kubeconfig']}   (export KUBECONFIG=...)",
        f"  broker       {endpoints['broker']}",
        *(f"  function     {name:<22} {url}" for name, url in endpoints["functions"].items()),
        f"  endpoints    {stack.endpoints_path}",
        f"  logs         {stack.state_dir / 'logs'}",
        "Ctrl-C to stop.",
    ]
    return "\n".join(lines)


def up(argv: Sequence[str]) -> int:
    """Start the stack, print where things are, run until SIGINT/SIGTERM, stop cleanly."""
    return run_parsed(build_parser().parse_args(list(argv)))


def run_parsed(args: argparse.Namespace) -> int:
    """``amtd up`` with its arguments already parsed."""
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request is noise
    try:
        overrides = parse_env_overrides(args.env)
    except ValueError as error:
        print(f"amtd up: {error}", file=sys.stderr)
        return EXIT_BAD_ARGUMENTS
    token = ensure_ingest_token(overrides)
    if token:
        print(f"ingest token (Authorization: Bearer ...): {token}", flush=True)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return run_until(Stack(args.root, args.state_dir, overrides), stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_until(stack: Stack, stop: threading.Event) -> int:
    """Run the stack until ``stop`` is set (0) or it is degraded (3, naming the function and
    why); 1 with a clear message when it cannot start."""
    try:
        stack.start()
    except (ManifestError, StackError) as error:
        print(f"amtd up: cannot start: {error}", file=sys.stderr)
        return EXIT_CANNOT_START
    try:
        print(describe(stack), flush=True)
        while not stop.wait(DEGRADED_CHECK_S) and not stack.degradations:
            pass
        for degradation in stack.degradations:
            print(f"amtd up: degraded: function {degradation.function} is down: "
                  f"{degradation.reason}", file=sys.stderr, flush=True)  # fmt: skip
        print("stopping...", flush=True)
    finally:
        stack.stop()
    return EXIT_DEGRADED if stack.degradations else EXIT_STOPPED


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``main(["up", ...])`` or ``main([...])`` (the ``up`` is optional)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["up"]:
        arguments = arguments[1:]
    return up(arguments)
