"""Pinning: which distributions a function needs, each pinned to its version in requirements.lock.

The imports are read statically (``ast``) from the function's main.py and, transitively, from
the core modules it reaches, lazy imports inside functions included. Their distributions and
those distributions' own requirements (from the installed metadata, markers evaluated for this
interpreter) form the closure; every member must be pinned in the lock, so a staged build
installs exactly what the tests ran with.
"""

from __future__ import annotations

import ast
import importlib.metadata
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


class PinningError(Exception):
    """A dependency that cannot be resolved or pinned; the message names it."""


@dataclass(frozen=True)
class ImportTrace:
    """What an entry file reaches: core modules (dotted names) and outside top-level modules."""

    core_modules: frozenset[str]
    external: frozenset[str]


def read_lock(path: Path) -> dict[str, str]:
    """``name==version`` lines of a lock file, keyed by canonical name (comments skipped)."""
    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, separator, version = line.partition("==")
        if not separator:
            raise PinningError(f"{path}: {line!r} is not pinned with ==")
        pins[canonicalize_name(name.strip())] = version.strip()
    return pins


def scan_imports(source: str, module: str, is_package: bool = False) -> set[str]:
    """Absolute names of the modules a source file imports, relative imports resolved (pure)."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = resolve_relative(node.module or "", node.level, package)
            found.add(base)
            # `from pkg import name` may name a submodule; callers keep only those that exist.
            found.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return found


def resolve_relative(name: str, level: int, package: str) -> str:
    """The absolute module name of ``from <level dots><name> import ...`` inside ``package``."""
    if level == 0:
        return name
    parts = package.split(".")
    base = parts[: len(parts) - level + 1]
    return ".".join([*base, name] if name else base)


def find_core_file(module: str, core_root: Path) -> Path | None:
    """The file of a core module under ``core_root`` (a package's __init__.py), or None."""
    path = core_root.joinpath(*module.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return path.with_suffix(".py") if path.with_suffix(".py").is_file() else None


def trace_imports(entry: Path, core_root: Path, core_package: str) -> ImportTrace:
    """Follow imports from ``entry`` through ``core_package`` (found under ``core_root``)."""
    pending = [(entry, "__main__", False)]
    core: set[str] = set()
    external: set[str] = set()
    while pending:
        path, module, is_package = pending.pop()
        for name in scan_imports(path.read_text(encoding="utf-8"), module, is_package):
            top = name.partition(".")[0]
            if top != core_package:
                external.add(top)
                continue
            for parent in parent_modules(name):
                file = find_core_file(parent, core_root)
                if file is not None and parent not in core:
                    core.add(parent)
                    pending.append((file, parent, file.name == "__init__.py"))
    return ImportTrace(frozenset(core), frozenset(external - set(sys.stdlib_module_names)))


def parent_modules(name: str) -> list[str]:
    """``a.b.c`` -> ``["a", "a.b", "a.b.c"]`` (importing a module imports its packages)."""
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def find_distributions(top_levels: Iterable[str]) -> set[str]:
    """Canonical names of the installed distributions providing these top-level modules."""
    providers = importlib.metadata.packages_distributions()
    found: set[str] = set()
    for top in sorted(top_levels):
        if top not in providers:
            raise PinningError(f"no installed distribution provides the module {top!r}")
        found.update(canonicalize_name(name) for name in providers[top])
    return found


def close_requirements(roots: Iterable[str], lock: Mapping[str, str]) -> dict[str, str]:
    """The roots and everything they require (transitively), pinned from ``lock``."""
    pending: list[tuple[str, frozenset[str]]] = [
        (canonicalize_name(root), frozenset()) for root in roots
    ]
    seen: set[tuple[str, frozenset[str]]] = set()
    while pending:
        name, extras = pending.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        pending.extend(read_requirements(name, extras))
    pins: dict[str, str] = {}
    for name, _ in sorted(seen):
        if name not in lock:
            raise PinningError(f"{name} is needed but not pinned in requirements.lock")
        pins[name] = lock[name]
    return pins


def read_requirements(name: str, extras: frozenset[str]) -> list[tuple[str, frozenset[str]]]:
    """Requirements of an installed distribution that apply here (markers evaluated)."""
    try:
        lines = importlib.metadata.distribution(name).requires or []
    except importlib.metadata.PackageNotFoundError:
        raise PinningError(f"{name} is needed but not installed in this environment") from None
    needed: list[tuple[str, frozenset[str]]] = []
    for line in lines:
        requirement = Requirement(line)
        if requirement.marker is None or any(
            requirement.marker.evaluate({"extra": extra}) for extra in ("", *extras)
        ):
            needed.append((canonicalize_name(requirement.name), frozenset(requirement.extras)))
    return needed
