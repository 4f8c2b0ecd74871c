"""The surge's hot write in one statement: a resident upserting one of their own entities.

When a city sends a warning, every phone's outbox sends the resident's safety answer: a
batch upsert of one personal entity (``SafetyStatus``) that the caller owns or is creating.
The general path (cityos/ngsi.py ``_Writer``) runs it as a transaction of several round
trips through SQLAlchemy in a worker thread. On PostgreSQL this module does the same write
as **one statement** on the worker's event loop (psycopg's async connection, autocommit),
and answers that arrive while the worker's connections are busy share the next statement
(``Combiner``: one round trip and one commit for many answers — group commit, however many
phones answer at once):

- the consent check is in the statement (``EXISTS`` over ``consent``, per row), so a
  revocation that committed before the statement is always seen;
- ``INSERT … ON CONFLICT DO UPDATE … WHERE`` replaces the stored entity only when it is the
  caller's own and of the same type (or a tombstone of theirs), exactly the rows the general
  path would replace without an error;
- ``seq`` comes from the change sequence and ``tx`` from ``pg_current_xact_id()`` in the same
  statement, so the change feed's commit-safe cursor (cityos/changes.py) holds as before;
- afterwards ``Store.committed()`` wakes event streams, here and (by NOTIFY) in the other
  workers, as after any ``Store.write()``.

Anything else — a batch of several, ``options=update``, a public type, a staff-held record,
a missing consent, someone else's id, a type change, a database error — writes nothing here
and the request goes the general way, which gives the answer (or the error) it always gave.
(After a database error the row may have been written all the same: the general path then
replaces it with the same body — upserts are idempotent.)
"""
from __future__ import annotations

import asyncio
import json
import logging
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import pq

from cityos.accounts import SHELTER_STAFF
from cityos.entities import location_attributes, reference_point
from cityos.oidc import Caller
from cityos.policy import LOCATION, PERSONAL_CATEGORY, STAFF_HELD_TYPES
from cityos.store import _SEQUENCE, utc_now

log = logging.getLogger("cityos.hotpath")
MAX_ROWS = 200  # answers per statement at most

_UPSERT_OWN = f"""
WITH input AS (
    SELECT * FROM unnest(%(tenant)s::text[], %(id)s::text[], %(type)s::text[], %(sub)s::text[], %(category)s::text[],
                         %(located)s::bool[], %(body)s::text[], %(now)s::text[], %(lat)s::float8[], %(lon)s::float8[])
        AS i(tenant, id, type, sub, category, located, body, now, lat, lon)
), written AS (
    INSERT INTO entity AS e (tenant, id, type, owner_sub, category, body, deleted, created_at, modified_at, seq, tx, lat, lon)
    SELECT i.tenant, i.id, i.type, i.sub, i.category, i.body::json, false, i.now, i.now,
           nextval('{_SEQUENCE}'), pg_current_xact_id()::text::bigint, i.lat, i.lon
    FROM input i
    WHERE EXISTS (SELECT 1 FROM consent c WHERE c.sub = i.sub AND c.category = i.category AND c.active)
      AND (NOT i.located OR EXISTS (SELECT 1 FROM consent c WHERE c.sub = i.sub AND c.category = '{LOCATION}' AND c.active))
    ON CONFLICT (tenant, id) DO UPDATE SET
        type = excluded.type, owner_sub = excluded.owner_sub, category = excluded.category, body = excluded.body, deleted = false,
        created_at = CASE WHEN e.deleted THEN excluded.created_at ELSE e.created_at END,
        modified_at = excluded.modified_at, seq = excluded.seq, tx = excluded.tx, lat = excluded.lat, lon = excluded.lon
    WHERE e.owner_sub = excluded.owner_sub AND (e.deleted OR e.type = excluded.type)
    RETURNING e.tenant, e.id, e.created_at = e.modified_at AS created
)
SELECT tenant, id, created FROM written
"""  # created: a new row, or a tombstone brought back (both stamped now); a live row keeps its createdAt
_COLUMNS = ("tenant", "id", "type", "sub", "category", "located", "body", "now", "lat", "lon")


