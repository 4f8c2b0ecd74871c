"""Shared set-up for the check-in tests (a municipality, a resident's phone, a desk), plus the
key directory's own tests."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from app.checkin import ShelterDesk, StoredKeyDirectory, device_kid, make_poster_token, new_at_rest_key, seal_kid
from offline.store import open_store
from protocol.checkin import Ed25519PrivateKey, X25519PrivateKey

MUNICIPALITY = "072028"
SHELTER_A = "07202800001"
SHELTER_B = "07202800002"


@dataclass
class World:
    db: sqlite_utils.Database
    keys: StoredKeyDirectory
    device: Ed25519PrivateKey
    shelter_key: X25519PrivateKey
    poster_signer: Ed25519PrivateKey
    desk_key: bytes
    now: list[float] = field(default_factory=lambda: [1_780_000_000.0])

    def clock(self) -> float:
        return self.now[0]

    def desk(self, shelter_id: str = SHELTER_A) -> ShelterDesk:
        return ShelterDesk(self.db, self.keys, [self.shelter_key], self.desk_key, shelter_id, MUNICIPALITY,
                           f"避難所{shelter_id[-1]}", clock=self.clock)

    def poster(self, shelter_id: str = SHELTER_A, days: int = 30) -> str:
        start = int(self.now[0]) - 3600
        return make_poster_token(self.poster_signer, shelter_id, MUNICIPALITY, f"避難所{shelter_id[-1]}",
                                 start, start + days * 86400)


def make_world(path: Path | str = ":memory:") -> World:
    db = open_store(path)
    keys = StoredKeyDirectory(db)
    w = World(db, keys, Ed25519PrivateKey.generate(), X25519PrivateKey.generate(), Ed25519PrivateKey.generate(),
              new_at_rest_key())
    keys.add_device_key(w.device.public_key())
    keys.set_shelter_seal_key(MUNICIPALITY, w.shelter_key.public_key())
    keys.add_poster_key(w.poster_signer.public_key())
    return w


def test_directory_finds_keys_by_id_and_latest_seal_key_wins() -> None:
    w = make_world()
    assert w.keys.device_key(device_kid(w.device.public_key())) is not None
    assert w.keys.device_key(b"\0" * 8) is None
    rotated = X25519PrivateKey.generate()
    w.keys.set_shelter_seal_key(MUNICIPALITY, rotated.public_key())
    current = w.keys.shelter_seal_key(MUNICIPALITY)
    assert current is not None and seal_kid(current) == seal_kid(rotated.public_key())
    assert w.keys.shelter_seal_key("999999") is None


def test_revoked_device_key_is_gone(tmp_path: Path) -> None:
    w = make_world(tmp_path / "s.sqlite")
    kid = w.keys.add_device_key(w.device.public_key())
    w.keys.revoke_device_key(kid)
    assert StoredKeyDirectory(open_store(tmp_path / "s.sqlite")).device_key(kid) is None
