"""The platform's database: SQLAlchemy Core tables, SQLite by default, PostgreSQL via psycopg 3.

Writes go through ``Store.write()``, which holds one process-wide lock for the whole
transaction. The change feed numbers every write with ``seq``; holding the lock means
seq order is commit order, so a client reading "everything after seq N" never misses a
row that commits later with a smaller number. (cityos is one process; see docs/cityos.md.)
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    select,
    update,
)

metadata = MetaData()
# Plain JSON (text) in both databases: keeps attribute order as the client sent it.
_json = JSON()

account = Table(
    "account",
    metadata,
    Column("sub", String(64), primary_key=True),
    Column("username", String(128), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("municipality_code", String(6), nullable=False),
    Column("roles", _json, nullable=False),
)

signing_key = Table(
    "signing_key",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("private_jwk", _json, nullable=False),
    Column("created_at", String(32), nullable=False),
)

auth_code = Table(
    "auth_code",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("client_id", String(128), nullable=False),
    Column("sub", String(64), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("nonce", Text),
    Column("code_challenge", Text),
    Column("code_challenge_method", String(16)),
    Column("auth_time", Integer, nullable=False),
    Column("expires_at", Float, nullable=False),
)

refresh_token = Table(
    "refresh_token",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("family", String(64), nullable=False, index=True),
    Column("sub", String(64), nullable=False),
    Column("client_id", String(128), nullable=False),
    Column("scope", Text, nullable=False),
    Column("auth_time", Integer, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("used", Boolean, nullable=False, default=False),
    Column("revoked", Boolean, nullable=False, default=False),
)

# A consumed authorization code, kept so that a replay revokes what it issued (RFC 6749 §4.1.2).
used_code = Table(
    "used_code",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("family", String(64), nullable=False),
    Column("expires_at", Float, nullable=False),
)

# Sessions (token families) ended by logout, revocation or theft detection: their access
# tokens stop working before they expire.
revoked_session = Table(
    "revoked_session",
    metadata,
    Column("family", String(64), primary_key=True),
    Column("until", Float, nullable=False),
)

entity = Table(
    "entity",
    metadata,
    Column("tenant", String(6), primary_key=True),
    Column("id", String(512), primary_key=True),
    Column("type", String(128), nullable=False),
    Column("owner_sub", String(64)),  # personal entities: the resident they belong to
    Column("category", String(32)),  # consent category of a personal type
    Column("body", _json),  # NULL once deleted: a tombstone keeps only id/type/owner for the feed
    Column("deleted", Boolean, nullable=False, default=False),
    Column("created_at", String(32), nullable=False),
    Column("modified_at", String(32), nullable=False),
    Column("seq", BigInteger, nullable=False, unique=True),
    Column("lat", Float),
    Column("lon", Float),
    Index("entity_tenant_type", "tenant", "type", "deleted"),
    Index("entity_tenant_seq", "tenant", "seq"),
    Index("entity_owner", "tenant", "owner_sub", "category"),
)

consent = Table(
    "consent",
    metadata,
    Column("sub", String(64), primary_key=True),
    Column("category", String(32), primary_key=True),
    Column("purpose", String(64), primary_key=True),
    Column("recipient", String(64), primary_key=True),
    Column("active", Boolean, nullable=False),
    Column("granted_at", String(32), nullable=False),
)

consent_event = Table(
    "consent_event",
    metadata,
    Column("n", Integer, primary_key=True, autoincrement=True),
    Column("sub", String(64), nullable=False, index=True),
    Column("category", String(32), nullable=False),
    Column("purpose", String(64), nullable=False),
    Column("recipient", String(64), nullable=False),
    Column("action", String(8), nullable=False),
    Column("at", String(32), nullable=False),
)

counter = Table(
    "counter",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
)


def utc_now() -> str:
    """ISO 8601 UTC with microseconds: sorts as text the same way as in time."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def engine_url(db_url: str) -> str:
    """Accept plain ``postgresql://`` URLs and drive them with psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if db_url.startswith(prefix):
            return "postgresql+psycopg://" + db_url[len(prefix):]
    return db_url


class Store:
    def __init__(self, db_url: str):
        url = engine_url(db_url)
        self.is_sqlite = url.startswith("sqlite")
        # hide_parameters: database errors never echo row values (personal data) into the log.
        if self.is_sqlite:
            path = url.split("///", 1)[1] if "///" in url else ""
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True)
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_engine(url, pool_size=8, max_overflow=8, pool_pre_ping=True, hide_parameters=True)
        self._lock = threading.Lock()
        self.on_commit: list[Callable[[], None]] = []  # e.g. waking live event streams (cityos.events)
        metadata.create_all(self.engine)
        with self.write() as conn:
            if conn.execute(select(counter.c.value).where(counter.c.name == "seq")).first() is None:
                conn.execute(counter.insert().values(name="seq", value=0))

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One serialised transaction; commits on success, rolls back on any error."""
        with self._lock, self.engine.begin() as conn:
            yield conn
        for listener in self.on_commit:
            listener()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    def close(self) -> None:
        self.engine.dispose()


def next_seq(conn: Connection) -> int:
    """The next change number; only call inside ``Store.write()``."""
    return reserve_seqs(conn, 1)[0]


def reserve_seqs(conn: Connection, count: int) -> range:
    """``count`` consecutive change numbers at once (bulk seeding); inside ``Store.write()``."""
    conn.execute(update(counter).where(counter.c.name == "seq").values(value=counter.c.value + count))
    last = conn.execute(select(counter.c.value).where(counter.c.name == "seq")).scalar_one()
    return range(last - count + 1, last + 1)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
