"""Authentication, impersonation and RBAC for each request, as the dispatcher asks for them.

With ``enforcing`` off (the default of a bare stand-in, for tests that play many identities),
the bearer token (or Impersonate-User) is the user's name and everything is allowed, as before.
With it on (the local stack), only tokens the server issued authenticate (else 401), an
impersonation needs the ``impersonate`` right (system:masters has it), and every request is
authorized by the stored RBAC (``authorizing``), whose index is rebuilt after an RBAC write.
/healthz, /livez, /readyz and /version answer anyone, as the bootstrap role
system:public-info-viewer lets them on a real server.
"""

from __future__ import annotations

from .authenticating import (
    ANONYMOUS,
    SERVICE_ACCOUNT_PREFIX,
    Credential,
    HeaderLines,
    HeaderValues,
    Tokens,
    UserInfo,
    collect_headers,
    first,
    impersonated_user,
    is_self_impersonation,
    master_user,
    read_impersonation,
    read_token,
    unauthorized,
)
from .authorizing import (
    RBAC_GROUP,
    Attributes,
    RbacCache,
    RbacIndex,
    build_index,
    decide,
    forbidden,
)
from .storing import Store, StoreEvent

PUBLIC_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version"})
NON_RESOURCE_VERBS = {"GET": "get", "HEAD": "get", "POST": "post", "PUT": "put",
                      "PATCH": "patch", "DELETE": "delete"}  # fmt: skip
RBAC_KINDS = ("roles", "clusterroles", "rolebindings", "clusterrolebindings")


def open_user(headers: HeaderValues) -> str:
    """The user a request acts as when nothing is enforced: Impersonate-User, else the bearer
    token, else system:anonymous."""
    if impersonated := first(headers, "Impersonate-User"):
        return impersonated
    scheme, _, token = first(headers, "Authorization").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else ANONYMOUS


def load_index(store: Store) -> RbacIndex:
    """The RBAC index from what the store holds now."""
    roles, cluster_roles, bindings, cluster_bindings = (
        store.items((RBAC_GROUP, kind)) for kind in RBAC_KINDS
    )
    return build_index(roles, cluster_roles, bindings, cluster_bindings)


class Security:
    """Who asks (``identify``) and whether they may (``authorize``), for one server."""

    def __init__(self, store: Store, tokens: Tokens, enforcing: bool = False) -> None:
        self.tokens = tokens
        self.enforcing = enforcing
        self.rbac = RbacCache(lambda: load_index(store))
        store.add_listener(self._on_change)

    def _on_change(self, event: StoreEvent) -> None:
        if event.kind_key[0] == RBAC_GROUP:
            self.rbac.invalidate()

    def identify(self, lines: HeaderLines, path: str) -> Credential:
        """The credential a request carries (impersonation applied); 401 or 403 if refused."""
        headers = collect_headers(lines)
        if not self.enforcing:
            name = open_user(headers)
            return Credential(name, master_user(name))
        token = read_token(headers)
        credential = self.tokens.lookup(token) if token else None
        if credential is None:
            if path in PUBLIC_PATHS:
                return Credential(ANONYMOUS, UserInfo(ANONYMOUS))
            raise unauthorized()
        name, groups, extras = read_impersonation(headers)
        if not name or is_self_impersonation(credential.user, name, groups):
            return credential
        return self._impersonate(credential.user, name, groups, extras)

    def _impersonate(
        self, caller: UserInfo, name: str, groups: tuple[str, ...], extras: dict[str, str]
    ) -> Credential:
        """Each part asked for must be allowed (verb impersonate), as upstream checks it."""
        wanted = [Attributes(caller, "impersonate", resource="users", name=name)]
        if name.startswith(SERVICE_ACCOUNT_PREFIX):
            namespace, _, account = name[len(SERVICE_ACCOUNT_PREFIX) :].partition(":")
            wanted = [Attributes(caller, "impersonate", resource="serviceaccounts",
                                 namespace=namespace, name=account)]  # fmt: skip
        wanted += [Attributes(caller, "impersonate", resource="groups", name=g) for g in groups]
        wanted += [
            Attributes(caller, "impersonate", "authentication.k8s.io", "userextras", key, name=v)
            for key, v in extras.items()
        ]
        for attrs in wanted:
            self._require(attrs)
        user = impersonated_user(name, groups)
        extra = {key: (value,) for key, value in extras.items()}
        return Credential(name, UserInfo(user.name, user.groups, extra))

    def _require(self, attrs: Attributes) -> None:
        allowed, reason = decide(self.rbac.index(), attrs)
        if not allowed:
            raise forbidden(attrs, reason)

    def authorize(self, attrs: Attributes) -> None:
        """403 Forbidden, worded as upstream, unless the RBAC allows the request."""
        if self.enforcing:
            self._require(attrs)

    def authorize_path(self, user: UserInfo, method: str, path: str) -> None:
        """A non-resource request (discovery, OpenAPI, version); 403 if not allowed."""
        if self.enforcing and path not in PUBLIC_PATHS:
            verb = NON_RESOURCE_VERBS.get(method, method.lower())
            self._require(Attributes(user, verb, path=path, resource_request=False))

    def index(self) -> RbacIndex:
        """The current RBAC index (for the reviews)."""
        return self.rbac.index()


def request_attributes(
    user: UserInfo, verb: str, group: str, resource: str, subresource: str,
    namespace: str, name: str, field_selector: str = "",
) -> Attributes:  # fmt: skip
    """A resource request's attributes as upstream's RequestInfo derives them: a namespace's own
    namespace is its name; a list or watch narrowed by ``metadata.name=`` names its object."""
    if resource == "namespaces" and name and not namespace:
        namespace = name
    if verb in ("list", "watch") and not name:
        for term in field_selector.split(","):
            key, _, value = term.partition("=")
            if key.strip() == "metadata.name" and not value.startswith("="):
                name = value.strip()
    return Attributes(user, verb, group, resource, subresource, namespace, name)
