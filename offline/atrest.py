"""Encryption at rest for personal data in the local store: one way, used everywhere.

AES-256-GCM with a 32-byte key the app keeps outside SQLite (secure storage on a phone,
``app.devicekeys.FileKeyStore`` in web/desktop mode). ``aad`` binds a ciphertext to its row
(e.g. the table and id), so a blob copied into another row does not open.
"""
from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_LEN = 12


class AtRestKeyError(ValueError):
    """Wrong key, damaged blob, or a blob moved to another row."""


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def _aead(key: bytes) -> AESGCM:
    if not isinstance(key, bytes) or len(key) != 32:
        raise AtRestKeyError("the at-rest key must be 32 bytes (AES-256)")
    return AESGCM(key)


def encrypt_at_rest(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """``nonce || ciphertext+tag``; a fresh random nonce every time."""
    nonce = os.urandom(NONCE_LEN)
    return nonce + _aead(key).encrypt(nonce, plaintext, aad)


def decrypt_at_rest(key: bytes, blob: bytes, aad: bytes) -> bytes:
    aead = _aead(key)
    try:
        return aead.decrypt(blob[:NONCE_LEN], blob[NONCE_LEN:], aad)
    except (InvalidTag, ValueError):
        raise AtRestKeyError("stored data does not open with this key (wrong key or damaged)") from None
