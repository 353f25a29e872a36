"""``amtd up``: the whole system on this machine (API stand-in, eventing, every function)."""

from __future__ import annotations

import argparse

HELP = "run the embedded stack until Ctrl-C (kubeconfig and endpoints in --state-dir)"


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``amtd up``."""
    from amtd_stack.running.cli import add_arguments

    add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Start the stack and keep it up until SIGINT/SIGTERM; exit codes: ``amtd up --help``."""
    from amtd_stack.running.cli import run_parsed

    return run_parsed(args)
