"""The ``amtd`` command: one module per subcommand, loaded only when used.

Each subcommand module exposes ``HELP`` (one line), ``configure(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from types import ModuleType

SUBCOMMANDS = {
    "explain": "amtd_cli.explain",
    "release": "amtd_cli.release",
    "up": "amtd_cli.up",
    "stage": "amtd_cli.stage",
}


def load_subcommand(name: str) -> ModuleType | None:
    """Import a subcommand's module; None while it is not part of this build."""
    try:
        return importlib.import_module(SUBCOMMANDS[name])
    except ModuleNotFoundError as error:
        if error.name == SUBCOMMANDS[name]:
            return None
        raise


def build_parser(chosen: str | None) -> argparse.ArgumentParser:
    """The top-level parser; only the chosen subcommand's module is imported."""
    parser = argparse.ArgumentParser(prog="amtd", description="Moving-target defense tools.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMANDS:
        module = load_subcommand(name) if name == chosen else None
        sub = subparsers.add_parser(name, help=module.HELP if module else None)
        if module:
            module.configure(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    argv = sys.argv[1:] if argv is None else argv
    chosen = next((arg for arg in argv if not arg.startswith("-")), None)
    args = build_parser(chosen).parse_args(argv)
    module = load_subcommand(args.command)
    if module is None:
        print(f"amtd {args.command}: not available in this build", file=sys.stderr)
        return 2
    result: int = module.run(args)
    return result