def own_write(caller: Caller | None, body: dict[str, Any]) -> tuple[str, bool] | None:
    """(its consent category, whether it holds location data, which needs the location consent
    too) when ``body`` (validated) is a personal entity the caller may write as its owner; None
    when the general path decides."""
    if caller is None:
        return None
    entity_type = body["type"]
    category = PERSONAL_CATEGORY.get(entity_type)
    if category is None or (entity_type in STAFF_HELD_TYPES and SHELTER_STAFF in caller.roles):
        return None  # public types, and records staff may register for the city
    return category, category != LOCATION and bool(location_attributes(body))


@dataclass(slots=True)
class _Pending:
    row: tuple[Any, ...]  # in _COLUMNS order
    answer: asyncio.Future[bool | None]


class Combiner:
    """Up to ``size`` connections of one event loop (one worker), each writing whatever answers
    have queued up when it is free: alone when the worker is quiet, in one statement when
    it is busy."""

    def __init__(self, conninfo: str, size: int) -> None:
        self.conninfo, self.size = conninfo, max(1, size)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: list[_Pending] = []
        self._idle: list[psycopg.AsyncConnection] = []
        self._writers: set[asyncio.Task[None]] = set()

    async def write(self, row: tuple[Any, ...]) -> bool | None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # first use, or a new loop (tests): connections belong to one loop
            self._loop, self._queue, self._idle, self._writers = loop, [], [], set()
        pending = _Pending(row, loop.create_future())
        self._queue.append(pending)
        if len(self._writers) < self.size:
            task = loop.create_task(self._drain())
            self._writers.add(task)
            task.add_done_callback(self._writers.discard)
        return await pending.answer

    def _take(self) -> list[_Pending]:
        """The next statement's rows: queued first come first, one per entity (an entity twice
        in one statement is an error: the second waits for the next)."""
        batch: list[_Pending] = []
        rest: list[_Pending] = []
        keys: set[tuple[str, str]] = set()
        for pending in self._queue:
            key = (pending.row[0], pending.row[1])
            if len(batch) < MAX_ROWS and key not in keys:
                keys.add(key)
                batch.append(pending)
            else:
                rest.append(pending)
        self._queue = rest
        return batch

    async def _drain(self) -> None:
        conn: psycopg.AsyncConnection | None = None
        try:
            while self._queue:
                batch = self._take()
                params = {name: [p.row[i] for p in batch] for i, name in enumerate(_COLUMNS)}
                try:
                    if conn is None:
                        conn = self._idle.pop() if self._idle else await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
                    written = {(t, i): bool(c) for t, i, c in await (await conn.execute(_UPSERT_OWN, params)).fetchall()}
                except psycopg.Error as exc:
                    log.warning("one-statement upsert of %d failed (%s); they go the general way", len(batch), exc.__class__.__name__)
                    if conn is not None:
                        await _close(conn)
                        conn = None
                    written = {}
                for pending in batch:
                    if not pending.answer.done():  # its request may have been cancelled (client gone)
                        pending.answer.set_result(written.get((pending.row[0], pending.row[1])))
        finally:
            if conn is not None:
                if not conn.closed and conn.info.transaction_status == pq.TransactionStatus.IDLE:
                    self._idle.append(conn)
                else:
                    await _close(conn)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await _close(conn)


async def _close(conn: psycopg.AsyncConnection) -> None:
    with suppress(psycopg.Error):
        await conn.close()


class HotPath:
    def __init__(self, conninfo: str, pool_size: int) -> None:
        self.combiner = Combiner(conninfo, pool_size)

    async def upsert_own(self, caller: Caller, tenant: str, body: dict[str, Any], category: str, located: bool) -> bool | None:
        """Write ``body`` as the caller's own entity: True created, False replaced, None not
        written here (the general path decides). ``body`` is validated and of ``tenant``."""
        point = reference_point(body)
        row = (tenant, body["id"], body["type"], caller.sub, category, located, json.dumps(body), utc_now(),
               point.lat if point else None, point.lon if point else None)
        return await self.combiner.write(row)

    async def close(self) -> None:
        await self.combiner.close()
