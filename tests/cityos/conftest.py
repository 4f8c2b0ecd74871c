"""Fixtures for the cityos platform tests: a real server per module, on SQLite and on PostgreSQL.

PostgreSQL comes from $MAMORI_TEST_PG_URL, else scripts/pg-test-setup.sh starts a throwaway
cluster when Debian's binaries are installed. Each server gets a fresh database. With CI=true
a missing PostgreSQL fails the run instead of skipping. ``data_dir`` comes from tests/conftest.py.
"""
from __future__ import annotations

import glob
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from cityos.testing import CityosProcess, login, run_cityos

ROOT = Path(__file__).resolve().parents[2]
PG_SETUP = ROOT / "scripts" / "pg-test-setup.sh"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _no_postgres(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"PostgreSQL is required in CI and is not available: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL not available: {reason}")


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    url = os.environ.get("MAMORI_TEST_PG_URL")
    if url:
        return url
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        _no_postgres("no /usr/lib/postgresql/*/bin/initdb (apt-get install postgresql) and MAMORI_TEST_PG_URL unset")
    result = subprocess.run(["bash", str(PG_SETUP)], capture_output=True, text=True, timeout=120)
    if result.returncode != 0 or not result.stdout.strip().startswith("postgresql://"):
        _no_postgres(f"{PG_SETUP.name} failed: {result.stderr.strip()[-2000:]}")
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def fresh_pg_database(pg_admin_url: str) -> Iterator[Callable[[], str]]:
    """Makes a new empty database per call; drops them all at the end of the session."""
    created: list[str] = []
    base, _, _ = pg_admin_url.rpartition("/")

    def make() -> str:
        name = f"cityos_t{uuid.uuid4().hex[:12]}"
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return f"{base}/{name}"

    yield make
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        for name in created:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _make_db_url(backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> str:
    if backend == "postgresql":
        return request.getfixturevalue("fresh_pg_database")()
    return f"sqlite:///{tmp_path_factory.mktemp('cityos') / 'cityos.sqlite'}"


@pytest.fixture
def new_db_url(backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> str:
    """A fresh, empty database on the module's backend, for a test that runs its own server."""
    return _make_db_url(backend, tmp_path_factory, request)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def server(backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest, data_dir: Path) -> Iterator[CityosProcess]:
    """The platform serving Ube (352021) and Aizu-Wakamatsu (072028), on the module's backend."""
    db_url = _make_db_url(backend, tmp_path_factory, request)
    with run_cityos(tmp_path_factory.mktemp("cityos-run"), region="352021,072028", db_url=db_url, data_dir=data_dir) as running:
        yield running


@pytest.fixture(scope="module")
def token_for(server: CityosProcess) -> Callable[[str], str]:
    """Access token of a demo account, logged in once per server."""
    cache: dict[str, str] = {}

    def get(username: str) -> str:
        if username not in cache:
            cache[username] = login(server, username)["access_token"]
        return cache[username]

    return get


@pytest.fixture(scope="module")
def auth(token_for: Callable[[str], str]) -> Callable[[str], dict[str, str]]:
    """``auth("ube-resident-1")`` -> the Authorization header for that account."""
    return lambda username: {"Authorization": f"Bearer {token_for(username)}"}
