"""docs/DEPLOY.md covers the repository: every function, every manifest, only real phases.

The doc's fenced ``sh`` blocks are read roughly as a shell would read them (continuations joined,
comments dropped, ``for`` loops expanded) and their ``kubectl -f/-k`` arguments as kubectl
would expand them (a folder: its files; a kustomization: its resources, read recursively with
:mod:`amtd_stack.manifests`). Nothing is hard-coded: the functions are the func.yaml names, the
manifests every YAML file under knative/ (kustomization files are configuration, not objects),
the phases the SecurityEvent CRD's enum. So adding a function or a manifest without updating the
doc fails here, as the tests on small doc texts at the end show.
"""

from __future__ import annotations

import re
import shlex
import typing
from dataclasses import dataclass
from pathlib import Path

import yaml

from amtd.act.quarantine import quarantining
from amtd.model.securityevents import Phase
from amtd_stack.manifests import KUSTOMIZATION_NAMES, load_manifests
from amtd_stack.running.definitions import FunctionDefinition

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "DEPLOY.md"
SHELL_LANGUAGES = frozenset({"sh", "bash"})
UNINSTALL_SECTION = "Uninstall"
# Sections that must each hold a complete deploy run.
DEPLOY_SECTIONS = ("Deploy the functions", "Upgrade")
# The Broker is not Ready until its dead-letter sink resolves: this one is deployed first.
FIRST_FUNCTION = "dead-letters"
OPERATORS = frozenset({";", "|", "&&", "||", "&", "(", ")"})
FOR_LOOP = re.compile(r"\bfor\s+(\w+)\s+in\s+([^;\n]*?)\s*[;\n]\s*do\b(.*?)[;\n]\s*done\b", re.S)
MANIFEST_SUFFIXES = frozenset({".yaml", ".yml", ".json"})
APPLY_VERBS = frozenset({"apply", "create", "replace"})
TARGET_FLAGS = {"-f": "f", "--filename": "f", "-k": "k", "--kustomize": "k"}
# After "phase": `Name`s joined by commas, arrows, slashes, "then", "or", "and".
PHASE_SEPARATOR = r"(?:\s*(?:,|→|->|/)\s*|\s+)(?:(?:then|or|and)\s+)?"
PHASE_RUN = re.compile(rf"\bphases?\b[\s:`]+(`?[A-Z][a-z]+`?(?:{PHASE_SEPARATOR}`?[A-Z][a-z]+`?)*)")
CAPITALIZED = re.compile(r"[A-Z][a-z]+")
BACKTICKED = re.compile(r"`([A-Z][a-zA-Z]+)`")
SENTENCE_BREAK = re.compile(r"[.!?]\s|\n\s*\n|\||\n(?=\s*#)")

Command = list[str]


@dataclass(frozen=True)
class ShellBlock:
    """One fenced shell block and the ``##`` section it is in."""

    section: str
    text: str

    def commands(self) -> list[Command]:
        """The block's simple commands, in order."""
        return split_commands(self.text)


# Reading the doc


def read_shell_blocks(markdown: str) -> list[ShellBlock]:
    """Every fenced ``sh`` block with its section; headings inside any fence are not headings."""
    blocks: list[ShellBlock] = []
    lines: list[str] = []
    section, fence = "", None
    for line in markdown.splitlines():
        if fence is None and line.startswith("```"):
            fence, lines = line[3:].strip(), []
        elif fence is not None and line.startswith("```"):
            if fence in SHELL_LANGUAGES:
                blocks.append(ShellBlock(section, "\n".join(lines)))
            fence = None
        elif fence is not None:
            lines.append(line)
        elif line.startswith("## "):
            section = line[3:].strip()
    return blocks


def is_uninstall(block: ShellBlock) -> bool:
    """Whether the block belongs to the uninstall section."""
    return UNINSTALL_SECTION in block.section


def split_commands(text: str) -> list[Command]:
    """Simple commands: continuations joined, comments dropped, loops expanded, operators split."""
    text = expand_for_loops(strip_comments(text.replace("\\\n", " ")))
    commands: list[Command] = [[]]
    for line in text.splitlines():
        for token in [*tokenize(line), ";"]:
            if token in OPERATORS:
                commands.append([])
            else:
                commands[-1].append(token)
    return [command for command in commands if command]


