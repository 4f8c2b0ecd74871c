"""SQLite table of ride bookings (schema in ``offline/schema.py``, "rides_" migrations).

A booking holds places (home, current position) and who rides, so the whole booking lives
only as an AES-GCM blob sealed by ``app.rides``; the plain columns are what lists sort and
filter by: status, times, and whether something still has to reach the platform.
"""
from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from geo.sql import run_script

SCHEMA_0001 = """
CREATE TABLE rides_booking (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    unsent INTEGER NOT NULL CHECK (unsent IN (0, 1)),
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    sealed BLOB NOT NULL
);
CREATE INDEX rides_booking_created ON rides_booking (created_at);
CREATE INDEX rides_booking_unsent ON rides_booking (unsent) WHERE unsent = 1;
"""


def migrate_0001(db: sqlite_utils.Database) -> None:
    run_script(db, SCHEMA_0001)


@dataclass(frozen=True, slots=True)
class SealedBooking:
    id: str
    status: str
    unsent: bool  # a booking or a cancel the platform has not yet acknowledged
    created_at: str
    updated_at: str
    sealed: bytes


class RideRows:
    """Rows of ``rides_booking``; what they contain is ``app.rides``'s business."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    def put(self, row: SealedBooking) -> None:
        with self.db.atomic():
            self.db.execute(
                "INSERT INTO rides_booking (id, status, unsent, created_at, updated_at, sealed) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET status = excluded.status, unsent = excluded.unsent,"
                " updated_at = excluded.updated_at, sealed = excluded.sealed",
                [row.id, row.status, int(row.unsent), row.created_at, row.updated_at, row.sealed],
            )

    def get(self, booking_id: str) -> SealedBooking | None:
        found = self.db.execute(f"SELECT {_COLUMNS} FROM rides_booking WHERE id = ?", [booking_id]).fetchone()
        return _row(found) if found else None

    def newest(self, limit: int = 100) -> list[SealedBooking]:
        sql = f"SELECT {_COLUMNS} FROM rides_booking ORDER BY created_at DESC, id LIMIT ?"
        return [_row(r) for r in self.db.execute(sql, [limit]).fetchall()]

    def unsent(self) -> list[SealedBooking]:
        """Oldest first, so bookings reach the platform in the order they were made."""
        sql = f"SELECT {_COLUMNS} FROM rides_booking WHERE unsent = 1 ORDER BY created_at, id"
        return [_row(r) for r in self.db.execute(sql).fetchall()]

    def with_status(self, statuses: tuple[str, ...]) -> list[SealedBooking]:
        marks = ",".join("?" * len(statuses))
        sql = f"SELECT {_COLUMNS} FROM rides_booking WHERE status IN ({marks}) ORDER BY created_at, id"
        return [_row(r) for r in self.db.execute(sql, list(statuses)).fetchall()]


_COLUMNS = "id, status, unsent, created_at, updated_at, sealed"


def _row(r: tuple) -> SealedBooking:
    return SealedBooking(r[0], r[1], bool(r[2]), r[3], r[4], bytes(r[5]))
