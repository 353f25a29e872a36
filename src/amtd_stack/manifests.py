"""Loading the committed manifests: a small kustomization reader (``resources`` and ``namespace``).

Only what the project uses is supported; any other kustomize feature (patches, generators,
namePrefix, ...) refuses to load, naming the file and field, rather than being silently ignored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from amtd_stack.errors import ManifestError

DEFAULT_NAMESPACE = "default"  # where kubectl places a namespaced object without one
KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
KUSTOMIZATION_FIELDS = frozenset({"apiVersion", "kind", "metadata", "resources", "namespace"})
# Built-in cluster-scoped kinds; CRDs in the same set add their own cluster-scoped kinds.
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "Namespace",
        "CustomResourceDefinition",
        "ClusterRole",
        "ClusterRoleBinding",
        "PersistentVolume",
        "StorageClass",
        "PriorityClass",
        "Node",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
        "APIService",
    }
)


@dataclass(frozen=True)
class Manifest:
    """One object from the manifests and the file it came from."""

    obj: dict[str, Any]
    path: Path
    namespace_override: str | None = None

    @property
    def api_version(self) -> str:
        """The object's apiVersion."""
        return str(self.obj["apiVersion"])

    @property
    def kind(self) -> str:
        """The object's kind."""
        return str(self.obj["kind"])

    @property
    def name(self) -> str:
        """metadata.name."""
        return str(self.obj["metadata"]["name"])

    @property
    def namespace(self) -> str:
        """metadata.namespace, or "" when unset (cluster-scoped or defaulted later)."""
        return str(self.obj["metadata"].get("namespace") or "")

    @property
    def spec(self) -> dict[str, Any]:
        """The object's spec ({} when absent)."""
        spec = self.obj.get("spec") or {}
        return spec if isinstance(spec, dict) else {}

    def describe(self) -> str:
        """``Kind namespace/name`` for messages."""
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"

    def refuse(self, field: str, problem: str) -> ManifestError:
        """A ManifestError naming this object's file, the object and the field."""
        return ManifestError(field, f"{self.describe()}: {problem}", self.path)


def namespace_of(manifest: Manifest) -> str:
    """The object's namespace, ``default`` when unset (as kubectl would place it)."""
    return manifest.namespace or DEFAULT_NAMESPACE


def find_kustomization(directory: Path) -> Path:
    """The kustomization file of a directory; ManifestError when there is none."""
    for name in KUSTOMIZATION_NAMES:
        if (directory / name).is_file():
            return directory / name
    raise ManifestError("resources", f"directory {directory} has no kustomization.yaml")


def load_manifests(directory: Path) -> list[Manifest]:
    """All objects of ``directory``'s kustomization, namespaces applied, duplicates refused."""
    manifests = read_kustomization(find_kustomization(directory), ())
    cluster_kinds = CLUSTER_SCOPED_KINDS | cluster_scoped_crd_kinds(manifests)
    placed = [place_namespace(m, cluster_kinds) for m in manifests]
    refuse_duplicates(placed)
    return placed


def read_kustomization(path: Path, parents: tuple[Path, ...]) -> list[Manifest]:
    """Objects listed under ``resources`` (files or directories), recursively."""
    if path.resolve() in parents:
        raise ManifestError("resources", "kustomizations include each other in a cycle", path)
    document = read_yaml_documents(path)
    config = document[0] if len(document) == 1 and isinstance(document[0], dict) else None
    if config is None:
        raise ManifestError("(document)", "must be one YAML mapping", path)
    unsupported = sorted(set(config) - KUSTOMIZATION_FIELDS)
    if unsupported:
        problem = "this kustomize feature is not supported by amtd_stack"
        raise ManifestError(unsupported[0], problem, path)
    manifests: list[Manifest] = []
    for index, entry in enumerate(config.get("resources") or []):
        manifests += read_resource(path, entry, f"resources[{index}]", (*parents, path.resolve()))
    namespace = config.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        raise ManifestError("namespace", "must be a string", path)
    return [replace(m, namespace_override=namespace) for m in manifests] if namespace else manifests


def read_resource(
    kustomization: Path, entry: Any, field: str, parents: tuple[Path, ...]
) -> list[Manifest]:
    """One ``resources`` entry: a YAML file of objects or a directory with a kustomization."""
    if not isinstance(entry, str) or "://" in entry or entry.startswith("git@"):
        raise ManifestError(field, f"{entry!r} must be a local file or directory", kustomization)
    target = kustomization.parent / entry
    if target.is_dir():
        return read_kustomization(find_kustomization(target), parents)
    if not target.is_file():
        raise ManifestError(field, f"{entry} does not exist", kustomization)
    return [check_object(doc, target) for doc in read_yaml_documents(target) if doc is not None]


def read_yaml_documents(path: Path) -> list[Any]:
    """All YAML documents of a file; ManifestError on a syntax error."""
    try:
        return list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except yaml.YAMLError as error:
        raise ManifestError("(yaml)", f"not valid YAML: {error}", path) from error


def check_object(document: Any, path: Path) -> Manifest:
    """A Kubernetes-shaped object: apiVersion, kind, metadata.name."""
    if not isinstance(document, dict):
        raise ManifestError("(document)", "every document must be a mapping", path)
    for key in ("apiVersion", "kind"):
        if not isinstance(document.get(key), str) or not document[key]:
            raise ManifestError(key, "is required", path)
    metadata = document.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
        raise ManifestError("metadata.name", f"is required on {document['kind']}", path)
    return Manifest(document, path)


def cluster_scoped_crd_kinds(manifests: Iterable[Manifest]) -> frozenset[str]:
    """Kinds that CRDs in the manifests declare with ``scope: Cluster``."""
    return frozenset(
        str(m.spec.get("names", {}).get("kind"))
        for m in manifests
        if m.kind == "CustomResourceDefinition" and m.spec.get("scope") == "Cluster"
    )


def place_namespace(manifest: Manifest, cluster_kinds: frozenset[str]) -> Manifest:
    """Apply the kustomization ``namespace`` to a namespaced object (a copy)."""
    if not manifest.namespace_override or manifest.kind in cluster_kinds:
        return manifest
    metadata = {**manifest.obj["metadata"], "namespace": manifest.namespace_override}
    return replace(manifest, obj={**manifest.obj, "metadata": metadata})


def refuse_duplicates(manifests: Iterable[Manifest]) -> None:
    """Two objects with the same apiVersion group, kind, namespace and name are an error."""
    seen: dict[tuple[str, str, str, str], Manifest] = {}
    for manifest in manifests:
        group = manifest.api_version.rpartition("/")[0]
        key = (group, manifest.kind, manifest.namespace, manifest.name)
        if key in seen:
            raise manifest.refuse("metadata.name", f"also defined in {seen[key].path}")
        seen[key] = manifest