def strip_comments(text: str) -> str:
    """Drop ``# ...`` that starts a line or follows a blank, as the shell does."""
    return re.sub(r"(^|\s)#.*$", "", text, flags=re.M)


def expand_for_loops(text: str) -> str:
    """``for f in a b; do X $f; done`` -> ``X a`` and ``X b`` on their own lines."""

    def expand(match: re.Match[str]) -> str:
        variable, items, body = match.groups()
        reference = re.compile(rf"\$\{{{variable}\}}|\${variable}\b")
        return "\n".join(reference.sub(item, body) for item in items.split())

    return FOR_LOOP.sub(expand, text)


def tokenize(line: str) -> list[str]:
    """Shell words of one line, quotes removed, operators as tokens of their own."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    return list(lexer)


# What the commands do


def deployed_functions(commands: list[Command]) -> list[str]:
    """Functions deployed, in order (``make deploy FUNCTION=<name>``)."""
    return [
        word.partition("=")[2]
        for command in commands
        if command[:2] == ["make", "deploy"]
        for word in command
        if word.startswith("FUNCTION=")
    ]


def removed_functions(commands: list[Command]) -> list[str]:
    """Functions removed (``func delete <name> ...``)."""
    return [command[2] for command in commands if command[:2] == ["func", "delete"]]


def kubectl_verb(command: Command) -> str | None:
    """The kubectl subcommand among apply/create/replace/delete, if the command is one."""
    if command[0] != "kubectl":
        return None
    return next((word for word in command if word in APPLY_VERBS | {"delete"}), None)


def kubectl_targets(command: Command) -> list[tuple[str, str]]:
    """``("f" | "k", path)`` for each -f/--filename/-k/--kustomize argument."""
    targets = []
    for index, word in enumerate(command):
        flag, equals, value = word.partition("=")
        if flag in TARGET_FLAGS:
            path = value if equals else (command[index + 1] if index + 1 < len(command) else "")
            targets.append((TARGET_FLAGS[flag], path))
    return targets


def expand_target(root: Path, kind: str, path: str, recursive: bool) -> set[Path]:
    """The files kubectl reads for one argument (run from ``root``)."""
    target = (root / path).resolve()
    if kind == "k":
        return {manifest.path.resolve() for manifest in load_manifests(target)}
    if not target.is_dir():
        return {target}
    files = target.rglob("*") if recursive else target.iterdir()
    return {file.resolve() for file in files if file.suffix in MANIFEST_SUFFIXES}


def touched_files(root: Path, blocks: list[ShellBlock], verbs: frozenset[str]) -> set[Path]:
    """Files the blocks' kubectl commands with one of ``verbs`` read."""
    files: set[Path] = set()
    for command in (c for block in blocks for c in block.commands()):
        if kubectl_verb(command) in verbs:
            recursive = "-R" in command or "--recursive" in command
            for kind, path in kubectl_targets(command):
                files |= expand_target(root, kind, path, recursive)
    return files


# What the repository holds


def manifest_files(root: Path) -> set[Path]:
    """Every manifest file under knative/ (kustomization files excluded)."""
    return {
        path.resolve()
        for path in (root / "knative").rglob("*")
        if path.suffix in MANIFEST_SUFFIXES and path.name not in KUSTOMIZATION_NAMES
    }


def kustomized_files(root: Path) -> set[Path]:
    """Files that ``kubectl apply -k knative/`` applies."""
    return expand_target(root, "k", "knative", recursive=False)


def crd_phases(root: Path) -> set[str]:
    """The ``status.phase`` enum of every version of the SecurityEvent CRD."""
    crd = yaml.safe_load((root / "knative" / "crds" / "securityevents.yaml").read_text())
    schemas = [version["schema"]["openAPIV3Schema"] for version in crd["spec"]["versions"]]
    status = [schema["properties"]["status"]["properties"] for schema in schemas]
    return {phase for properties in status for phase in properties["phase"]["enum"]}


# The checks: each returns the problems it found, [] when the doc is right


