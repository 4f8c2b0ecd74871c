"""Cryptography for check-in, all from ``cryptography``:

* sealed box (HPKE-like, base mode): X25519 ECDH with a fresh ephemeral key, HKDF-SHA256,
  ChaCha20-Poly1305. Only the holder of the municipality's shelter key can open it.
* key ids: a short hash of the raw public key, so tokens name keys without carrying them.
"""
from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from protocol.checkin._errors import UnsealFailed

_SEAL_INFO = b"mamori checkin seal v1"
_EPHEMERAL_LEN = 32
SEAL_OVERHEAD = _EPHEMERAL_LEN + 16  # ephemeral public key + Poly1305 tag
_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


def raw_public(key: Ed25519PublicKey | X25519PublicKey) -> bytes:
    return key.public_bytes(*_RAW)


def key_id(key: Ed25519PublicKey | X25519PublicKey, length: int) -> bytes:
    return hashlib.sha256(raw_public(key)).digest()[:length]


def _seal_key(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral + recipient, info=_SEAL_INFO)
    return hkdf.derive(shared)


def seal(recipient: X25519PublicKey, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt to ``recipient``; ``aad`` binds the box to its signed envelope."""
    eph = X25519PrivateKey.generate()
    eph_pub = raw_public(eph.public_key())
    key = _seal_key(eph.exchange(recipient), eph_pub, raw_public(recipient))
    # The key is fresh for every box, so a fixed nonce never repeats under one key.
    return eph_pub + ChaCha20Poly1305(key).encrypt(bytes(12), plaintext, aad)


def unseal(recipient: X25519PrivateKey, box: bytes, aad: bytes) -> bytes:
    if len(box) < SEAL_OVERHEAD:
        raise UnsealFailed("sealed data is too short")
    try:
        eph = X25519PublicKey.from_public_bytes(box[:_EPHEMERAL_LEN])
        shared = recipient.exchange(eph)
    except ValueError:  # low-order point: all-zero shared secret
        raise UnsealFailed("sealed data has an invalid ephemeral key") from None
    key = _seal_key(shared, box[:_EPHEMERAL_LEN], raw_public(recipient.public_key()))
    try:
        return ChaCha20Poly1305(key).decrypt(bytes(12), box[_EPHEMERAL_LEN:], aad)
    except InvalidTag:
        raise UnsealFailed("sealed data does not open with this shelter key") from None


__all__ = [
    "Ed25519PrivateKey", "Ed25519PublicKey", "X25519PrivateKey", "X25519PublicKey",
    "key_id", "raw_public", "seal", "unseal",
]
