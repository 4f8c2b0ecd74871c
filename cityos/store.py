"""The platform's database: SQLAlchemy Core tables, SQLite by default, PostgreSQL via psycopg 3.

Every entity write is stamped with ``(tx, seq)``: ``seq`` a unique change number, ``tx`` the
writing transaction. The change feed pages in ``(tx, seq)`` order:

- SQLite (one process): ``Store.write()`` holds one process-wide lock for the whole
  transaction, so ``seq`` order is commit order and ``tx`` is always 0.
- PostgreSQL (any number of worker processes): no lock; ``seq`` comes from a sequence and
  ``tx`` is the transaction id (``pg_current_xact_id()``). The feed only hands out rows whose
  ``tx`` is below the snapshot's ``xmin`` — every transaction that could still commit has a
  larger id — so a cursor never jumps past a row that commits late (see cityos/changes.py).
"""
from __future__ import annotations

import logging
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
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
    inspect,
    literal,
    literal_column,
    select,
    text,
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
    Column("tx", BigInteger, nullable=False, server_default="0"),  # writing transaction (PostgreSQL), 0 on SQLite
    Column("lat", Float),
    Column("lon", Float),
    Index("entity_tenant_type", "tenant", "type", "deleted"),
    Index("entity_tenant_seq", "tenant", "seq"),
    Index("entity_tenant_tx_seq", "tenant", "tx", "seq"),
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
    def __init__(self, db_url: str, pool_size: int = 8, create: bool = True):
        """``create``: make missing tables and columns (False: another process has, at startup)."""
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
            self.engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, hide_parameters=True)
        self._lock = threading.Lock()
        self._commit_notices = None if self.is_sqlite else CommitNotices(self.conninfo)
        self.on_commit: list[Callable[[], None]] = []  # e.g. waking live event streams (cityos.events)
        self.on_public_change: list[Callable[[str], None]] = []
        if create:
            self._create()

    def _create(self) -> None:
        with self.exclusive("schema"):  # workers starting together: one creates, the others find
            metadata.create_all(self.engine)
            with self.engine.begin() as conn:
                _migrate(conn)
                if conn.execute(select(counter.c.value).where(counter.c.name == "seq")).first() is None:
                    conn.execute(counter.insert().values(name="seq", value=0))
                if not self.is_sqlite:
                    conn.execute(text(f"CREATE SEQUENCE IF NOT EXISTS {_SEQUENCE}"))

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One transaction (serialised within the process on SQLite); commits on success, rolls
        back on any error. After the commit ``on_commit`` runs, and ``on_public_change`` for each
        municipality whose public entities it wrote; other workers learn both by NOTIFY."""
        with self._lock if self.is_sqlite else nullcontext(), self.engine.begin() as conn:
            conn.info.pop(_TOUCHED, None)
            yield conn
            touched = conn.info.pop(_TOUCHED, set())
        self.committed(touched)

    def committed(self, touched: Iterable[str] = ()) -> None:
        """Run after a write committed (``write()`` does; so do one-statement writes, cityos/hotpath.py):
        wake this worker's listeners now and the other workers' shortly (``CommitNotices``)."""
        if self._commit_notices is not None:
            self._commit_notices.mark()
        for listener in self.on_commit:
            listener()
        for tenant in touched:
            for callback in self.on_public_change:
                callback(tenant)

    @property
    def conninfo(self) -> str:
        """A libpq connection string for the PostgreSQL database (for LISTEN)."""
        return self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    @contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """Run a block in one process at a time across all workers (a PostgreSQL advisory lock
        held by its own session). SQLite serves one process: nothing to exclude."""
        if self.is_sqlite:
            yield
            return
        key = advisory_key(name)
        with self.engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()

    def close(self) -> None:
        if self._commit_notices is not None:
            self._commit_notices.close()
        self.engine.dispose()


class CommitNotices:
    """Tells the other workers that this one committed writes (``NOTIFY cityos_commit``: their
    live event streams re-check, cityos/events.py) — one notice per ``WINDOW_S`` however many
    commits, sent after them from a thread of its own. A notice per write would wake every
    worker's listener once per safety answer, and notifying transactions serialise their
    commits in PostgreSQL. A notice lost with its connection is made up for by the streams'
    periodic re-check (``events.FALLBACK_S``)."""

    WINDOW_S = 0.05

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self._wanted = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def mark(self) -> None:
        self._wanted.set()
        if self._thread is None:
            with self._start_lock:
                if self._thread is None and not self._closed:
                    self._thread = threading.Thread(target=self._run, name="cityos-commit-notices", daemon=True)
                    self._thread.start()

    def close(self) -> None:
        self._closed = True
        self._wanted.set()
        if self._thread is not None:
            self._thread.join(2)

    def _run(self) -> None:
        conn: psycopg.Connection | None = None
        while True:
            self._wanted.wait()
            if self._closed:
                break
            time.sleep(self.WINDOW_S)  # commits in the meantime ride along
            self._wanted.clear()  # before sending: a commit after this asks for the next notice
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.conninfo, autocommit=True)
                conn.execute("SELECT pg_notify(%s, '')", (COMMIT_CHANNEL,))
            except psycopg.Error as exc:
                logging.getLogger("cityos").warning("commit notice not sent (%s); other workers' streams re-check on their own",
                                                    exc.__class__.__name__)
                conn = None
                time.sleep(1.0)
        if conn is not None:
            conn.close()


_SEQUENCE = "cityos_change_seq"
_TOUCHED = "cityos_public_touched"
PUBLIC_CHANNEL = "cityos_public"
COMMIT_CHANNEL = "cityos_commit"
SESSION_CHANNEL = "cityos_session"  # payload "<family> <until>": a session ended (cityos/oidc.py)


def touch_public(conn: Connection, tenant: str) -> None:
    """Record that this transaction wrote public data of ``tenant`` (cityos/caching.py):
    every worker's cache drops its answers for that municipality once it commits."""
    touched = conn.info.setdefault(_TOUCHED, set())
    if tenant not in touched and conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_notify(:c, :t)"), {"c": PUBLIC_CHANNEL, "t": tenant})  # delivered at commit
    touched.add(tenant)


