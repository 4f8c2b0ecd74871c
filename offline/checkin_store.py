"""SQLite tables of shelter check-in (schema in ``offline/schema.py``, "checkin_" migrations).

Personal data only ever lands here as AES-GCM blobs made by ``app.checkin``; the plain columns
hold what the desk must count and sort by (shelter, times, household size, pseudonymous ref).

Tables:
  checkin_public_key  trusted public keys (devices, shelter seal key, poster signers)
  checkin_card        the resident's own evacuee card, encrypted (one row)
  checkin_event       check-in/out events with idempotency keys; ``synced_at`` NULL = pending;
                      ``in_car``: the household stays in a car (車中泊)
  checkin_evacuee     desk: evacuee households, card encrypted with the desk key
  checkin_stay        desk: who is where; an open stay has ``checked_out_at`` NULL
  checkin_nonce       desk: nonces of QR codes already used (replay cache)
  checkin_survey      shelter-life survey answers (anonymous), pending until synced
  checkin_sync        platform sync bookkeeping: cursors, last sync time (no secrets)
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from geo.sql import run_script, utc_now

SCHEMA_0001 = """
CREATE TABLE checkin_public_key (
    kind TEXT NOT NULL CHECK (kind IN ('device', 'seal', 'poster')),
    kid BLOB NOT NULL, scope TEXT NOT NULL, raw BLOB NOT NULL, added_seq INTEGER NOT NULL,
    PRIMARY KEY (kind, kid)
);
CREATE TABLE checkin_card (
    slot INTEGER PRIMARY KEY CHECK (slot = 1), blob BLOB NOT NULL, updated_at TEXT NOT NULL
);
CREATE TABLE checkin_event (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE,
    origin TEXT NOT NULL CHECK (origin IN ('self', 'desk', 'remote')),
    action TEXT NOT NULL CHECK (action IN ('check_in', 'check_out')),
    ref TEXT NOT NULL, household_size INTEGER NOT NULL,
    shelter_id TEXT NOT NULL, municipality_code TEXT NOT NULL, shelter_name TEXT NOT NULL,
    at TEXT NOT NULL, synced_at TEXT
);
CREATE INDEX checkin_event_pending ON checkin_event (seq) WHERE synced_at IS NULL AND origin != 'remote';
CREATE TABLE checkin_evacuee (
    ref TEXT PRIMARY KEY, source TEXT NOT NULL CHECK (source IN ('qr', 'paper', 'remote')),
    household_size INTEGER NOT NULL, blob BLOB, registered_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE TABLE checkin_stay (
    id INTEGER PRIMARY KEY, ref TEXT NOT NULL, shelter_id TEXT NOT NULL,
    household_size INTEGER NOT NULL, checked_in_at TEXT NOT NULL, checked_out_at TEXT,
    end_reason TEXT CHECK (end_reason IN ('check_out', 'moved')), flagged INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX checkin_stay_open ON checkin_stay (shelter_id) WHERE checked_out_at IS NULL;
CREATE INDEX checkin_stay_ref ON checkin_stay (ref);
CREATE TABLE checkin_nonce (
    nonce BLOB PRIMARY KEY, device_kid BLOB NOT NULL, expires_at INTEGER NOT NULL
);
CREATE TABLE checkin_survey (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, idempotency_key TEXT NOT NULL UNIQUE,
    shelter_id TEXT NOT NULL, language TEXT NOT NULL, answers TEXT NOT NULL,
    answered_at TEXT NOT NULL, synced_at TEXT
);
"""


def migrate_0001(db: sqlite_utils.Database) -> None:
    run_script(db, SCHEMA_0001)


def migrate_0002(db: sqlite_utils.Database) -> None:
    run_script(db, "CREATE TABLE checkin_sync (key TEXT PRIMARY KEY, value TEXT NOT NULL);")


def migrate_0003(db: sqlite_utils.Database) -> None:
    """A self check-in keeps the poster it was made with: the platform checks it before counting."""
    run_script(db, "ALTER TABLE checkin_event ADD COLUMN poster TEXT;")


def migrate_0004(db: sqlite_utils.Database) -> None:
    """A check-in says whether the household stays in a car (車中泊): the city counts them per shelter."""
    run_script(db, "ALTER TABLE checkin_event ADD COLUMN in_car INTEGER NOT NULL DEFAULT 0;")


# --- public keys ------------------------------------------------------------------------

def put_public_key(db: sqlite_utils.Database, kind: str, kid: bytes, scope: str, raw: bytes) -> None:
    with db.atomic():
        seq = db.execute("SELECT COALESCE(MAX(added_seq), 0) + 1 FROM checkin_public_key").fetchone()[0]
        db.execute("INSERT OR REPLACE INTO checkin_public_key VALUES (?, ?, ?, ?, ?)", [kind, kid, scope, raw, seq])


def delete_public_key(db: sqlite_utils.Database, kind: str, kid: bytes) -> None:
    db.execute("DELETE FROM checkin_public_key WHERE kind = ? AND kid = ?", [kind, kid])


def get_public_key(db: sqlite_utils.Database, kind: str, kid: bytes) -> bytes | None:
    row = db.execute("SELECT raw FROM checkin_public_key WHERE kind = ? AND kid = ?", [kind, kid]).fetchone()
    return None if row is None else row[0]


def latest_scoped_key(db: sqlite_utils.Database, kind: str, scope: str) -> bytes | None:
    row = db.execute("SELECT raw FROM checkin_public_key WHERE kind = ? AND scope = ? ORDER BY added_seq DESC LIMIT 1",
                     [kind, scope]).fetchone()
    return None if row is None else row[0]


# --- resident's own card ------------------------------------------------------------------

def put_card_blob(db: sqlite_utils.Database, blob: bytes) -> None:
    db.execute("INSERT OR REPLACE INTO checkin_card VALUES (1, ?, ?)", [blob, utc_now()])


def get_card_blob(db: sqlite_utils.Database) -> bytes | None:
    row = db.execute("SELECT blob FROM checkin_card WHERE slot = 1").fetchone()
    return None if row is None else row[0]


def delete_card_blob(db: sqlite_utils.Database) -> None:
    db.execute("DELETE FROM checkin_card")


# --- events (the outbox's source) --------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class EventRow:
    seq: int
    idempotency_key: str
    origin: str
    action: str
    ref: str
    household_size: int
    shelter_id: str
    municipality_code: str
    shelter_name: str
    at: str
    synced_at: str | None
    poster: str | None  # the entrance poster's QR text (self check-ins only)
    in_car: bool  # the household stays in a car (車中泊)


_EVENT_COLS = ("seq, idempotency_key, origin, action, ref, household_size, shelter_id, "
               "municipality_code, shelter_name, at, synced_at, poster, in_car")


def _event_row(row: Any) -> EventRow:
    values = list(row)
    values[-1] = bool(values[-1])  # SQLite's 0/1
    return EventRow(*values)


def insert_event(db: sqlite_utils.Database, row: dict[str, Any]) -> EventRow:
    """Insert unless the idempotency key exists; return the stored row either way."""
    db.execute(
        "INSERT OR IGNORE INTO checkin_event (idempotency_key, origin, action, ref, household_size, shelter_id,"
        " municipality_code, shelter_name, at, poster, in_car) VALUES (:idempotency_key, :origin, :action, :ref,"
        " :household_size, :shelter_id, :municipality_code, :shelter_name, :at, :poster, :in_car)",
        {"poster": None, "in_car": False, **row})
    return event_by_key(db, row["idempotency_key"])  # type: ignore[return-value]


def event_by_key(db: sqlite_utils.Database, key: str) -> EventRow | None:
    row = db.execute(f"SELECT {_EVENT_COLS} FROM checkin_event WHERE idempotency_key = ?", [key]).fetchone()
    return None if row is None else _event_row(row)


def last_event(db: sqlite_utils.Database, origin: str) -> EventRow | None:
    row = db.execute(f"SELECT {_EVENT_COLS} FROM checkin_event WHERE origin = ? ORDER BY seq DESC LIMIT 1",
                     [origin]).fetchone()
    return None if row is None else _event_row(row)


def pending_events(db: sqlite_utils.Database, origin: str, limit: int) -> list[EventRow]:
    """Unsent events of one origin ("self": the resident's own, "desk": this desk's), oldest first."""
    rows = db.execute(f"SELECT {_EVENT_COLS} FROM checkin_event WHERE synced_at IS NULL AND origin = ?"
                      " ORDER BY seq LIMIT ?", [origin, limit]).fetchall()
    return [_event_row(r) for r in rows]


def mark_synced(db: sqlite_utils.Database, table: str, keys: Iterable[str]) -> int:
    """Acknowledge keys; unknown or already acknowledged keys are ignored. Returns rows changed."""
    assert table in ("checkin_event", "checkin_survey")
    now, changed = utc_now(), 0
    with db.atomic():
        for key in keys:
            cur = db.execute(f"UPDATE {table} SET synced_at = ? WHERE idempotency_key = ? AND synced_at IS NULL",
                             [now, key])
            changed += cur.rowcount
    return changed


# --- desk: evacuees and stays ---------------------------------------------------------------

def upsert_evacuee(db: sqlite_utils.Database, ref: str, source: str, household_size: int, blob: bytes | None) -> None:
    now = utc_now()
    db.execute(
        "INSERT INTO checkin_evacuee VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (ref) DO UPDATE SET"
        " household_size = excluded.household_size, updated_at = excluded.updated_at,"
        " source = CASE WHEN excluded.blob IS NULL THEN source ELSE excluded.source END,"
        " blob = COALESCE(excluded.blob, blob)",
        [ref, source, household_size, blob, now, now])


def evacuee_blobs(db: sqlite_utils.Database) -> Iterator[tuple[str, str, bytes]]:
    yield from db.execute("SELECT ref, source, blob FROM checkin_evacuee WHERE blob IS NOT NULL ORDER BY ref")


def evacuee_blob(db: sqlite_utils.Database, ref: str) -> bytes | None:
    row = db.execute("SELECT blob FROM checkin_evacuee WHERE ref = ?", [ref]).fetchone()
    return None if row is None else row[0]


@dataclass(frozen=True, slots=True)
class StayRow:
    id: int
    ref: str
    shelter_id: str
    household_size: int
    checked_in_at: str
    checked_out_at: str | None
    end_reason: str | None
    flagged: bool


_STAY_COLS = "id, ref, shelter_id, household_size, checked_in_at, checked_out_at, end_reason, flagged"


def _stay_row(r: tuple[Any, ...]) -> StayRow:
    return StayRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7]))


def open_stays(db: sqlite_utils.Database, ref: str | None = None, shelter_id: str | None = None) -> list[StayRow]:
    sql = f"SELECT {_STAY_COLS} FROM checkin_stay WHERE checked_out_at IS NULL"
    args: list[str] = []
    if ref is not None:
        sql, args = sql + " AND ref = ?", [*args, ref]
    if shelter_id is not None:
        sql, args = sql + " AND shelter_id = ?", [*args, shelter_id]
    return [_stay_row(r) for r in db.execute(sql + " ORDER BY checked_in_at, id", args)]


def stays_of(db: sqlite_utils.Database, ref: str) -> list[StayRow]:
    rows = db.execute(f"SELECT {_STAY_COLS} FROM checkin_stay WHERE ref = ? ORDER BY checked_in_at, id", [ref])
    return [_stay_row(r) for r in rows]


def flagged_refs(db: sqlite_utils.Database) -> set[str]:
    return {r[0] for r in db.execute("SELECT DISTINCT ref FROM checkin_stay WHERE flagged = 1")}


def insert_stay(db: sqlite_utils.Database, ref: str, shelter_id: str, household_size: int, at: str,
                closed_at: str | None = None, flagged: bool = False) -> int:
    cur = db.execute(
        "INSERT INTO checkin_stay (ref, shelter_id, household_size, checked_in_at, checked_out_at, end_reason, flagged)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [ref, shelter_id, household_size, at, closed_at, None if closed_at is None else "moved", int(flagged)])
    assert cur.lastrowid is not None  # an INSERT always sets it
    return cur.lastrowid


def close_stay(db: sqlite_utils.Database, stay_id: int, at: str, reason: str, flag: bool = False) -> None:
    db.execute("UPDATE checkin_stay SET checked_out_at = ?, end_reason = ?, flagged = MAX(flagged, ?) WHERE id = ?",
               [at, reason, int(flag), stay_id])


def flag_stay(db: sqlite_utils.Database, stay_id: int) -> None:
    db.execute("UPDATE checkin_stay SET flagged = 1 WHERE id = ?", [stay_id])


# --- desk: replay cache ---------------------------------------------------------------------------

def consume_nonce(db: sqlite_utils.Database, nonce: bytes, device_kid: bytes, expires_at: int) -> bool:
    """Remember ``nonce``; False if it was already there (a replay)."""
    cur = db.execute("INSERT OR IGNORE INTO checkin_nonce VALUES (?, ?, ?)", [nonce, device_kid, expires_at])
    return cur.rowcount == 1


def nonce_seen(db: sqlite_utils.Database, nonce: bytes) -> bool:
    return db.execute("SELECT 1 FROM checkin_nonce WHERE nonce = ?", [nonce]).fetchone() is not None


def prune_nonces(db: sqlite_utils.Database, before: int) -> int:
    """Forget nonces of QR codes that expired before ``before``: those fail the expiry check anyway."""
    return db.execute("DELETE FROM checkin_nonce WHERE expires_at < ?", [before]).rowcount


# --- survey ---------------------------------------------------------------------------------------

def insert_survey(db: sqlite_utils.Database, key: str, shelter_id: str, language: str, answers_json: str) -> None:
    db.execute("INSERT OR IGNORE INTO checkin_survey (idempotency_key, shelter_id, language, answers, answered_at)"
               " VALUES (?, ?, ?, ?, ?)", [key, shelter_id, language, answers_json, utc_now()])


def pending_surveys(db: sqlite_utils.Database, limit: int) -> list[tuple[str, str, str, str, str]]:
    return db.execute("SELECT idempotency_key, shelter_id, language, answers, answered_at FROM checkin_survey"
                      " WHERE synced_at IS NULL ORDER BY seq LIMIT ?", [limit]).fetchall()


# --- platform sync bookkeeping ----------------------------------------------------------------------

def get_sync(db: sqlite_utils.Database, key: str) -> str | None:
    row = db.execute("SELECT value FROM checkin_sync WHERE key = ?", [key]).fetchone()
    return None if row is None else row[0]


def put_sync(db: sqlite_utils.Database, **values: str) -> None:
    with db.atomic():
        for key, value in values.items():
            db.execute("INSERT OR REPLACE INTO checkin_sync VALUES (?, ?)", [key, value])
