"""The project explains itself: its docs name only what exists, and cite nothing private.

The team's working notes are not part of the repository, so no file may point at them; the markers
are assembled here so this file does not match itself. docs/ARCHITECTURE.md is a map of the code:
every path and ``amtd.*`` module it names in backticks must exist (an attribute after a module,
``amtd.edge.responding.serve``, must be defined there), the module names in its stage table must be
modules of that stage, and it names every import contract by its id. docs/phoenix.md names the tests
that show each behaviour: they must exist. Every page under docs/ is linked from the README.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SRC = ROOT / "src"
NOTES = "REFERENCE"
CITATION_MARKERS = (f"{NOTES}.md", f"{NOTES} §", "../" + "shared")
BACKTICKED = re.compile(r"`([^`\n]+)`")
PATH_ROOTS = ("src/", "functions/", "knative/", "tests/", "benchmarks/", "docs/")
DOTTED = re.compile(r"^amtd(?:_\w+)?(?:\.\w+)+$")
PLACEHOLDER = re.compile(r"[<>…*]")
STAGE_ROW = re.compile(r"^\| `amtd\.(\w+)` \| ([^|]*) \|", re.M)
MODULE_WORD = re.compile(r"^[a-z][a-z0-9_]*$")
TEST_REFERENCE = re.compile(r"`(tests/[\w/]+\.py)?(?:::(\w+))?`")


def list_repository_files() -> list[Path]:
    """Tracked files plus new ones not ignored (what the next commit could hold)."""
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listing = subprocess.run(
        [git, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    )  # fmt: skip
    names = {name for name in listing.stdout.decode().split("\0") if name}
    return sorted(ROOT / name for name in names if (ROOT / name).is_file())


def find_citations(text: str) -> list[str]:
    """The markers of the private notes that ``text`` contains."""
    return [marker for marker in CITATION_MARKERS if marker in text]


def read_text(path: Path) -> str | None:
    """The file as text; None for binary files."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None


def test_no_file_cites_the_private_notes() -> None:
    files = list_repository_files()
    citing = {
        str(path.relative_to(ROOT)): found
        for path in files
        if (found := find_citations(read_text(path) or ""))
    }
    assert len(files) > 100 and citing == {}


def test_the_citation_check_catches_each_marker() -> None:
    samples = [f"see {NOTES}.md", f"({NOTES} §6.3)", "in ../" + "shared/fixtures", "D8 (Phoenix)"]
    assert [bool(find_citations(sample)) for sample in samples] == [True, True, True, False]


def is_defined(module: Path, name: str) -> bool:
    """Whether ``name`` is a top-level function, class or assignment of ``module``."""
    pattern = re.compile(rf"^(?:(?:async )?def |class ){name}\b|^{name}\s*[:=]", re.M)
    return bool(pattern.search(module.read_text()))


def find_module(parts: list[str]) -> Path | None:
    """The file of module ``parts`` under src/ (a module, or a package's __init__)."""
    base = SRC.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def resolve_dotted(name: str) -> bool:
    """``amtd.x.y`` is a module, or a module followed by one name defined in it."""
    parts = name.split(".")
    module = find_module(parts)
    if module is not None:
        return True
    parent = find_module(parts[:-1])
    return parent is not None and is_defined(parent, parts[-1])


def is_missing(span: str) -> bool:
    """Whether ``span`` names a repository path or an ``amtd.*`` module that does not exist."""
    if PLACEHOLDER.search(span) or " " in span:
        return False  # a pattern such as `src/amtd/act/<action>/`, or prose
    if span.startswith(PATH_ROOTS):
        return not (ROOT / span).exists()
    return bool(DOTTED.match(span)) and not resolve_dotted(span)


def find_missing_names(text: str) -> list[str]:
    """The backticked paths and ``amtd.*`` modules of ``text`` that do not exist."""
    return [span for span in BACKTICKED.findall(text) if is_missing(span)]


def find_missing_stage_modules(text: str) -> list[str]:
    """The modules the stage table lists that are not in their stage's package."""
    missing = []
    for stage, cell in STAGE_ROW.findall(text):
        for word in BACKTICKED.findall(cell):
            if MODULE_WORD.match(word) and find_module(["amtd", stage, word]) is None:
                missing.append(f"amtd.{stage}.{word}")
    return missing


def test_architecture_names_only_what_exists() -> None:
    text = (DOCS / "ARCHITECTURE.md").read_text()
    assert len(BACKTICKED.findall(text)) > 50
    assert find_missing_names(text) == []
    assert len(STAGE_ROW.findall(text)) == 9  # one row per stage, amtd.notify included
    assert find_missing_stage_modules(text) == []


def test_architecture_names_every_import_contract() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    ids = {contract["id"] for contract in contracts if "id" in contract}
    named = set(BACKTICKED.findall((DOCS / "ARCHITECTURE.md").read_text()))
    assert len(ids) >= 4 and sorted(ids - named) == []


def test_the_architecture_check_catches_what_is_gone() -> None:
    text = (
        "`src/amtd/nowhere.py` `amtd.edge.nowhere` `amtd.edge.responding.nothing` "
        "`amtd.edge.responding.serve` `src/amtd/act/<action>/` `amtd.kube.api`\n"
        "| `amtd.kube` | `api`, `nowhere` (the `Cluster`) | no |\n"
    )
    assert find_missing_names(text) == [
        "src/amtd/nowhere.py", "amtd.edge.nowhere", "amtd.edge.responding.nothing",
    ]  # fmt: skip
    assert find_missing_stage_modules(text) == ["amtd.kube.nowhere"]


def find_missing_tests(text: str) -> list[str]:
    """``tests/x.py::test_y`` references (``::test_z`` continues the last file) that are wrong."""
    missing, current = [], None
    for path, name in TEST_REFERENCE.findall(text):
        current = path or current
        if path and not (ROOT / path).is_file():
            missing.append(path)
        elif name and current and not is_defined(ROOT / current, name):
            missing.append(f"{current}::{name}")
    return missing


def test_phoenix_page_names_real_tests() -> None:
    text = (DOCS / "phoenix.md").read_text()
    assert len(TEST_REFERENCE.findall(text)) > 30
    assert find_missing_tests(text) == []


def test_the_test_reference_check_catches_renamed_tests() -> None:
    text = "`tests/packaging/test_docs.py::test_gone` `::test_phoenix_page_names_real_tests`"
    assert find_missing_tests(text) == ["tests/packaging/test_docs.py::test_gone"]


def test_every_docs_page_is_linked_from_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    pages = sorted(page.name for page in DOCS.glob("*.md"))
    assert "ARCHITECTURE.md" in pages and "phoenix.md" in pages
    assert [page for page in pages if f"](docs/{page})" not in readme] == []
