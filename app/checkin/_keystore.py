"""``StoredKeyDirectory`` keeps the public keys of check-in (``protocol.checkin.KeyDirectory``) in
the local store, so verification works offline (they are not secret). The platform client fills
it during sync; until then, callers add keys directly."""
from __future__ import annotations

import sqlite_utils

from offline import checkin_store
from protocol.checkin import Ed25519PublicKey, X25519PublicKey, device_kid, poster_kid, raw_public, seal_kid


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
