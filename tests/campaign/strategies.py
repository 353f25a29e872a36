"""Hostile HTTP requests, per entry point: what an attacker or a broken sender could send.

Every strategy yields a :class:`Request`. The mix per entry point: a well-formed request with one
hostile part (target, name, token, attribute), a damaged one (truncated, wrong types, missing
attributes), and plain garbage (random bytes, random JSON, 1 MiB+ bodies, odd methods and paths).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

from amtd.model.actionevents import ACTION_REQUESTED
from support.builders import FALCO_ALERT, KUBEARMOR_ALERT
from support.cloudevents import as_binary, as_structured
from support.ingesting import TOKEN


def make_oversize() -> bytes:
    """A body just over the 1 MiB limit (built on demand: never part of a repr)."""
    return b'{"pad": "' + b"x" * (1 << 20) + b'"}'


PING_SOURCE = "/apis/v1/namespaces/amtd-system/pingsources/"

ASCII = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60)
TRICKY_NAMES = [
    "..",
    "../etc",
    "../../kube-system/coredns",
    "%2F",
    "a%2Fb",
    "%2e%2e",
    "a/b",
    "/",
    "",
    " ",
    "x" * 300,
    "UPPER",
    "nul\x00l",
    "naïve",
    "-lead",
    "trail-",
    "a..b",
    "*",
    "?q=1",
    "#frag",
    "\\",
    "default",
    "kube-system",
    "a" * 64,
    "a" * 253,
    "a" * 254,
]
NAMESPACES = [
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "amtd-system",
    "knative-eventing",
    "knative-serving",
    "default",
    "shop",
    "attacker",
    "..",
    "%2F",
    "",
    "Shop",
    "a" * 64,
    "shop/..",
    "shop%2F..",
]
hostile_names = st.sampled_from(TRICKY_NAMES) | st.text(max_size=80)
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=16,
)


@dataclass(frozen=True)
class Request:
    """One HTTP request to an entry point."""

    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "POST"
    path: str = "/"


def hostile_targets(real: list[str]) -> st.SearchStrategy[str]:
    """``namespace/name`` texts aimed at protected or odd places, real pods, or anything."""
    crafted = st.builds(lambda ns, name: f"{ns}/{name}", st.sampled_from(NAMESPACES), hostile_names)
    return crafted | st.sampled_from(real) | st.text(max_size=100)


def sane_targets(real: list[str]) -> st.SearchStrategy[str]:
    """Valid ``namespace/name`` texts: real pods, protected ones, pods that do not exist."""
    invented = [
        "kube-system/kube-apiserver-node-1",
        "amtd-system/matcher-5d9f-x2",
        "attacker/pod",
        "shop/no-such-pod",
        "default/" + "a" * 253,
        "knative-eventing/broker-ingress",
    ]
    return st.sampled_from(real + invented)


def header_safe(text: str) -> str:
    """A header value carrying any text: percent-encoded, as Falcosidekick does."""
    if all(32 <= ord(char) < 127 for char in text):
        return text
    return quote(text, safe=" /:=,;@")


def truncated(body: bytes) -> st.SearchStrategy[bytes]:
    """The body cut anywhere (a torn connection, a broken sender)."""
    return st.integers(0, max(len(body) - 1, 0)).map(lambda size: body[:size])


@st.composite
def cloudevent(
    draw: st.DrawFn, attributes: dict[str, str], data: Any, damage: bool = True
) -> Request:
    """A CloudEvent (binary or structured), maybe damaged: attributes dropped or replaced."""
    chosen = dict(attributes)
    if damage and draw(st.booleans()):
        for name in draw(st.lists(st.sampled_from(sorted(chosen)), max_size=3)):
            chosen.pop(name, None)
        for name, value in draw(
            st.dictionaries(st.sampled_from([*sorted(attributes), "extra1"]), ASCII, max_size=3)
        ).items():
            chosen[name] = value
    encode = as_structured if draw(st.booleans()) else as_binary
    try:
        headers, body = encode(
            {"specversion": "1.0", "id": "x", "source": "/s", "type": "t", **chosen}, data
        )
    except Exception:  # the SDK refuses some attribute sets: send the headers raw
        headers = {f"ce-{key}": value for key, value in chosen.items()}
        body = json.dumps(data).encode()
    body = body or b""
    if draw(st.integers(0, 9)) == 0:
        body = draw(truncated(body))
    return Request(body, {key: header_safe(value) for key, value in headers.items()})


def garbage() -> st.SearchStrategy[Request]:
    """Anything at all: random bytes or JSON, any content type, odd methods and paths, 1 MiB+."""
    content_types = st.sampled_from(
        [
            "application/json",
            "application/cloudevents+json",
            "application/cloudevents-batch+json",
            "text/plain",
            "application/x-ndjson",
            "",
            "multipart/form-data",
        ]
    )
    methods = st.sampled_from(["POST", "POST", "POST", "GET", "PUT", "DELETE", "PATCH"])
    paths = st.sampled_from(
        [
            "/",
            "/",
            "/../../etc/passwd",
            "/%2F%2E%2E",
            "/health/../x",
            "/health/readiness/..",
            "/" + "a" * 2000,
        ]
    )
    bodies = (
        st.binary(max_size=300)
        | json_values.map(lambda v: json.dumps(v).encode())
        | st.builds(make_oversize)
    )
    return st.builds(
        lambda body, kind, method, path, ce: Request(
            body, {"Content-Type": kind, **({"ce-specversion": "1.0"} if ce else {})}, method, path
        ),
        bodies,
        content_types,
        methods,
        paths,
        st.booleans(),
    )


AUTH = st.sampled_from(
    [
        {"Authorization": f"Bearer {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}"},
        {},
        {"Authorization": "Bearer forged"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer"},
        {"Authorization": TOKEN},
        {"Authorization": f"Bearer {TOKEN.upper()}"},
        {"Authorization": "Bearer " + "a" * 5000},
    ]
)


@st.composite
def falco_requests(draw: st.DrawFn, real: list[str]) -> Request:
    """Falco alerts (plain or CloudEvent) about hostile targets, with any credentials.

    Half are well-formed and authenticated, aimed at real or protected pods (they get through to
    the API server); the rest are damaged anywhere.
    """
    if draw(st.booleans()):
        namespace, _, pod = draw(sane_targets(real)).partition("/")
        alert = {
            **FALCO_ALERT,
            "output_fields": {
                **FALCO_ALERT["output_fields"],
                "k8s.ns.name": namespace,
                "k8s.pod.name": pod,
            },
        }
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
        return Request(json.dumps(alert).encode(), headers)
    target = draw(hostile_targets(real))
    namespace, _, pod = target.partition("/")
    alert = {
        **FALCO_ALERT,
        "time": draw(st.sampled_from([FALCO_ALERT["time"], "yesterday", ""])),
        "output_fields": {
            **FALCO_ALERT["output_fields"],
            "k8s.ns.name": namespace,
            "k8s.pod.name": pod,
        },
    }
    if draw(st.booleans()):
        alert[draw(st.sampled_from(sorted(alert)))] = draw(json_values)
    if draw(st.booleans()):
        body = json.dumps(alert).encode()
        body = draw(truncated(body)) if draw(st.integers(0, 5)) == 0 else body
        return Request(body, {"Content-Type": "application/json", **draw(AUTH)})
    attributes = {
        "type": "falco.rule.output.v1",
        "source": "https://falco.org",
        "id": "a1",
        "datacontenttype": "application/json",
        "amtdtoken": draw(st.sampled_from([TOKEN, "forged", ""])),
    }
    event = draw(cloudevent(attributes, alert))
    return Request(event.body, {**event.headers, **draw(AUTH | st.just({}))})


@st.composite
def kubearmor_requests(draw: st.DrawFn, real: list[str]) -> Request:
    """KubeArmor alerts and batches about hostile targets, with any credentials."""
    items = []
    for _ in range(draw(st.integers(1, 4))):
        namespace, _, pod = draw(hostile_targets(real)).partition("/")
        item: Any = {
            **KUBEARMOR_ALERT,
            "NamespaceName": namespace,
            "PodName": pod,
            "Severity": draw(st.sampled_from(["1", "10", "11", "-1", "x", ""])),
        }
        items.append(item if draw(st.integers(0, 4)) else draw(json_values))
    framing = draw(st.sampled_from(["single", "array", "ndjson", "log"]))
    if framing == "single":
        body = json.dumps(items[0])
    elif framing == "array":
        body = json.dumps(items)
    elif framing == "log":
        body = json.dumps([{"log": json.dumps(item)} for item in items])
    else:
        body = "\n".join(json.dumps(item) for item in items)
    kind = "application/x-ndjson" if framing == "ndjson" else "application/json"
    raw = body.encode()
    raw = draw(truncated(raw)) if draw(st.integers(0, 5)) == 0 else raw
    return Request(raw, {"Content-Type": kind, **draw(AUTH)})


def pings(name: str) -> st.SearchStrategy[Request]:
    """PingSource events (the timer's and the sweeper's input), damaged or not."""
    attributes = {
        "type": "dev.knative.sources.ping",
        "source": PING_SOURCE + name,
        "id": "p1",
        "datacontenttype": "application/json",
    }
    return cloudevent(attributes, {"task": name}) | cloudevent(attributes, {}, damage=False)


@st.composite
def apiserver_events(draw: st.DrawFn, names: list[str]) -> Request:
    """ApiServerSource events naming real or hostile SecurityEvents, in both modes."""
    verb = draw(st.sampled_from(["add", "update", "delete", "explode"]))
    mode = draw(st.sampled_from(["resource", "ref", "other"]))
    kind = draw(st.sampled_from(["SecurityEvent", "SecurityEvent", "Pod", ""]) | ASCII)
    name = draw(st.sampled_from(names) | hostile_names)
    meta: Any = {"name": name, "uid": draw(ASCII), "generation": draw(st.integers(-2, 3))}
    if mode == "resource":
        data: Any = {"kind": kind, "apiVersion": "amtd.r6security.com/v1beta1", "metadata": meta}
    else:
        data = {"kind": kind, "name": name, "apiVersion": "amtd.r6security.com/v1beta1"}
    if draw(st.integers(0, 4)) == 0:
        data = draw(json_values)
    attributes = {
        "type": f"dev.knative.apiserver.{mode}.{verb}",
        "source": "https://10.96.0.1",
        "id": "e1",
        "datacontenttype": "application/json",
        "kind": kind,
        "name": header_safe(name)[:200],
        "subject": "/apis/x/securityevents/" + name[:50],
    }
    return draw(cloudevent(attributes, data))


@st.composite
def action_requests(
    draw: st.DrawFn, names: list[str], uids: dict[str, str], real: list[str]
) -> Request:
    """action.requested events whose steps aim at protected or odd targets."""
    if draw(st.booleans()):
        return draw(sane_action_request(names, uids, real))
    name = draw(st.sampled_from(names) | hostile_names)
    steps = []
    for _ in range(draw(st.integers(0, 3))):
        step: Any = {
            "stepId": draw(ASCII),
            "target": draw(hostile_targets(real)),
            "podUid": draw(st.sampled_from([*uids.values(), ""]) | ASCII),
            "action": draw(st.sampled_from(["delete", "quarantine", "disable", ""])),
            "parameters": draw(
                st.sampled_from([{}, {"gracePeriodSeconds": -5}, {"gracePeriodSeconds": "x"}])
                | st.dictionaries(st.text(max_size=8), json_values, max_size=2)
            ),
            "policy": "shop/shop-defence",
            "ruleIndex": draw(st.integers(-1, 3)),
            "dryRun": draw(st.booleans()),
            "allowStandalonePods": draw(st.booleans()),
        }
        if draw(st.integers(0, 3)) == 0:
            step.pop(draw(st.sampled_from(sorted(step))))
        steps.append(step)
    data: Any = {
        "securityEvent": {
            "name": name,
            "uid": uids.get(name, draw(ASCII)),
            "generation": draw(st.integers(-1, 2)),
        },
        "steps": steps,
    }
    if draw(st.integers(0, 5)) == 0:
        data = draw(json_values)
    attributes = {
        "type": draw(st.sampled_from([ACTION_REQUESTED, ACTION_REQUESTED, "x.y"])),
        "source": "/amtd/matcher",
        "id": "r1",
        "datacontenttype": "application/json",
        "amtddelete": "true",
        "amtdquarantine": "true",
    }
    return draw(cloudevent(attributes, data))


@st.composite
def dead_letters(draw: st.DrawFn, names: list[str]) -> Request:
    """Dead letters with hostile error extensions and references."""
    name = draw(st.sampled_from(names) | hostile_names)
    attributes = {
        "type": draw(ASCII) or "t",
        "source": draw(ASCII) or "/s",
        "id": draw(ASCII) or "i",
        "knativeerrordest": draw(ASCII),
        "knativeerrorcode": draw(st.sampled_from(["503", "400", "-1", "abc", ""])),
        "knativeerrordata": draw(ASCII),
        "securityevent": header_safe(name)[:200],
        "kind": "SecurityEvent",
        "name": header_safe(name)[:200],
        "subject": "/apis/a/securityevents/" + name[:60],
    }
    return draw(cloudevent(attributes, draw(json_values)))


@st.composite
def sane_action_request(
    draw: st.DrawFn, names: list[str], uids: dict[str, str], real: list[str]
) -> Request:
    """A well-formed action request for a real SecurityEvent, aimed at any valid target."""
    name = draw(st.sampled_from(names))
    steps = [
        {
            "stepId": f"{uids[name]}/1/{target}",
            "target": target,
            "podUid": draw(st.sampled_from(["", "not-the-uid"])),
            "action": draw(st.sampled_from(["delete", "quarantine"])),
            "parameters": {},
            "policy": "shop/shop-defence",
            "ruleIndex": 0,
            "dryRun": draw(st.booleans()),
        }
        for target in draw(st.lists(sane_targets(real), min_size=1, max_size=3, unique=True))
    ]
    data = {"securityEvent": {"name": name, "uid": uids[name], "generation": 1}, "steps": steps}
    attributes = {
        "type": ACTION_REQUESTED,
        "source": "/amtd/matcher",
        "id": f"r-{name}",
        "datacontenttype": "application/json",
    }
    return draw(cloudevent(attributes, data, damage=False))
