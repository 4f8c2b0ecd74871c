"""Local tables of the family safety check. Personal fields (names, answers, messages,
locations) are sealed with ``offline.atrest`` under the family key; only pseudonymous ids,
times and flags stay in the clear so rows can be found and ordered."""
from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from geo.sql import run_script
from offline import atrest


def migrate_0001(db: sqlite_utils.Database) -> None:
    run_script(
        db,
        """
        CREATE TABLE family_group (
            id TEXT PRIMARY KEY, owner TEXT NOT NULL, sealed BLOB NOT NULL, updated_at TEXT NOT NULL
        );
        CREATE TABLE family_member (
            group_id TEXT NOT NULL REFERENCES family_group(id) ON DELETE CASCADE,
            person TEXT NOT NULL, role TEXT NOT NULL, sealed BLOB NOT NULL,
            PRIMARY KEY (group_id, person)
        );
        CREATE TABLE family_caregiver (
            person TEXT NOT NULL, caregiver TEXT NOT NULL, relation TEXT NOT NULL,
            PRIMARY KEY (person, caregiver)
        );
        -- origin: 'mine' (given on this phone, for me or by proxy) or 'platform' (pulled latest);
        -- pending: 1 proxy answer waiting for FamilySync, 2 refused by the platform, 0 otherwise
        CREATE TABLE family_answer (
            id TEXT PRIMARY KEY, person TEXT NOT NULL, observed_at TEXT NOT NULL,
            origin TEXT NOT NULL, pending INTEGER NOT NULL DEFAULT 0, sealed BLOB NOT NULL
        );
        CREATE INDEX family_answer_person ON family_answer (person, observed_at);
        CREATE TABLE family_alert_seen (
            alert_id TEXT PRIMARY KEY, notified_at TEXT, answered_at TEXT
        );
        """,
    )


def migrate_0002(db: sqlite_utils.Database) -> None:
    """Whether a member shares answers with this account (NULL: not known yet), so the list can
    say "not shared" rather than "no answer"."""
    db.execute("ALTER TABLE family_member ADD COLUMN shared INTEGER")


def seal(key: bytes, table: str, row_id: str, values: dict[str, Any]) -> bytes:
    plain = json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode()
    return atrest.encrypt_at_rest(key, plain, f"{table}:{row_id}".encode())


def unseal(key: bytes, table: str, row_id: str, blob: bytes) -> dict[str, Any]:
    return json.loads(atrest.decrypt_at_rest(key, blob, f"{table}:{row_id}".encode()))


def put_answer(db: sqlite_utils.Database, key: bytes, row_id: str, person: str, observed_at: str, origin: str,
               pending: bool, values: dict[str, Any]) -> None:
    db.execute("INSERT OR REPLACE INTO family_answer VALUES (?, ?, ?, ?, ?, ?)",
               [row_id, person, observed_at, origin, int(pending), seal(key, "family_answer", row_id, values)])


def answers(db: sqlite_utils.Database, key: bytes, where: str = "1", params: list[Any] | None = None) -> list[dict[str, Any]]:
    """Unsealed answer rows (values + id, person, observed_at, origin, pending), oldest first."""
    rows = db.execute(f"SELECT id, person, observed_at, origin, pending, sealed FROM family_answer WHERE {where}"
                      " ORDER BY observed_at, id", params or []).fetchall()
    return [{**unseal(key, "family_answer", r[0], r[5]), "id": r[0], "person": r[1], "observed_at": r[2],
             "origin": r[3], "pending": r[4]} for r in rows]
