"""Whose keys are trusted for check-in, behind one small protocol.

* device keys (Ed25519): each resident's phone signs its QR codes; the platform registers them
  and desks cache them so they can verify with no network;
* the municipality's shelter key (X25519): residents seal their card to it; only desks hold the
  private half;
* poster keys (Ed25519): the platform signs the QR posted at each shelter entrance.

``StoredKeyDirectory`` keeps these public keys in the local store (they are not secret). The
platform client fills it during sync; until then, callers add keys directly.
"""
from __future__ import annotations

from typing import Protocol

import sqlite_utils

from protocol.checkin._crypto import Ed25519PublicKey, X25519PublicKey, key_id, raw_public
from offline import checkin_store

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


class StoredKeyDirectory:
    """A ``KeyDirectory`` kept in SQLite, so verification works offline."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db

    def add_device_key(self, key: Ed25519PublicKey) -> bytes:
        kid = device_kid(key)
        checkin_store.put_public_key(self._db, "device", kid, "", raw_public(key))
        return kid

    def revoke_device_key(self, kid: bytes) -> None:
        checkin_store.delete_public_key(self._db, "device", kid)

    def set_shelter_seal_key(self, municipality_code: str, key: X25519PublicKey) -> bytes:
        kid = seal_kid(key)
        checkin_store.put_public_key(self._db, "seal", kid, municipality_code, raw_public(key))
        return kid

    def add_poster_key(self, key: Ed25519PublicKey) -> bytes:
        kid = poster_kid(key)
        checkin_store.put_public_key(self._db, "poster", kid, "", raw_public(key))
        return kid

    def device_key(self, kid: bytes) -> Ed25519PublicKey | None:
        raw = checkin_store.get_public_key(self._db, "device", kid)
        return None if raw is None else Ed25519PublicKey.from_public_bytes(raw)

    def shelter_seal_key(self, municipality_code: str) -> X25519PublicKey | None:
        raw = checkin_store.latest_scoped_key(self._db, "seal", municipality_code)
        return None if raw is None else X25519PublicKey.from_public_bytes(raw)

    def poster_key(self, kid: bytes) -> Ed25519PublicKey | None:
        raw = checkin_store.get_public_key(self._db, "poster", kid)
        return None if raw is None else Ed25519PublicKey.from_public_bytes(raw)
