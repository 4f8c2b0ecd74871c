"""One key file per store: two stores in one folder never share tokens, device keys or
at-rest keys; the old shared ``mamori.keys`` moves only to the default store it belonged to;
the store and its key file are owner-only."""
from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

from app.config import Config
from app.connection import TokensInKeyStore
from app.devicekeys import LEGACY_KEY_FILE, FileKeyStore, get_or_create, key_file, store_keys
from app.identity import TOKENS_KEY, Tokens
from app.state import AT_REST_KEY, Mamori
from main import build_app
from offline.store import open_store

DEVICE_KEY = "mamori.checkin.device"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def start(store: Path, data_dir: Path) -> Mamori:
    """The app as ``python main.py --store <store>`` builds it (platform configured, not reachable)."""
    return build_app(Config(host="127.0.0.1", port=0, data_dir=data_dir, region="352021", language=None,
                            platform_url="http://127.0.0.1:9", store_path=store, reimport=False))


def log_in(app: Mamori, who: str) -> None:
    TokensInKeyStore(app.keys).set(TOKENS_KEY, Tokens(f"access-{who}", 4e9, f"refresh-{who}", None, 4e9).to_json())


def secrets_in(path: Path) -> set[str]:
    return set(json.loads(path.read_text()).values())


def test_a_new_store_in_the_same_folder_sees_nothing_of_another(ube_store_file, data_dir, tmp_path) -> None:
    first, second = tmp_path / "first.sqlite", tmp_path / "second.sqlite"
    shutil.copy(ube_store_file, first)
    shutil.copy(ube_store_file, second)
    a = start(first, data_dir)
    log_in(a, "resident-a")
    get_or_create(a.keys, DEVICE_KEY)
    assert a.link.logged_in

    b = start(second, data_dir)
    assert not b.link.logged_in and b.link.session.access_token() is None
    assert b.keys.get(DEVICE_KEY) is None
    assert b.keys.get(AT_REST_KEY) != a.keys.get(AT_REST_KEY)
    assert secrets_in(key_file(first)).isdisjoint(secrets_in(key_file(second)))
    assert not (tmp_path / LEGACY_KEY_FILE).exists()

    again = start(first, data_dir)  # the first store keeps its own secrets
    assert again.link.logged_in and again.keys.get(AT_REST_KEY) == a.keys.get(AT_REST_KEY)
    for path in (first, second, key_file(first), key_file(second)):
        assert mode(path) == 0o600, path


def test_the_shared_file_moves_to_the_existing_default_store_only(ube_store_file, data_dir, tmp_path) -> None:
    default = tmp_path / "mamori.sqlite"
    shutil.copy(ube_store_file, default)
    legacy = FileKeyStore(tmp_path / LEGACY_KEY_FILE)  # as an older version left it
    TokensInKeyStore(legacy).set(TOKENS_KEY, Tokens("access-old", 4e9, "refresh-old", None, 4e9).to_json())
    at_rest = get_or_create(legacy, AT_REST_KEY)

    other = start(tmp_path / "other.sqlite", data_dir)  # a second store: not its file
    assert not other.link.logged_in and other.keys.get(AT_REST_KEY) != at_rest
    assert legacy.path.exists()

    app = start(default, data_dir)
    assert app.link.logged_in and app.keys.get(AT_REST_KEY) == at_rest
    assert not legacy.path.exists() and mode(key_file(default)) == 0o600


def test_a_new_default_store_does_not_adopt_a_left_over_file(tmp_path) -> None:
    legacy = FileKeyStore(tmp_path / LEGACY_KEY_FILE)
    legacy.put(AT_REST_KEY, b"k" * 32)
    keys = store_keys(tmp_path / "mamori.sqlite")  # the store does not exist (deleted, or never made)
    assert keys.get(AT_REST_KEY) is None and legacy.get(AT_REST_KEY) == b"k" * 32


def test_an_existing_key_file_is_never_overwritten_by_the_migration(tmp_path) -> None:
    open_store(tmp_path / "mamori.sqlite").conn.close()
    FileKeyStore(tmp_path / LEGACY_KEY_FILE).put(AT_REST_KEY, b"o" * 32)
    FileKeyStore(key_file(tmp_path / "mamori.sqlite")).put(AT_REST_KEY, b"n" * 32)
    assert store_keys(tmp_path / "mamori.sqlite").get(AT_REST_KEY) == b"n" * 32
    assert FileKeyStore(tmp_path / LEGACY_KEY_FILE).get(AT_REST_KEY) == b"o" * 32


def test_store_files_are_created_and_tightened_owner_only(tmp_path) -> None:
    fresh = tmp_path / "new" / "fresh.sqlite"
    db = open_store(fresh)
    db.execute("CREATE TABLE t (x)")
    assert mode(fresh) == 0o600 and mode(fresh.with_name("fresh.sqlite-wal")) == 0o600
    db.conn.close()
    old = tmp_path / "old.sqlite"
    open_store(old).conn.close()
    old.chmod(0o644)  # as versions before this one created it
    open_store(old).conn.close()
    assert mode(old) == 0o600
