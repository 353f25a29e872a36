"""Documents: the JSON bodies ingest accepts — one object, an array, or one object per line. Pure.

Collectors batch and frame alerts differently (docs/ingest.md): Fluent Bit's ``json`` format posts
an array, ``json_lines`` newline-delimited objects (``application/x-ndjson``, older versions say
``application/json``), ``json_stream`` objects back to back. :func:`split_documents` accepts all of
them and keeps a bad line from spoiling the good ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from amtd.ingest.fields import (
    InvalidFieldError,
    check_encodable,
    describe_json_error,
    json_type_name,
    parse_json,
)

JSON_TYPES = frozenset({"application/json", "text/json"})
NDJSON_TYPES = frozenset(
    {"application/x-ndjson", "application/ndjson", "application/jsonl", "application/json-lines",
     "application/x-jsonlines", "application/jsonlines"}
)  # fmt: skip
MAX_DOCUMENTS = 500


class UnsupportedMediaError(ValueError):
    """A Content-Type this endpoint cannot read (answered 415)."""


class TooManyDocumentsError(ValueError):
    """A batch with more items than one request may carry (answered 413)."""


@dataclass(frozen=True)
class Document:
    """One item of a body: its position, and the decoded value or why it could not be decoded."""

    label: str
    value: Any = None
    error: InvalidFieldError | None = None


def read_media_type(content_type: str | None) -> str:
    """``application/json; charset=utf-8`` → ``application/json``; "" when absent."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_json_type(media_type: str) -> bool:
    """JSON proper, or any ``+json`` type that is not a CloudEvents envelope."""
    if media_type.startswith("application/cloudevents"):
        return False
    return media_type in JSON_TYPES or media_type.endswith("+json")


def check_media_type(media_type: str, allow_lines: bool) -> None:
    """Raise UnsupportedMediaError unless the body is JSON (or, with ``allow_lines``, NDJSON)."""
    if is_json_type(media_type) or (allow_lines and media_type in NDJSON_TYPES):
        return
    accepted = "application/json" + (" or application/x-ndjson" if allow_lines else "")
    shown = media_type or "(none)"
    raise UnsupportedMediaError(f"Content-Type {shown[:80]} is not accepted; send {accepted}")


def parse_single_object(body: bytes) -> dict[str, Any]:
    """The body as exactly one JSON object."""
    value = parse_json(body, "body")
    if not isinstance(value, dict):
        raise InvalidFieldError("body", f"must be a JSON object, got {json_type_name(value)}")
    return value


def split_documents(body: bytes) -> tuple[list[Document], bool]:
    """The items of a body, and whether it was a batch (array, lines, stream) or one object."""
    try:
        whole = json.loads(body)
    except (ValueError, RecursionError):
        documents = split_lines(body)
        return check_count(documents), True
    if isinstance(whole, list):
        items = [make_document(f"[{index}]", value) for index, value in enumerate(whole)]
        return check_count(items), True
    return [make_document("body", whole)], False


def make_document(label: str, value: Any) -> Document:
    """One item; one that holds a string UTF-8 cannot encode is a bad item, not a bad batch."""
    try:
        return Document(label, check_encodable(value))
    except InvalidFieldError as error:
        return Document(label, error=error)


def split_lines(body: bytes) -> list[Document]:
    """Newline-delimited JSON (a bad line is a bad item), or objects back to back on one line."""
    lines = [(number, line) for number, line in enumerate(body.splitlines(), 1) if line.strip()]
    if len(lines) == 1:
        return split_stream(lines[0][1])
    documents = []
    for number, line in lines:
        label = f"line {number}"
        try:
            documents.append(Document(label, parse_json(line, label)))
        except InvalidFieldError as error:
            documents.append(Document(label, error=error))
    if not documents:
        raise InvalidFieldError("body", "is empty")
    return documents


def split_stream(line: bytes) -> list[Document]:
    """Concatenated JSON values (Fluent Bit ``json_stream``); the body is bad if any is."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidFieldError("body", "is not UTF-8") from None
    decoder, position = json.JSONDecoder(), skip_whitespace(text, 0)
    documents: list[Document] = []
    while position < len(text):
        try:
            value, position = decoder.raw_decode(text, position)
        except (ValueError, RecursionError) as error:
            raise InvalidFieldError("body", f"is not JSON ({describe_json_error(error)})") from None
        documents.append(make_document(f"[{len(documents)}]", value))
        position = skip_whitespace(text, position)
    return documents


def skip_whitespace(text: str, position: int) -> int:
    """The index of the next non-blank character."""
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


def check_count(documents: list[Document]) -> list[Document]:
    """Refuse batches too large for one request (each item is one API call)."""
    if len(documents) > MAX_DOCUMENTS:
        raise TooManyDocumentsError(
            f"{len(documents)} items in one request; at most {MAX_DOCUMENTS}"
        )
    return documents
