"""SQLite tables of health points (schema in ``offline/schema.py``, "points_" migrations).

Health data never lands here in plain text: the quantity and details of each entry (steps,
blood-pressure readings, the event QR, a donation's recipient) are AES-GCM blobs made by
``app.points`` with ``offline.atrest``, bound to the row's id. The plain columns are what the
balance and the charts must sum and sort by (kind, day, points, status). Entry ids are keyed
hashes (HMAC with a device secret), so they reveal nothing either.

Tables:
  points_entry       the append-only ledger; ``status`` moves pending → confirmed | rejected once
  points_steps_day   the day's highest step total, sealed (the steps chart reads one row a day)
  points_rules       the municipality's rules as last fetched (JSON)
  points_trusted_key public keys that sign event QRs and coupons
  points_state       pull cursor, the platform's balance and when it was read
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from geo.sql import run_script, utc_now

SCHEMA_0001 = """
CREATE TABLE points_entry (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    day TEXT NOT NULL,
    points INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'rejected')),
    reason TEXT,
    origin TEXT NOT NULL CHECK (origin IN ('device', 'platform')),
    sealed BLOB NOT NULL,
    created_at TEXT NOT NULL,
    settled_at TEXT
);
CREATE INDEX points_entry_pending ON points_entry (seq) WHERE status = 'pending';
CREATE INDEX points_entry_day ON points_entry (day, kind, status, points);
CREATE TABLE points_steps_day (day TEXT PRIMARY KEY, sealed BLOB NOT NULL);
CREATE TABLE points_rules (
    municipality_code TEXT PRIMARY KEY, version INTEGER NOT NULL, body TEXT NOT NULL, fetched_at TEXT NOT NULL
);
CREATE TABLE points_trusted_key (
    kid BLOB NOT NULL, purpose TEXT NOT NULL, raw BLOB NOT NULL, municipality_code TEXT NOT NULL,
    PRIMARY KEY (kid, purpose)
);
CREATE TABLE points_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def migrate_0001(db: sqlite_utils.Database) -> None:
    run_script(db, SCHEMA_0001)


@dataclass(frozen=True, slots=True)
class EntryRow:
    seq: int
    id: str
    kind: str
    day: str
    points: int
    status: str
    reason: str | None
    origin: str
    sealed: bytes
    created_at: str
    settled_at: str | None


_COLS = "seq, id, kind, day, points, status, reason, origin, sealed, created_at, settled_at"


def insert_entries(db: sqlite_utils.Database, rows: Iterable[dict[str, Any]]) -> int:
    """Append entries, skipping ids already present (idempotent); return how many were new.

    Each row: id, kind, day, points, status, reason, origin, sealed (created_at defaults to now).
    """
    now = utc_now()
    cursor = db.conn.executemany(
        "INSERT OR IGNORE INTO points_entry (id, kind, day, points, status, reason, origin, sealed, created_at,"
        " settled_at) VALUES (:id, :kind, :day, :points, :status, :reason, :origin, :sealed, :created_at,"
        " :settled_at)",
        ({"reason": None, "settled_at": None, **row, "created_at": row.get("created_at", now)} for row in rows))
    return cursor.rowcount


def entry(db: sqlite_utils.Database, entry_id: str) -> EntryRow | None:
    row = db.execute(f"SELECT {_COLS} FROM points_entry WHERE id = ?", [entry_id]).fetchone()
    return None if row is None else EntryRow(*row)


def entries(db: sqlite_utils.Database, *, limit: int, before_seq: int | None = None) -> list[EntryRow]:
    """Newest first (the history screen), ``limit`` at a time."""
    sql = f"SELECT {_COLS} FROM points_entry" + (" WHERE seq < ?" if before_seq else "") + " ORDER BY seq DESC LIMIT ?"
    params = [before_seq, limit] if before_seq else [limit]
    return [EntryRow(*r) for r in db.execute(sql, params)]


def pending(db: sqlite_utils.Database, limit: int) -> list[EntryRow]:
    return [EntryRow(*r) for r in db.execute(
        f"SELECT {_COLS} FROM points_entry WHERE status = 'pending' ORDER BY seq LIMIT ?", [limit])]


def day_entries(db: sqlite_utils.Database, day: str, kind: str) -> list[EntryRow]:
    """One day's live (not rejected) entries of one kind, oldest first."""
    return [EntryRow(*r) for r in db.execute(
        f"SELECT {_COLS} FROM points_entry WHERE day = ? AND kind = ? AND status != 'rejected' ORDER BY seq",
        [day, kind])]