def find_deploy_problems(blocks: list[ShellBlock], functions: set[str]) -> list[str]:
    """Every deploy run deploys every function, ``dead-letters`` first; each section has one."""
    runs = [(b.section, deployed_functions(b.commands())) for b in blocks if not is_uninstall(b)]
    runs = [(section, names) for section, names in runs if names]
    problems = [f"no deploy run in section {s!r}" for s in DEPLOY_SECTIONS
                if not any(s in section for section, _ in runs)]  # fmt: skip
    for section, names in runs:
        problems += compare_functions(f"{section!r} deploys", names, functions)
        if names[0] != FIRST_FUNCTION:
            problems.append(f"{section!r} deploys {names[0]} before {FIRST_FUNCTION}")
    return problems


def find_removal_problems(blocks: list[ShellBlock], functions: set[str]) -> list[str]:
    """The uninstall removes every function, and only functions that exist."""
    names = [name for b in blocks if is_uninstall(b) for name in removed_functions(b.commands())]
    return compare_functions("the uninstall removes", names, functions)


def compare_functions(what: str, names: list[str], functions: set[str]) -> list[str]:
    """Problems when ``names`` misses a function or names one that does not exist."""
    problems = [f"{what} no {name}" for name in sorted(functions - set(names))]
    return problems + [f"{what} unknown {name}" for name in sorted(set(names) - functions)]


def find_uncovered_manifests(root: Path, markdown: str) -> list[str]:
    """Manifests neither applied nor, when outside the kustomization, named in the doc."""
    applied = touched_files(root, read_shell_blocks(markdown), APPLY_VERBS)
    outside = manifest_files(root) - kustomized_files(root)
    named = {path for path in outside if relative(root, path) in markdown}
    return sorted(relative(root, path) for path in manifest_files(root) - applied - named)


def find_undeleted_manifests(root: Path, markdown: str) -> list[str]:
    """knative/ files that the doc applies and its uninstall does not delete."""
    blocks = read_shell_blocks(markdown)
    applied = touched_files(root, [b for b in blocks if not is_uninstall(b)], APPLY_VERBS)
    deleted = touched_files(root, [b for b in blocks if is_uninstall(b)], frozenset({"delete"}))
    return sorted(relative(root, path) for path in (applied & manifest_files(root)) - deleted)


def named_phases(markdown: str) -> set[str]:
    """Phases the text names: words after "phase(s)", and backticked names near the word."""
    names: set[str] = set()
    for sentence in SENTENCE_BREAK.split(markdown):
        if re.search(r"\bphases?\b", sentence):
            names.update(BACKTICKED.findall(sentence))
            for run in PHASE_RUN.findall(sentence):
                names.update(CAPITALIZED.findall(run))
    return names


def relative(root: Path, path: Path) -> str:
    """``knative/...`` as the doc writes it."""
    return path.relative_to(root.resolve()).as_posix()


# The committed doc


def read_doc() -> str:
    """docs/DEPLOY.md."""
    return DOC.read_text(encoding="utf-8")


def test_every_function_is_deployed_dead_letters_first(
    functions: dict[str, FunctionDefinition],
) -> None:
    assert find_deploy_problems(read_shell_blocks(read_doc()), set(functions)) == []


def test_every_function_is_removed_in_the_uninstall(
    functions: dict[str, FunctionDefinition],
) -> None:
    assert find_removal_problems(read_shell_blocks(read_doc()), set(functions)) == []


def test_every_manifest_is_applied_or_named() -> None:
    assert find_uncovered_manifests(ROOT, read_doc()) == []
    assert (ROOT / "knative" / "ingest-token-secret.yaml").resolve() not in kustomized_files(ROOT)


def test_every_applied_manifest_is_deleted_in_the_uninstall() -> None:
    assert find_undeleted_manifests(ROOT, read_doc()) == []


def test_every_phase_the_doc_names_exists_in_the_crd() -> None:
    phases = crd_phases(ROOT)
    assert phases == set(typing.get_args(Phase))  # the CRD and the code agree
    named = named_phases(read_doc())
    assert named, "the doc names no phase: the check would prove nothing"
    assert named - phases == set()


