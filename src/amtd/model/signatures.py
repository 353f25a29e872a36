"""Signatures: the matcher's Ed25519 signature over a step, and the keys that make and check it.

The SecurityEvent's status is not an authority: the executors, the dead-letters function and the
sweeper may write it too. A step is executable only when it carries a signature, by a key the
executors were given, over every field that makes it what it is (docs/events.md, "Authority").
Only the matcher holds the private key. Pure: no I/O, no clock.

Key ids are derived from the public key (``ed25519-`` + 16 hex digits of its SHA-256), so an id
can never name the wrong key and a key ring is just a list of public keys.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field

PURPOSE = "amtd.step.v1"  # bound into every signature: it signs nothing else
KEY_ID_PATTERN = r"^ed25519-[0-9a-f]{16}$"
PEM_BLOCK = re.compile(r"-----BEGIN [A-Z ]+-----.+?-----END [A-Z ]+-----", re.DOTALL)
SIGNATURE_LENGTH = 88  # base64 of 64 bytes
SIGNING_KEY_SECRET = "matcher-signing-key"  # key PRIVATE_KEY_ENTRY: the matcher's only
PRIVATE_KEY_ENTRY = "private.pem"
PUBLIC_KEYS_CONFIG_MAP = "matcher-public-keys"  # key PUBLIC_KEYS_ENTRY: the executors' ring
PUBLIC_KEYS_ENTRY = "public.pem"


class Signature(BaseModel):
    """``signature`` of a decision and of a step: which key, and the signature (base64)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    key_id: str = Field(alias="keyId", pattern=KEY_ID_PATTERN)
    value: str = Field(max_length=SIGNATURE_LENGTH)


@dataclass(frozen=True)
class SigningKey:
    """The matcher's private key and its id."""

    key_id: str
    private: Ed25519PrivateKey


KeyRing = Mapping[str, Ed25519PublicKey]  # key id -> public key


def derive_key_id(public: Ed25519PublicKey) -> str:
    """``ed25519-<16 hex digits of sha256(raw public key)>``."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519-" + hashlib.sha256(raw).hexdigest()[:16]


def load_signing_key(pem: str) -> SigningKey:
    """A PKCS#8 PEM Ed25519 private key (``openssl genpkey -algorithm ed25519``); ValueError."""
    try:
        private = serialization.load_pem_private_key(pem.strip().encode(), password=None)
    except (ValueError, TypeError) as error:
        raise ValueError(f"not a PEM private key: {error}") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise ValueError("the signing key is not an Ed25519 key")
    return SigningKey(derive_key_id(private.public_key()), private)


def load_key_ring(text: str) -> dict[str, Ed25519PublicKey]:
    """Every PEM Ed25519 public key in ``text``, by key id; ValueError names a bad block."""
    ring: dict[str, Ed25519PublicKey] = {}
    for position, block in enumerate(PEM_BLOCK.findall(text)):
        try:
            public = serialization.load_pem_public_key(block.encode())
        except ValueError as error:
            raise ValueError(f"public key {position}: {error}") from None
        if not isinstance(public, Ed25519PublicKey):
            raise ValueError(f"public key {position} is not an Ed25519 key")
        ring[derive_key_id(public)] = public
    return ring


def generate_signing_key() -> SigningKey:
    """A fresh key (the local stack's, and ``amtd keys generate``)."""
    private = Ed25519PrivateKey.generate()
    return SigningKey(derive_key_id(private.public_key()), private)


def export_private_pem(key: SigningKey) -> str:
    """The private key as PKCS#8 PEM (what the ``matcher-signing-key`` Secret holds)."""
    return key.private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def export_public_pem(key: SigningKey) -> str:
    """The public key as PEM (what the executors' key ring lists)."""
    public = key.private.public_key()
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def canonicalize(fields: Mapping[str, Any], key_id: str) -> bytes:
    """The signed bytes: sorted-key compact JSON of the fields, the key id and the purpose."""
    document = {**fields, "keyId": key_id, "purpose": PURPOSE}
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return text.encode()


def sign_fields(key: SigningKey, fields: Mapping[str, Any]) -> Signature:
    """Sign ``fields`` with the matcher's key."""
    value = key.private.sign(canonicalize(fields, key.key_id))
    return Signature(key_id=key.key_id, value=base64.b64encode(value).decode())


def check_fields(
    ring: KeyRing, fields: Mapping[str, Any], signature: Signature | None
) -> tuple[str, str] | None:
    """None when ``signature`` is a valid signature of ``fields`` by a key in ``ring``;
    else (reason, message)."""
    if signature is None:
        return "Unsigned", "the step carries no signature"
    public = ring.get(signature.key_id)
    if public is None:
        return "UnknownSigningKey", f"key {signature.key_id} is not among the trusted keys"
    try:
        public.verify(base64.b64decode(signature.value, validate=True),
                      canonicalize(fields, signature.key_id))  # fmt: skip
    except (InvalidSignature, binascii.Error, ValueError):
        return "InvalidSignature", "the signature does not match the step"
    return None


def make_key_manifests(key: SigningKey, namespace: str) -> list[dict[str, Any]]:
    """The Secret with the private key (the matcher's func.yaml alone references it) and the
    ConfigMap with the public key the executors trust."""
    labels = {"app.kubernetes.io/part-of": "amtd"}
    meta = {"namespace": namespace, "labels": labels}
    return [
        {
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": SIGNING_KEY_SECRET, **meta},
            "stringData": {PRIVATE_KEY_ENTRY: export_private_pem(key)},
        },
        {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": PUBLIC_KEYS_CONFIG_MAP, **meta},
            "data": {PUBLIC_KEYS_ENTRY: export_public_pem(key)},
        },
    ]  # fmt: skip
