"""Compact signed QR payloads: ``PREFIX`` + base45(CBOR array + Ed25519 signature).

The shape check-in's shelter poster uses (``protocol.checkin._token``), made generic so other
features sign their QR codes the same way. The signature covers the prefix and the CBOR bytes,
so a payload signed as one kind (say an event QR) can never pass as another (a coupon) even
under the same key. Field 0 is the format version, field 1 the signer's key id
(``key_id(public, 4)`` as in check-in), the rest belong to the caller. Base45 keeps the QR in
alphanumeric mode, the densest a cheap camera reads off a phone screen.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import base45
import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from protocol.checkin._crypto import key_id

KID_LEN = 4
SIG_LEN = 64
MAX_QR_TEXT = 4296  # the most a QR code (version 40-L, alphanumeric) holds


class SignedQrError(ValueError):
    """Base of what ``open_signed`` raises; ``reason`` tells the caller which check failed."""

    reason = "malformed"


class WrongKind(SignedQrError):
    reason = "wrong_kind"


class Malformed(SignedQrError):
    reason = "malformed"


class UnknownKey(SignedQrError):
    reason = "unknown_signer"


class Forged(SignedQrError):
    reason = "bad_signature"


def signer_kid(public: Ed25519PublicKey) -> bytes:
    return key_id(public, KID_LEN)


def sign_qr(prefix: str, version: int, fields: Sequence[Any], key: Ed25519PrivateKey) -> str:
    """The QR text for ``fields`` signed by ``key``."""
    body = cbor2.dumps([version, signer_kid(key.public_key()), *fields])
    return prefix + base45.b45encode(body + key.sign(prefix.encode() + body)).decode("ascii")


@dataclass(frozen=True, slots=True)
class SignedQr:
    kid: bytes
    fields: list[Any]  # the caller's fields, after version and kid


def open_signed(text: str, prefix: str, version: int, types: Sequence[type],
                lookup: Callable[[bytes], Ed25519PublicKey | None]) -> SignedQr:
    """Parse, type-check and verify. ``types`` are the caller's field types, in order;
    ``lookup`` returns the trusted public key for a key id (None: unknown signer)."""
    if not isinstance(text, str) or len(text) > MAX_QR_TEXT:
        raise Malformed("QR text is missing or too long")
    if not text.startswith(prefix):
        raise WrongKind(f"not a {prefix.rstrip(':')} QR")
    try:
        raw = base45.b45decode(text[len(prefix):])
    except (ValueError, KeyError, IndexError):
        raise Malformed("QR text is not valid base45") from None
    if len(raw) <= SIG_LEN:
        raise Malformed("QR content is too short")
    body, sig = raw[:-SIG_LEN], raw[-SIG_LEN:]
    try:
        fields = cbor2.loads(body)
    except Exception:
        raise Malformed("QR content is not valid") from None
    expected = (int, bytes, *types)
    if (not isinstance(fields, list) or len(fields) != len(expected)
            or not all(isinstance(v, t) and not isinstance(v, bool) for v, t in zip(fields, expected, strict=True))):
        raise Malformed("QR content has the wrong fields")
    if fields[0] != version:
        raise Malformed(f"QR format version {fields[0]} is not supported")
    public = lookup(fields[1])
    if public is None:
        raise UnknownKey("signed by a key this device does not trust")
    try:
        public.verify(sig, prefix.encode() + body)
    except InvalidSignature:
        raise Forged("signature does not match: forged or altered") from None
    return SignedQr(fields[1], fields[2:])