def settle(db: sqlite_utils.Database, entry_id: str, status: str, points: int, reason: str | None) -> bool:
    """Record the platform's verdict on a pending entry; False when it was already settled."""
    cursor = db.execute(
        "UPDATE points_entry SET status = ?, points = ?, reason = ?, settled_at = ? WHERE id = ? AND status = 'pending'",
        [status, points, reason, utc_now(), entry_id])
    return cursor.rowcount == 1


def totals(db: sqlite_utils.Database) -> tuple[int, int, int]:
    """(confirmed sum, pending earnings, pending spends as a negative number) in one scan."""
    row = db.execute(
        "SELECT COALESCE(SUM(CASE WHEN status = 'confirmed' THEN points END), 0),"
        " COALESCE(SUM(CASE WHEN status = 'pending' AND points > 0 THEN points END), 0),"
        " COALESCE(SUM(CASE WHEN status = 'pending' AND points < 0 THEN points END), 0)"
        " FROM points_entry").fetchone()
    return int(row[0]), int(row[1]), int(row[2])


def points_by_day(db: sqlite_utils.Database, first_day: str, last_day: str,
                  kinds: Sequence[str]) -> dict[str, int]:
    """Points earned per day (pending and confirmed, not rejected) by the given kinds."""
    marks = ",".join("?" * len(kinds))
    rows = db.execute(
        f"SELECT day, SUM(points) FROM points_entry WHERE day BETWEEN ? AND ? AND kind IN ({marks})"
        " AND status != 'rejected' GROUP BY day", [first_day, last_day, *kinds])
    return {day: int(total) for day, total in rows}


# --- steps per day (sealed) -----------------------------------------------------------------

def put_steps_day(db: sqlite_utils.Database, day: str, sealed: bytes) -> None:
    db.execute("INSERT OR REPLACE INTO points_steps_day VALUES (?, ?)", [day, sealed])


def delete_steps_day(db: sqlite_utils.Database, day: str) -> None:
    db.execute("DELETE FROM points_steps_day WHERE day = ?", [day])


def steps_days(db: sqlite_utils.Database, first_day: str, last_day: str) -> list[tuple[str, bytes]]:
    return list(db.execute("SELECT day, sealed FROM points_steps_day WHERE day BETWEEN ? AND ? ORDER BY day",
                           [first_day, last_day]))


def steps_day(db: sqlite_utils.Database, day: str) -> bytes | None:
    row = db.execute("SELECT sealed FROM points_steps_day WHERE day = ?", [day]).fetchone()
    return None if row is None else row[0]


# --- rules, keys, state -------------------------------------------------------------------------

def put_rules(db: sqlite_utils.Database, municipality_code: str, version: int, body: str) -> None:
    db.table("points_rules").upsert({"municipality_code": municipality_code, "version": version, "body": body,
                                     "fetched_at": utc_now()}, pk="municipality_code")


def get_rules(db: sqlite_utils.Database, municipality_code: str) -> tuple[str, str] | None:
    """(JSON body, fetched_at) of the cached rules, or None."""
    row = db.execute("SELECT body, fetched_at FROM points_rules WHERE municipality_code = ?",
                     [municipality_code]).fetchone()
    return None if row is None else (row[0], row[1])


def put_trusted_key(db: sqlite_utils.Database, kid: bytes, purpose: str, raw: bytes, municipality_code: str) -> None:
    db.execute("INSERT OR REPLACE INTO points_trusted_key VALUES (?, ?, ?, ?)", [kid, purpose, raw, municipality_code])


def trusted_key(db: sqlite_utils.Database, kid: bytes, purpose: str) -> tuple[bytes, str] | None:
    """(raw public key, municipality code) of a trusted signer, or None."""
    row = db.execute("SELECT raw, municipality_code FROM points_trusted_key WHERE kid = ? AND purpose = ?",
                     [kid, purpose]).fetchone()
    return None if row is None else (row[0], row[1])


def get_state(db: sqlite_utils.Database, key: str) -> str | None:
    row = db.execute("SELECT value FROM points_state WHERE key = ?", [key]).fetchone()
    return None if row is None else row[0]


def put_state(db: sqlite_utils.Database, **values: str) -> None:
    for key, value in values.items():
        db.execute("INSERT OR REPLACE INTO points_state VALUES (?, ?)", [key, value])
