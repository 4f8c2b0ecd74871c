"""Small SQLite helpers shared by the store, its migrations and the importers."""
from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import sqlite_utils


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def run_script(db: sqlite_utils.Database, sql: str) -> None:
    """Run several statements inside the current transaction (``db.atomic()``).

    ``sqlite3.executescript`` would COMMIT first, breaking the migration's atomicity.
    """
    statement = ""
    for line in sql.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete SQL statement: {statement.strip()[:80]}")
