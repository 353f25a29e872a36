"""REST verbs on the store: create, get, list, update, patch, delete, deletecollection.

HTTP-agnostic: callers pass a `Target` and decoded bodies (a write takes ownership of its body),
and get objects or `ApiError`s. Answers are views sharing parts with the store: encode them,
never change them (stored objects are only ever replaced, so a view stays consistent).
Every read-modify-write runs under the store lock. Status subresource rules: writes to the main
resource keep the stored `.status`; writes to `/status` change only `.status` (and never bump
generation). Create keeps a client-supplied status for built-ins (handy for fixtures) but drops it
for custom resources with a status subresource, as the real server does. Every write with a
field manager records its managedFields entry (managedfields.py); an apply patch is merged by
serverside.py, then admitted and stored like any other write.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from amtd.model.objects import Object

from . import definitions, deleting, ephemeralcontainers, managedfields, paging, serverside
from .admitting import admit
from .apierrors import ApiError, already_exists, bad_request, conflict, not_found, success_status
from .paging import WHOLE, Page
from .patching import apply_patch
from .resources import SUBRESOURCE_PATHS, Registry, ResourceType
from .selectors import is_selected, parse_field_selector, parse_label_selector
from .stamping import check_update_target, now_rfc3339, stamp_created, stamp_updated
from .storing import KindKey, Store


@dataclass(frozen=True)
class WriteOptions:
    """Query options of a write: dryRun, fieldValidation (Strict, Warn or Ignore), and the
    field manager (fieldManager or the User-Agent; "" records no managedFields entry) and force
    (server-side apply)."""

    dry_run: bool = False
    strict: bool = False
    # fieldValidation=Warn: the unknown fields dropped, for Warning headers (None: Ignore)
    warnings: list[str] | None = field(default=None, compare=False)
    manager: str = ""
    force: bool = False


NO_OPTIONS = WriteOptions()
Entries = list[Object]  # managedFields (an alias: Api.list shadows `list` in the class)

# Kinds whose DELETE answers with the object (as upstream's registries do), not a Status.
RETURNS_DELETED = frozenset({"Pod", "Service", "ServiceAccount", "ResourceQuota"})


@dataclass(frozen=True)
class Target:
    """What a request addresses: type, namespace ("" = cluster or all), name, subresource."""

    rtype: ResourceType
    namespace: str = ""
    name: str = ""
    subresource: str = ""

    @property
    def kind_key(self) -> KindKey:
        """Storage key of the addressed type."""
        return (self.rtype.group, self.rtype.plural)


def present(rtype: ResourceType, obj: Object) -> Object:
    """The stored object as served at rtype's version (apiVersion rewritten, deep copy)."""
    out = copy.deepcopy(obj)
    out["apiVersion"], out["kind"] = rtype.api_version, rtype.kind
    return out


def view(rtype: ResourceType, obj: Object) -> Object:
    """:func:`present` for reads that are only encoded: a shallow copy sharing its parts with
    the store (stored objects are never changed in place), so a GET copies nothing deep."""
    return {**obj, "apiVersion": rtype.api_version, "kind": rtype.kind}


def _check_body(rtype: ResourceType, body: Any) -> Object:
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    if not isinstance(body.setdefault("metadata", {}), dict):
        raise bad_request("metadata must be a JSON object")
    api_version, kind = body.get("apiVersion"), body.get("kind")
    if api_version and api_version != rtype.api_version:
        raise bad_request(
            f"the API version in the data ({api_version}) does not match the expected "
            f"API version ({rtype.api_version})"
        )
    if kind and kind != rtype.kind:
        raise bad_request(
            f"the kind in the data ({kind}) does not match the expected kind ({rtype.kind})"
        )
    return body


def _merge_subresource(old: Object, new: Object, subresource: str, shared: bool) -> Object:
    """`old` with only the subresource's part taken from `new` (which the caller owns). With
    `shared` (the result is pruned: a custom resource), it shares the parts of `old` outside
    that path and its metadata is copied; else it is a deep copy."""
    path = SUBRESOURCE_PATHS.get(subresource)
    if path is None:
        raise ApiError(
            405, f"subresource {subresource!r} does not accept writes", "MethodNotAllowed"
        )
    merged = {**old, "metadata": copy.deepcopy(old["metadata"])} if shared else copy.deepcopy(old)
    src, dst = new, merged
    for part in path[:-1]:
        src = src.get(part) or {} if isinstance(src, dict) else {}
        dst[part] = dst = dict(dst.get(part) or {}) if shared else dst.setdefault(part, {})
    if isinstance(src, dict) and path[-1] in src:
        dst[path[-1]] = src[path[-1]] if shared else copy.deepcopy(src[path[-1]])
    else:
        dst.pop(path[-1], None)
    merged["metadata"]["resourceVersion"] = new["metadata"].get("resourceVersion")
    return merged


