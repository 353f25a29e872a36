"""Errors the local stack raises when it refuses a manifest or cannot run something."""

from __future__ import annotations

from pathlib import Path


class ManifestError(ValueError):
    """A manifest the stack refuses to run; names the file (when known) and the field."""

    def __init__(self, field: str, problem: str, path: Path | str | None = None) -> None:
        self.field = field
        self.problem = problem
        self.path = str(path) if path is not None else None
        where = f"{self.path}: " if self.path else ""
        super().__init__(f"{where}{field}: {problem}")

    def located(self, path: Path | str) -> ManifestError:
        """The same refusal, naming the file it came from (keeps an existing file name)."""
        if self.path is not None:
            return self
        return type(self)(self.field, self.problem, path)


class StackError(RuntimeError):
    """The stack could not start or run a component (a process, a server, an apply)."""
