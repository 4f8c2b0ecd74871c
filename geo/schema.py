"""The SQLite tables of region data (shelters, roads, boundary, hazard layers), shared by the app's
store (``offline.schema`` applies them as its first migrations) and the platform's in-memory
ride services (``region_db``)."""
from __future__ import annotations

import sqlite3

import sqlite_utils

from geo.sql import run_script


def region_tables(db: sqlite_utils.Database) -> None:
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
        CREATE TABLE region_info (region TEXT PRIMARY KEY, name TEXT NOT NULL);
        CREATE TABLE boundary (
            region TEXT PRIMARY KEY, name TEXT NOT NULL, geometry TEXT NOT NULL
        );
        CREATE TABLE setting (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        """
    )


def hazard_tables(db: sqlite_utils.Database) -> None:
    """Hazard layers (official A31/A33/A40 imports and derived scenarios) with an R*Tree on areas.

    ``is_scenario`` = 1 marks a layer derived by the app (e.g. from road elevations); the UI
    must label it as a scenario, never as an official hazard map.
    """
    run_script(
        db,
        """
        CREATE TABLE hazard_layer (
            id INTEGER PRIMARY KEY,
            region TEXT NOT NULL, hazard TEXT NOT NULL, name TEXT NOT NULL,
            is_scenario INTEGER NOT NULL, level_scheme TEXT NOT NULL,
            description_ja TEXT NOT NULL, description_en TEXT NOT NULL,
            source TEXT NOT NULL, licence TEXT NOT NULL, params TEXT NOT NULL DEFAULT '{}',
            area_count INTEGER NOT NULL, created_at TEXT NOT NULL,
            UNIQUE (region, hazard, name)
        );
        CREATE TABLE hazard_area (
            rowid INTEGER PRIMARY KEY,
            layer_id INTEGER NOT NULL REFERENCES hazard_layer(id) ON DELETE CASCADE,
            level INTEGER NOT NULL, name TEXT NOT NULL DEFAULT '',
            polygons TEXT NOT NULL
        );
        CREATE INDEX hazard_area_layer ON hazard_area (layer_id);
        CREATE VIRTUAL TABLE hazard_area_rtree USING rtree(rowid, min_lat, max_lat, min_lon, max_lon);
        """
    )


def district_tables(db: sqlite_utils.Database) -> None:
    """The city's own districts (地区), when the region folder supplies them: the HQ's areas."""
    run_script(db, "CREATE TABLE district (region TEXT NOT NULL, name TEXT NOT NULL, polygons TEXT NOT NULL, "
                   "PRIMARY KEY (region, name));")


def region_db() -> sqlite_utils.Database:
    """An in-memory database with the region tables, for ``geo.region_import.import_region``."""
    db = sqlite_utils.Database(sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None))
    db.execute("PRAGMA foreign_keys=ON")
    with db.atomic():
        region_tables(db)
        hazard_tables(db)
        district_tables(db)
    return db
