"""Whose keys are trusted for check-in, behind one small protocol.

* device keys (Ed25519): each resident's phone signs its QR codes; the platform registers them
  and desks cache them so they can verify with no network;
* the municipality's shelter key (X25519): residents seal their card to it; only desks hold the
  private half;
* poster keys (Ed25519): the platform signs the QR posted at each shelter entrance.
"""
from __future__ import annotations

from typing import Protocol

from protocol.checkin._crypto import Ed25519PublicKey, X25519PublicKey, key_id

DEVICE_KID_LEN = 8
SEAL_KID_LEN = 4
POSTER_KID_LEN = 4


class KeyDirectory(Protocol):
    def device_key(self, kid: bytes) -> Ed25519PublicKey | None:
        """The registered public key of a resident's device, by key id; None if unknown/revoked."""

    def shelter_seal_key(self, municipality_code: str) -> X25519PublicKey | None:
        """The current public key that a municipality's shelter desks unseal with."""

    def poster_key(self, kid: bytes) -> Ed25519PublicKey | None:
        """The platform key that signs shelter entrance posters, by key id."""


def device_kid(key: Ed25519PublicKey) -> bytes:
    return key_id(key, DEVICE_KID_LEN)


def seal_kid(key: X25519PublicKey) -> bytes:
    return key_id(key, SEAL_KID_LEN)


def poster_kid(key: Ed25519PublicKey) -> bytes:
    return key_id(key, POSTER_KID_LEN)