class Api:
    """The verbs, bound to one store and registry."""

    def __init__(self, store: Store, registry: Registry) -> None:
        self.store = store
        self.registry = registry

    def _existing(self, target: Target) -> Object:
        obj = self.store.get(target.kind_key, target.namespace, target.name)
        if obj is None:
            raise not_found(target.rtype.plural, target.name, target.rtype.group)
        return obj

    def _check_namespace(self, target: Target) -> None:
        if not target.rtype.namespaced:
            return
        ns = self.store.get(deleting.NAMESPACES, "", target.namespace)
        if ns is None:
            raise not_found("namespaces", target.namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise ApiError(
                403,
                f'{target.rtype.plural} "{target.name}" is forbidden: unable to create new content '
                f"in namespace {target.namespace} because it is being terminated",
                "Forbidden",
            )

    def create(
        self, target: Target, body: Any, options: WriteOptions = NO_OPTIONS,
        entries: Entries | None = None,
    ) -> Object:  # fmt: skip
        """POST: 201 semantics; 409 AlreadyExists, 404 if the namespace is missing. The
        managedFields are `entries` (an apply's) or the manager's Update of every field set."""
        rtype = target.rtype
        obj = _check_body(rtype, body)
        if rtype.is_custom and "status" in rtype.subresources:
            obj.pop("status", None)
        with self.store.lock:
            self._check_namespace(target)
            for _attempt in range(5):  # generateName may collide; retry like the real server
                stamp_created(rtype, obj, target.namespace)
                if self.store.get(target.kind_key, target.namespace, obj["metadata"]["name"]):
                    if obj["metadata"].get("generateName"):
                        obj["metadata"].pop("name")
                        continue
                    raise already_exists(rtype.plural, obj["metadata"]["name"], rtype.group)
                break
            obj = admit(rtype, obj, options.strict, options.warnings)
            if entries is None and options.manager:
                who = (options.manager, rtype.api_version, "")
                entries = managedfields.record_update(
                    [], {}, obj, who, now_rfc3339(), rtype.is_custom
                )
            if entries:
                obj["metadata"]["managedFields"] = entries
            if not options.dry_run:
                obj = self.store.write(target.kind_key, obj)
                self._after_write(rtype, obj)
            return view(rtype, obj)

    def _after_write(self, rtype: ResourceType, obj: Object) -> None:
        if rtype.group == definitions.CRD_GROUP and rtype.kind == definitions.CRD_KIND:
            self.registry.unregister_crd(obj["metadata"]["name"])
            self.registry.register(definitions.resource_types(obj))

    def get(self, target: Target) -> Object:
        """GET one object (also for `/status`), as a :func:`view`: encode it, never change it."""
        return view(target.rtype, self._existing(target))

    def list(
        self, target: Target, label_selector: str = "", field_selector: str = "",
        page: Page = WHOLE,
    ) -> Object:  # fmt: skip
        """GET a collection, filtered by selectors, with the list's resourceVersion (items are
        :func:`view` s: encode them, never change them); ``page``: limit/continue chunking."""
        labels = parse_label_selector(label_selector)
        fields = parse_field_selector(field_selector, target.rtype.kind)
        with self.store.lock:
            items = self.store.items(target.kind_key, target.namespace or None)
            rv = self.store.rv
        selected = [o for o in items if is_selected(o, labels, fields)]
        chunk, metadata = paging.cut_page(selected, page, rv)
        return {
            "kind": f"{target.rtype.kind}List",
            "apiVersion": target.rtype.api_version,
            "metadata": metadata,
            "items": [view(target.rtype, o) for o in chunk],
        }

    def update(self, target: Target, body: Any, options: WriteOptions = NO_OPTIONS) -> Object:
        """PUT: 409 Conflict on a stale resourceVersion, 404 if missing."""
        with self.store.lock:
            old = self._existing(target)
            new = check_update_target(target.rtype, body, target.namespace, target.name)
            _check_body(target.rtype, new)
            return self._replace(target, old, new, options)

    def patch(
        self, target: Target, patch: Any, content_type: str, options: WriteOptions = NO_OPTIONS
    ) -> Object:
        """PATCH with merge, JSON or strategic-merge (see patching.py), or an apply patch (see
        :meth:`apply`, which also answers whether it created); 415 for other types."""
        if content_type == serverside.APPLY_PATCH:
            return self.apply(target, patch, options)[1]
        with self.store.lock:
            old = self._existing(target)
            shared = target.rtype.is_custom  # pruned when admitted: parts may be shared
            new = apply_patch(view(target.rtype, old), patch, content_type, shared)
            new = check_update_target(target.rtype, new, target.namespace, target.name)
            _check_body(target.rtype, new)
            return self._replace(target, old, new, options)

    def apply(self, target: Target, body: Any, options: WriteOptions) -> tuple[bool, Object]:
        """Server-side apply (serverside.py): (whether it created the object, the object)."""
        rtype = target.rtype
        applied = _check_body(rtype, serverside.check_applied(body))
        check_update_target(rtype, copy.deepcopy(applied), target.namespace, target.name)
        has_status = "status" in rtype.subresources
        applied = serverside.applied_part(applied, target.subresource, has_status)
        applier = serverside.Applier(
            options.manager, rtype.api_version, options.force, rtype.is_custom, target.subresource
        )
        with self.store.lock:
            old = self.store.get(target.kind_key, target.namespace, target.name)
            live = None if old is None else present(rtype, old)
            new, entries = serverside.apply_configuration(live, applied, applier, now_rfc3339())
            new = check_update_target(rtype, new, target.namespace, target.name)
            if old is None and target.subresource:
                raise not_found(rtype.plural, target.name, rtype.group)
            if old is None:
                return True, self.create(target, new, options, entries)
            return False, self._replace(target, old, new, options, entries)

    def _replace(
        self, target: Target, old: Object, new: Object, options: WriteOptions,
        entries: Entries | None = None,
    ) -> Object:  # fmt: skip
        rtype = target.rtype
        sent = managedfields.entries_of(new) if "managedFields" in new["metadata"] else None
        sent_rv = new["metadata"].get("resourceVersion")
        if sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
            raise conflict(rtype.plural, target.name, rtype.group)
        if target.subresource == ephemeralcontainers.SUBRESOURCE:
            merged = _merge_subresource(old, new, target.subresource, shared=False)
            new = ephemeralcontainers.admit_ephemeral_containers(old, merged)
        elif target.subresource:
            new = _merge_subresource(old, new, target.subresource, rtype.is_custom)
        elif "status" in rtype.subresources:
            new["status"] = copy.deepcopy(old.get("status"))
            if new["status"] is None:
                new.pop("status")
        new = admit(rtype, stamp_updated(rtype, old, new), options.strict, options.warnings, old)
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        if entries is None:
            entries = self._recorded(target, old, new, options, sent)
        if entries:
            new["metadata"]["managedFields"] = entries
        if new == old or options.dry_run:
            return view(rtype, new)  # a no-op write keeps the resourceVersion, as upstream
        stored, exists = deleting.finalize_or_write(self.store, self.registry, target.kind_key, new)
        if exists:
            self._after_write(rtype, stored)
        return view(rtype, stored)

    @staticmethod
    def _recorded(
        target: Target, old: Object, new: Object, options: WriteOptions, sent: Entries | None
    ) -> Entries:
        """The managedFields after a non-apply write: the sent ones (as upstream, `[]` resets
        them), else the stored ones, with the manager's Update of what the write changed."""
        entries = managedfields.entries_of(old) if sent is None else sent
        if not options.manager:
            return entries
        who = (options.manager, target.rtype.api_version, target.subresource)
        return managedfields.record_update(
            entries, old, new, who, now_rfc3339(), target.rtype.is_custom
        )

    def delete(self, target: Target, options: dict[str, Any]) -> tuple[int, Object]:
        """DELETE one object: 200 with the object if finalizers keep it (or the kind always
        answers with it), else a Success Status."""
        policy = deleting.propagation_policy(options, target.kind_key)
        with self.store.lock:
            obj = self._existing(target)
            self._check_preconditions(target, obj, options.get("preconditions") or {})
            if options.get("dryRun"):
                return 200, view(target.rtype, obj)
            stored, exists = deleting.request_deletion(
                self.store, self.registry, target.kind_key, obj, policy
            )
        if exists or target.rtype.kind in RETURNS_DELETED or target.rtype.is_custom:
            return 200, view(target.rtype, stored)
        return 200, success_status(
            {
                "name": target.name,
                "group": target.rtype.group,
                "kind": target.rtype.plural,
                "uid": obj["metadata"]["uid"],
            }
        )

    def _check_preconditions(self, target: Target, obj: Object, pre: dict[str, Any]) -> None:
        meta = obj["metadata"]
        uid, rv = pre.get("uid"), pre.get("resourceVersion")
        if (uid and uid != meta["uid"]) or (rv and rv != meta["resourceVersion"]):
            raise conflict(target.rtype.plural, target.name, target.rtype.group)

    def delete_collection(
        self, target: Target, label_selector: str, field_selector: str, options: dict[str, Any]
    ) -> Object:
        """DELETE a collection: every selected object, as a List of what was deleted."""
        policy = deleting.propagation_policy(options, target.kind_key)
        listed = self.list(target, label_selector, field_selector)
        with self.store.lock:
            for item in listed["items"]:
                meta = item["metadata"]
                obj = self.store.get(target.kind_key, meta.get("namespace", ""), meta["name"])
                if obj is not None:
                    deleting.request_deletion(
                        self.store, self.registry, target.kind_key, obj, policy
                    )
        return listed
