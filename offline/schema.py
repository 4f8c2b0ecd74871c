"""Named schema migrations, applied in order by ``offline.store.migrate``.

Append new steps at the end; never edit or reorder a step that has shipped.
"""
from __future__ import annotations

from collections.abc import Callable

import sqlite_utils

from offline.sql import run_script

Migration = tuple[str, Callable[[sqlite_utils.Database], None]]


def _region_tables(db: sqlite_utils.Database) -> None:
    run_script(
        db,
        """
        CREATE TABLE dataset (
            region TEXT NOT NULL, dataset TEXT NOT NULL, source_file TEXT NOT NULL,
            licence TEXT NOT NULL, feature_count INTEGER NOT NULL, imported_at TEXT NOT NULL,
            PRIMARY KEY (region, dataset)
        );
        CREATE TABLE shelter (
            rowid INTEGER PRIMARY KEY,
            region TEXT NOT NULL, id TEXT NOT NULL, kind TEXT NOT NULL,
            name TEXT NOT NULL, address TEXT NOT NULL, lat REAL NOT NULL, lon REAL NOT NULL,
            flood INTEGER, landslide INTEGER, storm_surge INTEGER, earthquake INTEGER,
            tsunami INTEGER, fire INTEGER, inland_flood INTEGER, volcano INTEGER,
            capacity INTEGER, accepts TEXT, note TEXT NOT NULL DEFAULT '',
            same_address_as_other_kind INTEGER NOT NULL DEFAULT 0, source TEXT NOT NULL,
            UNIQUE (region, kind, id)
        );
        CREATE VIRTUAL TABLE shelter_rtree USING rtree(rowid, min_lat, max_lat, min_lon, max_lon);
        CREATE TABLE road_edge (
            region TEXT NOT NULL, u INTEGER NOT NULL, v INTEGER NOT NULL, key INTEGER NOT NULL,
            length_m REAL NOT NULL, highway TEXT NOT NULL, name TEXT NOT NULL,
            elev_u REAL, elev_v REAL, coords TEXT NOT NULL,
            PRIMARY KEY (region, u, v, key)
        );
        CREATE TABLE boundary (
            region TEXT PRIMARY KEY, name TEXT NOT NULL, geometry TEXT NOT NULL
        );
        CREATE TABLE setting (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        """
    )


MIGRATIONS: list[Migration] = [
    ("0001_region_tables", _region_tables),
]
