"""``amtd stage FUNCTION [--out DIR]``: write a self-contained build folder for ``func deploy``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "stage a function (func.yaml name) into a self-contained folder for `func deploy`"


def default_root() -> Path:
    """The project checkout: the one this code runs from (src layout), else the cwd."""
    checkout = Path(__file__).resolve().parents[2]
    return checkout if (checkout / "functions").is_dir() else Path.cwd()


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of the subcommand."""
    parser.add_argument("function", help="the function's func.yaml name, e.g. matcher")
    parser.add_argument("--out", type=Path, help="output folder (default: build/stage/FUNCTION)")
    parser.add_argument("--root", type=Path, default=None, help="project checkout to stage from")


def run(args: argparse.Namespace) -> int:
    """Stage the function; print the folder and the next command. Exit 2 on a staging error."""
    from amtd_packaging.staging import StagingError, stage_function

    root = (args.root or default_root()).resolve()
    out = (args.out or root / "build" / "stage" / args.function).resolve()
    try:
        staged = stage_function(root, args.function, out)
    except StagingError as error:
        print(f"amtd stage: {error}", file=sys.stderr)
        return 2
    print(f"staged {args.function} ({len(staged.requirements)} pinned packages) in {out}")
    print(f"deploy with: func deploy --path {out}")
    return 0
