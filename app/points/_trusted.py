"""The platform's public keys for points QR codes, cached on the phone."""
from __future__ import annotations

import sqlite_utils
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from offline import points_store
from protocol.checkin import raw_public
from protocol.points import Lookup
from protocol.signing import signer_kid


class TrustedKeys:
    """The platform's public signing keys, cached in the store so QR checks work offline."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db

    def add(self, public: Ed25519PublicKey, purpose: str, municipality_code: str) -> bytes:
        kid = signer_kid(public)
        points_store.put_trusted_key(self._db, kid, purpose, raw_public(public), municipality_code)
        return kid

    def lookup(self, purpose: str) -> Lookup:
        def find(kid: bytes) -> Ed25519PublicKey | None:
            found = points_store.trusted_key(self._db, kid, purpose)
            return None if found is None else Ed25519PublicKey.from_public_bytes(found[0])
        return find
