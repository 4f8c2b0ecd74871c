"""Device secrets (at-rest keys, device signing keys) kept outside the SQLite store.

``KeyStore`` is the small protocol every feature asks for its keys. In web and desktop mode
the Python process runs on the resident's own machine, so ``FileKeyStore`` keeps the
secrets in an owner-only file beside (never inside) the database; on a phone build the same
protocol is backed by flet-secure-storage (Keychain / Android Keystore).

Each store has its own key file, ``<store>.keys`` (``store_keys``): two stores in one folder
never share tokens, device keys or at-rest keys.
"""
from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import threading
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

LEGACY_KEY_FILE = "mamori.keys"  # before 2026-12: one file per folder, shared by every store in it
DEFAULT_STORE = "mamori.sqlite"  # the store name the app used when it created that file


class KeyStore(Protocol):
    def get(self, name: str) -> bytes | None: ...

    def put(self, name: str, value: bytes) -> None: ...

    def delete(self, name: str) -> None: ...


def get_or_create(store: KeyStore, name: str, size: int = 32) -> bytes:
    """The secret called ``name``, made from the OS random source on first use."""
    value = store.get(name)
    if value is None:
        value = secrets.token_bytes(size)
        store.put(name, value)
    return value


class MemoryKeyStore:
    """For tests and for a session that must leave nothing behind."""

    def __init__(self) -> None:
        self._values: dict[str, bytes] = {}

    def get(self, name: str) -> bytes | None:
        return self._values.get(name)

    def put(self, name: str, value: bytes) -> None:
        self._values[name] = value

    def delete(self, name: str) -> None:
        self._values.pop(name, None)


class FileKeyStore:
    """A JSON file readable by its owner only (0600), written atomically."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()

    def _read(self) -> dict[str, str]:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise OSError(f"{self.path}: the key file is unreadable ({exc}); data sealed with it cannot be opened") from None

    def _write(self, values: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(values, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def get(self, name: str) -> bytes | None:
        with self._lock:
            value = self._read().get(name)
        return base64.b64decode(value) if value else None

    def put(self, name: str, value: bytes) -> None:
        with self._lock:
            values = self._read()
            values[name] = base64.b64encode(value).decode()
            self._write(values)

    def delete(self, name: str) -> None:
        with self._lock:
            values = self._read()
            if values.pop(name, None) is not None:
                self._write(values)


def key_file(store: str | Path) -> Path:
    """Where the secrets of the store at ``store`` live: ``<store>.keys``."""
    path = Path(store)
    return path.with_name(path.name + ".keys")


def store_keys(store: str | Path) -> FileKeyStore:
    """The key file of the store at ``store``; call it before the store is first opened.

    Migration: the shared ``mamori.keys`` of older versions belonged to the folder's default
    store, so it moves (never copies) to ``mamori.sqlite.keys`` only when that store already
    exists. Any other store, or a new default store, starts with a fresh key file; the
    legacy file is left alone for the store it belongs to.
    """
    path = key_file(store)
    legacy = path.with_name(LEGACY_KEY_FILE)
    if not path.exists() and legacy.exists():
        if Path(store).name == DEFAULT_STORE and Path(store).exists():
            _move(legacy, path)
        else:
            log.warning("%s: not taking over %s (it belongs to %s); this store gets its own key file",
                        Path(store).name, LEGACY_KEY_FILE, DEFAULT_STORE)
    return FileKeyStore(path)


def _move(legacy: Path, path: Path) -> None:
    """Rename without overwriting: if another process made ``path`` first, keep theirs."""
    try:
        os.link(legacy, path)
    except (FileExistsError, FileNotFoundError):
        return
    os.chmod(path, 0o600)
    legacy.unlink(missing_ok=True)
    log.info("moved %s to %s (one key file per store)", LEGACY_KEY_FILE, path.name)