def advisory_key(name: str) -> int:
    """A stable 63-bit key for a PostgreSQL advisory lock named ``name``."""
    return zlib.crc32(f"cityos:{name}".encode()) | (0x2C17 << 32)


def _migrate(conn: Connection) -> None:
    """Columns added since a database was made (``create_all`` only makes missing tables)."""
    columns = {c["name"] for c in inspect(conn).get_columns("entity")}
    if "tx" not in columns:  # rows written before stay in seq order, before every newer row
        conn.execute(text("ALTER TABLE entity ADD COLUMN tx BIGINT NOT NULL DEFAULT 0"))
        conn.execute(text("CREATE INDEX IF NOT EXISTS entity_tenant_tx_seq ON entity (tenant, tx, seq)"))
    if inspect(conn).has_table("checkin_event") and "in_car" not in {c["name"] for c in inspect(conn).get_columns("checkin_event")}:
        conn.execute(text("ALTER TABLE checkin_event ADD COLUMN in_car BOOLEAN NOT NULL DEFAULT FALSE"))
    for table, order in (("checkin_device", "seq"), ("checkin_event", "n")):  # the desks' feeds (cityos/checkin.py), likewise
        if inspect(conn).has_table(table) and "tx" not in {c["name"] for c in inspect(conn).get_columns(table)}:
            conn.execute(text(f"ALTER TABLE {table} ADD COLUMN tx BIGINT NOT NULL DEFAULT 0"))
            conn.execute(text(f"CREATE INDEX IF NOT EXISTS {table}_tx ON {table} (tenant, tx, {order})"))
    if conn.dialect.name == "postgresql":
        start = conn.execute(select(counter.c.value).where(counter.c.name == "seq")).scalar()
        if start:  # a database from a one-process platform: the sequence continues its numbers
            conn.execute(text(f"CREATE SEQUENCE IF NOT EXISTS {_SEQUENCE}"))
            conn.execute(text(f"SELECT setval('{_SEQUENCE}', GREATEST(:v, (SELECT last_value FROM {_SEQUENCE})))"), {"v": start})


def next_seq(conn: Connection) -> int:
    """The next change number; only call inside ``Store.write()``."""
    return reserve_seqs(conn, 1)[0]


def reserve_seqs(conn: Connection, count: int) -> Sequence[int]:
    """``count`` change numbers at once (bulk writes); inside ``Store.write()``."""
    if conn.dialect.name == "postgresql":
        return conn.execute(text(f"SELECT nextval('{_SEQUENCE}') FROM generate_series(1, :n)"), {"n": count}).scalars().all()
    conn.execute(update(counter).where(counter.c.name == "seq").values(value=counter.c.value + count))
    last = conn.execute(select(counter.c.value).where(counter.c.name == "seq")).scalar_one()
    return range(last - count + 1, last + 1)


def settled_horizon(conn: Connection) -> tuple[Any, Any]:
    """SQL for a commit-safe feed (cityos/changes.py explains): the statement snapshot's ``xmin``
    — every transaction below it has finished — and this transaction's own id if it has one.
    Select both in the same statement as the rows; on SQLite nothing is ever held back."""
    if conn.dialect.name != "postgresql":
        return literal(2**63 - 1), literal(None)
    return (literal_column("pg_snapshot_xmin(pg_current_snapshot())::text::bigint"),
            literal_column("pg_current_xact_id_if_assigned()::text::bigint"))


def settled_prefix(rows: Sequence[Any]) -> list[Any]:
    """Of rows in ``(tx, …)`` order carrying ``horizon`` and ``own`` (``settled_horizon``), the
    prefix that can be handed out: rows of finished transactions, and this transaction's own
    rows when no older transaction is still running (nothing can commit before them)."""
    out = []
    for row in rows:
        if not (row.tx < row.horizon or (row.own is not None and row.tx == row.own == row.horizon)):
            break
        out.append(row)
    return out


def current_tx(conn: Connection) -> int:
    """The writing transaction's id for the change feed's order: PostgreSQL's xid, 0 on SQLite."""
    if conn.dialect.name == "postgresql":
        return int(conn.execute(text("SELECT pg_current_xact_id()::text::bigint")).scalar_one())
    return 0


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
