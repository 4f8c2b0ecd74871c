"""The local SQLite store: opening it and bringing its schema up to date.

Every screen reads from here, so the app works with no network. Schema changes are
named migrations applied once each, in list order, and recorded in ``_migrations``.
A module that owns tables adds its migrations to ``MIGRATIONS`` in ``offline/schema.py``.
"""
from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from geo.sql import utc_now
from offline.schema import MIGRATIONS

BUSY_TIMEOUT_S = 30.0


class _Connection(sqlite3.Connection):
    """Transactions take the write lock when they begin (``BEGIN IMMEDIATE``): the UI and the sync
    engine write through their own connections, and a deferred transaction that read first and
    then writes after the other committed fails at once ("database is locked", WAL snapshot)
    instead of waiting its turn."""

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        return super().execute("BEGIN IMMEDIATE" if sql == "BEGIN" else sql, parameters)


def open_store(path: str | Path) -> sqlite_utils.Database:
    """Open (creating if needed) the store at ``path`` and apply pending migrations."""
    if str(path) != ":memory:":
        _owner_only(Path(path))
    # The UI and the sync engine write through their own connections: a writer waits for the
    # other's transaction (up to BUSY_TIMEOUT_S) instead of failing with "database is locked".
    conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_S,
                           factory=_Connection)
    db = sqlite_utils.Database(conn)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    migrate(db)
    return db


def _owner_only(path: Path) -> None:
    """The store holds personal data: create it 0600 (SQLite gives its -wal/-shm files the same
    mode) and tighten a store an older version created 0644."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file.exists() and file.stat().st_mode & 0o077:
            os.chmod(file, 0o600)


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Apply every migration not yet recorded; return the names applied now."""
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    done = {row[0] for row in db.execute("SELECT name FROM _migrations").fetchall()}
    applied = []
    for name, step in MIGRATIONS:
        if name in done:
            continue
        with db.atomic():  # one migration, one transaction
            step(db)
            db.execute("INSERT INTO _migrations VALUES (?, ?)", [name, utc_now()])
        applied.append(name)
    return applied



def store_file(db: sqlite_utils.Database) -> str:
    """The store's file; "" for an in-memory store."""
    for _, name, file in db.execute("PRAGMA database_list").fetchall():
        if name == "main" and file:
            return str(file)
    return ""


@contextmanager
def own_connection(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """A connection of this thread's own to ``db``'s file (SQLite connections are per thread),
    closed afterwards; ``db`` itself for an in-memory store."""
    path = store_file(db)
    if not path:
        yield db
        return
    mine = open_store(path)
    try:
        yield mine
    finally:
        mine.conn.close()
