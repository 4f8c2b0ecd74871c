"""Device secrets live in an owner-only file outside the database."""
from __future__ import annotations

import stat

import pytest

from app.devicekeys import FileKeyStore, get_or_create


def test_file_key_store_is_owner_only_and_survives_reopen(tmp_path):
    path = tmp_path / "mamori.keys"
    key = get_or_create(FileKeyStore(path), "store-at-rest")
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert get_or_create(FileKeyStore(path), "store-at-rest") == key
    store = FileKeyStore(path)
    store.delete("store-at-rest")
    assert store.get("store-at-rest") is None


def test_damaged_key_file_says_so(tmp_path):
    path = tmp_path / "mamori.keys"
    path.write_text("{not json")
    with pytest.raises(OSError, match="key file is unreadable"):
        FileKeyStore(path).get("x")
