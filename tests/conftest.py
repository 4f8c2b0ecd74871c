"""Shared fixtures: the real region data from ../shared/data, imported into throwaway stores."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from app.connection import PlatformLink
from app.devicekeys import MemoryKeyStore
from app.state import Mamori
from geo.hazards import ensure_scenario_layers
from geo.region_import import import_region
from geo.regions import Region, default_data_dir, find_region
from offline.store import open_store

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = default_data_dir()
    if path is None or not (path / "regions").is_dir():
        if os.environ.get("CI"):
            pytest.fail("region data missing: CI must have ../shared/data")
        pytest.skip("region data (../shared/data) not present")
    return path


@pytest.fixture(scope="session")
def ube(data_dir) -> Region:
    return find_region(data_dir, "352021")


@pytest.fixture(scope="session")
def aizu(data_dir) -> Region:
    return find_region(data_dir, "072028")


@pytest.fixture(scope="session")
def ube_store_file(tmp_path_factory, ube) -> Path:
    """Ube imported once per session; tests that write get their own copy."""
    path = tmp_path_factory.mktemp("ube") / "mamori.sqlite"
    db = open_store(path)
    import_region(db, ube)
    ensure_scenario_layers(db, ube.code)  # derived once here, not in every test that copies the store
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.conn.close()
    return path


@pytest.fixture()
def ube_db(ube_store_file, tmp_path):
    copy = tmp_path / "mamori.sqlite"
    shutil.copy(ube_store_file, copy)
    db = open_store(copy)
    yield db
    db.conn.close()


@pytest.fixture()
def app(ube_db, ube, data_dir, tmp_path) -> Mamori:
    keys = MemoryKeyStore()
    link = PlatformLink(tmp_path / "mamori.sqlite", ube_db, keys, None, ube.code)
    return Mamori(ube_db, ube, keys, data_dir, link=link)


def copy_region(src: Region, dest_root: Path, *, skip: tuple[str, ...] = ()) -> Region:
    """A writable copy of a region folder, to damage files in tests without touching the data."""
    folder = dest_root / "regions" / src.folder.name
    folder.mkdir(parents=True)
    for f in src.folder.iterdir():
        if f.name not in skip:
            shutil.copy(f, folder / f.name)
    return find_region(dest_root, src.code)
