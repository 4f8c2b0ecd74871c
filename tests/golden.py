"""Loading the golden wire-format vectors of tests/fixtures/golden (shared by the app-side and the
platform-side golden tests)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from protocol.checkin import device_kid, poster_kid

GOLDEN = Path(__file__).parent / "fixtures" / "golden"


def vector(name: str) -> Any:
    return json.loads((GOLDEN / f"{name}.json").read_text(encoding="utf-8"))


def ed25519(name: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(vector("keys")[name]))


def x25519(name: str) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(bytes.fromhex(vector("keys")[name]))


class GoldenKeys:
    """The ``protocol.checkin.KeyDirectory`` of the golden keys."""

    def device_key(self, kid: bytes) -> Ed25519PublicKey | None:
        public = ed25519("device").public_key()
        return public if kid == device_kid(public) else None

    def shelter_seal_key(self, municipality_code: str) -> X25519PublicKey | None:
        return x25519("shelter_seal").public_key()

    def poster_key(self, kid: bytes) -> Ed25519PublicKey | None:
        public = ed25519("poster").public_key()
        return public if kid == poster_kid(public) else None
