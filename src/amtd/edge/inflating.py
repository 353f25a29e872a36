"""Inflating: request bodies sent with ``Content-Encoding: gzip`` or ``deflate``, bounded.

Fluent Bit (``compress gzip``) and OpenTelemetry exporters compress by default. The body limit
applies to the inflated size, and inflating is incremental: no step ever produces more than the
bytes still allowed plus one, so a small bomb (10 MB of zeros is 10 KB of gzip) costs at most
the limit in memory before it is refused. Pure: the caller supplies the chunks and the limit.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

IDENTITY = "identity"
# zlib's window bits: gzip wrapper, zlib wrapper (what RFC 9110 calls deflate), or raw deflate,
# which some senders use for ``deflate`` anyway.
GZIP_WBITS = 16 + zlib.MAX_WBITS
ZLIB_WBITS = zlib.MAX_WBITS
RAW_WBITS = -zlib.MAX_WBITS
ENCODINGS = {"gzip": GZIP_WBITS, "x-gzip": GZIP_WBITS, "deflate": ZLIB_WBITS}


class UnknownEncodingError(ValueError):
    """A content coding this edge does not decode (answered 415)."""


class InvalidEncodingError(ValueError):
    """A compressed body that does not decompress (answered 400)."""


class InflatedTooLargeError(ValueError):
    """The body inflates beyond the limit (answered 413)."""


def read_encoding(header: str | None) -> str:
    """The one content coding of a ``Content-Encoding`` header (``identity`` when absent)."""
    codings = [part.strip().lower() for part in (header or "").split(",") if part.strip()]
    codings = [coding for coding in codings if coding != IDENTITY]
    if not codings:
        return IDENTITY
    if len(codings) > 1 or codings[0] not in ENCODINGS:
        raise UnknownEncodingError(
            f"Content-Encoding {header!r} is not supported (use gzip, deflate or none)"
        )
    return codings[0]


def inflate(chunks: Iterable[bytes], encoding: str, limit: int) -> bytes:
    """The decoded body; InflatedTooLargeError as soon as it would exceed ``limit`` bytes."""
    output = bytearray()
    decoder: zlib._Decompress | None = None
    for chunk in chunks:
        if decoder is None:
            decoder = zlib.decompressobj(choose_wbits(encoding, chunk))
        decoder = feed(decoder, chunk, output, limit)
    if decoder is None or not decoder.eof:
        raise InvalidEncodingError(f"the {encoding} body ends before its compressed stream does")
    return bytes(output)


def choose_wbits(encoding: str, first: bytes) -> int:
    """gzip as is; ``deflate`` with a zlib header, or raw deflate without one."""
    wbits = ENCODINGS[encoding]
    if wbits == ZLIB_WBITS and not is_zlib_header(first):
        return RAW_WBITS
    return wbits


def is_zlib_header(data: bytes) -> bool:
    """RFC 1950: method 8 in the low nibble, and the two bytes a multiple of 31."""
    return len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0


def feed(
    decoder: zlib._Decompress, chunk: bytes, output: bytearray, limit: int
) -> zlib._Decompress:
    """Inflate one chunk into ``output``, never more than one byte past ``limit`` at a time.

    Returns the decoder for the next chunk: a new one when a gzip member ends and another
    begins (concatenated members are one gzip stream)."""
    pending = chunk
    while pending:
        try:
            output += decoder.decompress(pending, limit + 1 - len(output))
        except zlib.error as error:
            raise InvalidEncodingError(f"the body does not decompress: {error}") from None
        if len(output) > limit:
            raise InflatedTooLargeError(f"the body inflates beyond {limit} bytes")
        pending = decoder.unconsumed_tail
        if decoder.eof and decoder.unused_data:
            pending = decoder.unused_data
            if not pending.startswith(b"\x1f\x8b"):
                raise InvalidEncodingError("the body has data after its compressed stream")
            decoder = zlib.decompressobj(GZIP_WBITS)
    return decoder
