"""Named schema migrations, applied in order by ``offline.store.migrate``.

Append new steps at the end; never edit or reorder a step that has shipped.
"""
from __future__ import annotations

from collections.abc import Callable

import sqlite_utils

from geo.schema import district_tables, hazard_tables, region_tables
from geo.sql import run_script

Migration = tuple[str, Callable[[sqlite_utils.Database], None]]


MIGRATIONS: list[Migration] = [
    ("0001_region_tables", region_tables),
]


def _sync_tables(db: sqlite_utils.Database) -> None:
    """Outbox, pull cursors, pulled public entities and the local consent ledger.

    Outbox payloads are AES-GCM ciphertext and ``idem_key``/``entity_ref`` are hashes, so
    nothing personal is readable from the file. ``categories`` lists every consent the
    write needs, comma-wrapped (",safety_status,location,") so a revoke can purge by one.
    """
    run_script(
        db,
        """
        CREATE TABLE sync_outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            idem_key TEXT NOT NULL UNIQUE,
            op TEXT NOT NULL CHECK (op IN ('upsert', 'consent')),
            categories TEXT NOT NULL, entity_type TEXT NOT NULL, entity_ref TEXT NOT NULL,
            nonce BLOB NOT NULL, payload BLOB NOT NULL,
            created_at TEXT NOT NULL, rejected TEXT
        );
        CREATE INDEX sync_outbox_ref ON sync_outbox (entity_ref);
        CREATE TABLE sync_dataset (
            name TEXT PRIMARY KEY, cursor TEXT,
            last_success_at TEXT, last_attempt_at TEXT, last_error TEXT,
            entity_count INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE sync_entity (
            id TEXT PRIMARY KEY, dataset TEXT NOT NULL, entity_type TEXT NOT NULL,
            modified_at TEXT, data TEXT NOT NULL
        );
        CREATE INDEX sync_entity_dataset ON sync_entity (dataset, entity_type);
        CREATE TABLE sync_status (key TEXT PRIMARY KEY, value TEXT);
        CREATE TABLE consent_state (
            category TEXT PRIMARY KEY, granted INTEGER NOT NULL, changed_at TEXT NOT NULL
        );
        CREATE TABLE consent_event (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, category TEXT NOT NULL,
            action TEXT NOT NULL CHECK (action IN ('grant', 'revoke')),
            purpose TEXT NOT NULL, recipient TEXT NOT NULL, at TEXT NOT NULL
        );
        """
    )


MIGRATIONS.append(("sync_0001_outbox_consent", _sync_tables))


def _household_tables(db: sqlite_utils.Database) -> None:
    """Household profile, plan and supply ticks: one AES-GCM sealed JSON record per household.

    The key lives in the platform's secure storage, never here, so the file holds no readable
    personal data (ages, medication, allergies, contacts).
    """
    run_script(
        db,
        """
        CREATE TABLE household (
            id TEXT PRIMARY KEY, nonce BLOB NOT NULL, sealed BLOB NOT NULL, updated_at TEXT NOT NULL
        );
        """
    )


MIGRATIONS.append(("hazard_0001_layers_areas", hazard_tables))
MIGRATIONS.append(("household_0001_sealed_profile", _household_tables))


def _checkin_tables(db: sqlite_utils.Database) -> None:
    from offline.checkin_store import migrate_0001  # the check-in module owns its DDL

    migrate_0001(db)


MIGRATIONS.append(("checkin_0001_cards_events_desk", _checkin_tables))


def _checkin_sync_table(db: sqlite_utils.Database) -> None:
    from offline.checkin_store import migrate_0002

    migrate_0002(db)


def _checkin_event_poster(db: sqlite_utils.Database) -> None:
    from offline.checkin_store import migrate_0003

    migrate_0003(db)


def _household_single_blob(db: sqlite_utils.Database) -> None:
    """Household records use ``offline.atrest`` (nonce inside the blob): the nonce column goes."""
    db.execute("ALTER TABLE household DROP COLUMN nonce")


MIGRATIONS.append(("household_0002_atrest_blob", _household_single_blob))


def _family_tables(db: sqlite_utils.Database) -> None:
    from offline.family_store import migrate_0001  # the family module owns its DDL

    migrate_0001(db)


MIGRATIONS.append(("family_0001_groups_answers_alerts", _family_tables))


def _family_member_shared(db: sqlite_utils.Database) -> None:
    from offline.family_store import migrate_0002

    migrate_0002(db)


MIGRATIONS.append(("family_0002_member_shared", _family_member_shared))


def _points_tables(db: sqlite_utils.Database) -> None:
    from offline.points_store import migrate_0001  # the points module owns its DDL

    migrate_0001(db)


MIGRATIONS.append(("points_0001_ledger_rules_keys", _points_tables))


def _rides_tables(db: sqlite_utils.Database) -> None:
    from offline.rides_store import migrate_0001  # the rides module owns its DDL

    migrate_0001(db)


MIGRATIONS.append(("rides_0001_bookings", _rides_tables))
MIGRATIONS.append(("checkin_0002_sync_state", _checkin_sync_table))
MIGRATIONS.append(("checkin_0003_event_poster", _checkin_event_poster))
MIGRATIONS.append(("region_0002_districts", district_tables))


def _checkin_event_in_car(db: sqlite_utils.Database) -> None:
    from offline.checkin_store import migrate_0004

    migrate_0004(db)


MIGRATIONS.append(("checkin_0004_event_in_car", _checkin_event_in_car))