def test_doc_shows_the_enforcement_switch_and_what_runs_without_it(
    functions: dict[str, FunctionDefinition],
) -> None:
    doc = " ".join(read_doc().split())
    assert quarantining.UNENFORCED_CAVEAT in doc
    switch = f'{{name: {quarantining.ENFORCED_VARIABLE}, value: "false"}}'
    func_yaml = functions["executor-quarantine"].folder / "func.yaml"
    assert switch in doc and switch in func_yaml.read_text(encoding="utf-8")


# The checks catch what they are for


SAMPLE = """## 5. Deploy the functions

```sh
make deploy FUNCTION=dead-letters REGISTRY=r
for f in matcher \\
         timer; do
  make deploy FUNCTION=$f REGISTRY=r   # one at a time
done
kubectl apply -k knative/
```

## 10. Upgrade

```sh
for f in matcher dead-letters timer; do make deploy FUNCTION=${f} REGISTRY=r; done
```

## 11. Uninstall

```sh
for f in matcher timer; do func delete $f -n amtd-system; done
kubectl delete -f knative/crds/ -f knative/sources.yaml
```
"""


def test_shell_blocks_are_read_as_the_shell_would() -> None:
    install, upgrade, uninstall = read_shell_blocks(SAMPLE)
    assert install.section == "5. Deploy the functions" and is_uninstall(uninstall)
    assert deployed_functions(install.commands()) == ["dead-letters", "matcher", "timer"]
    assert deployed_functions(upgrade.commands()) == ["matcher", "dead-letters", "timer"]
    assert removed_functions(uninstall.commands()) == ["matcher", "timer"]
    assert install.commands()[-1] == ["kubectl", "apply", "-k", "knative/"]


def test_deploy_check_catches_order_and_a_function_the_doc_lacks() -> None:
    problems = find_deploy_problems(read_shell_blocks(SAMPLE), {"dead-letters", "matcher", "timer"})
    assert problems == ["'10. Upgrade' deploys matcher before dead-letters"]
    added = find_deploy_problems(read_shell_blocks(read_doc()), {"dead-letters", "executor-new"})
    assert "'5. Deploy the functions' deploys no executor-new" in added
    assert "'10. Upgrade' deploys no executor-new" in added


def test_removal_check_catches_a_function_the_uninstall_lacks(
    functions: dict[str, FunctionDefinition],
) -> None:
    sample = find_removal_problems(read_shell_blocks(SAMPLE), {"dead-letters", "matcher", "timer"})
    assert sample == ["the uninstall removes no dead-letters"]
    added = find_removal_problems(read_shell_blocks(read_doc()), {*functions, "executor-new"})
    assert added == ["the uninstall removes no executor-new"]


def test_manifest_checks_catch_a_new_file(project_copy: Path) -> None:
    (project_copy / "knative" / "extra.yaml").write_text("kind: ConfigMap\n", encoding="utf-8")
    assert find_uncovered_manifests(project_copy, read_doc()) == ["knative/extra.yaml"]
    named = read_doc() + "\n`knative/extra.yaml` is a template.\n"
    assert find_uncovered_manifests(project_copy, named) == []


def test_deletion_check_catches_a_kustomized_file_the_uninstall_misses(project_copy: Path) -> None:
    extra = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra, namespace: amtd-system}\n"
    (project_copy / "knative" / "extra.yaml").write_text(extra, encoding="utf-8")
    kustomization = project_copy / "knative" / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text() + "  - extra.yaml\n", encoding="utf-8")
    assert find_uncovered_manifests(project_copy, read_doc()) == []  # applied by -k knative/
    assert find_undeleted_manifests(project_copy, read_doc()) == ["knative/extra.yaml"]
    undeleted = find_undeleted_manifests(project_copy, SAMPLE)
    assert "knative/broker.yaml" in undeleted and "knative/sources.yaml" not in undeleted


def test_phase_check_catches_a_phase_the_crd_lacks() -> None:
    text = "kubectl get securityevents -w   # phase Decided, then Executed\n"
    assert named_phases(text) == {"Decided", "Executed"}
    assert named_phases("The phases are `Decided` (waiting) and `Failed`.") == {"Decided", "Failed"}
    assert named_phases("Decided events are logged.") == set()
