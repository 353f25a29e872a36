"""The matcher's input as an ApiServerSource sends it, and posting it to an in-process matcher."""

from __future__ import annotations

import uuid
from typing import Any

from flask.testing import FlaskClient

from support.cloudevents import as_binary, as_structured, read_reply


def apiserver_event(
    obj: dict[str, Any], verb: str = "add", mode: str = "resource"
) -> tuple[dict[str, str], Any]:
    """Attributes and data as an ApiServerSource sends them (docs/events.md)."""
    name = obj["metadata"]["name"]
    attributes = {
        "type": f"dev.knative.apiserver.{mode}.{verb}",
        "source": "https://10.96.0.1:443",
        "id": str(uuid.uuid4()),
        "subject": f"/apis/amtd.r6security.com/v1beta1/securityevents/{name}",
        "datacontenttype": "application/json",
        "kind": obj["kind"],
        "apiversion": obj["apiVersion"],
        "name": name,
    }
    if mode == "resource":
        return attributes, obj
    reference = {
        "kind": obj["kind"],
        "namespace": "",
        "name": name,
        "apiVersion": obj["apiVersion"],
    }
    return attributes, reference


def post_event(
    matcher: FlaskClient, attributes: dict[str, str], data: Any, structured: bool = False
):
    """POST one CloudEvent (binary mode unless ``structured``); returns the response."""
    headers, body = (as_structured if structured else as_binary)(attributes, data)
    return matcher.post("/", headers=headers, data=body)


def decide(matcher: FlaskClient, obj: dict[str, Any], **options: Any) -> tuple[int, Any, Any]:
    """Post the add event for ``obj``: status code, reply attributes, reply data."""
    structured = options.pop("structured", False)
    response = post_event(matcher, *apiserver_event(obj, **options), structured=structured)
    if response.status_code != 200:
        return response.status_code, None, response.get_json(silent=True)
    attributes, data = read_reply(response.headers, response.get_data())
    return response.status_code, attributes, data
