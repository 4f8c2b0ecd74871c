"""At-rest encryption of check-in data: ``offline.atrest`` (AES-256-GCM), its errors as check-in
``VaultKeyError`` so screens show the check-in message."""
from __future__ import annotations

from offline import atrest
from protocol.checkin import VaultKeyError


def encrypt_at_rest(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    try:
        return atrest.encrypt_at_rest(key, plaintext, aad)
    except atrest.AtRestKeyError as exc:
        raise VaultKeyError(str(exc)) from None


def decrypt_at_rest(key: bytes, blob: bytes, aad: bytes) -> bytes:
    try:
        return atrest.decrypt_at_rest(key, blob, aad)
    except atrest.AtRestKeyError as exc:
        raise VaultKeyError(str(exc)) from None


new_at_rest_key = atrest.new_key
