"""The delta feed ``GET /cityos/v1/changes``: entities changed since a cursor, in commit-safe order.

Rows are paged in ``(tx, seq)`` order (cityos/store.py). On PostgreSQL several workers write
at once, so a transaction with a smaller id may commit after a larger one; the feed hands out
only rows whose ``tx`` is below the statement snapshot's ``xmin`` (every transaction below it
has finished, every one still running or yet to start has a larger id). Rows of transactions
at or above it wait for the next pull — a cursor never passes a row that commits late, and no
row is handed out twice. A page that held rows back says ``Cache-Control: no-store``, so the
public cache (cityos/caching.py) does not keep an answer that is about to grow.
"""
from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from sqlalchemy import Row, and_, literal, literal_column, or_, select, tuple_

from cityos.core import Platform, int_param, platform_of
from cityos.entities import render
from cityos.jsonsafe import JSONResponse
from cityos.oidc import Caller
from cityos.policy import (
    readable,
    require_known_type,
    resolve_tenant,
    tombstone_visible,
)
from cityos.problems import bad_data, problem_responses
from cityos.store import entity

MAX_LIMIT = 1000
Cursor = tuple[int, int]  # (tx, seq) of the last row handed out


def encode_cursor(cursor: Cursor) -> str:
    return base64.urlsafe_b64encode(f"v2:{cursor[0]}:{cursor[1]}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> Cursor:
    """``v2:tx:seq``; a ``v1:seq`` cursor from before transaction ids (rows written then have tx 0) still works."""
    if not cursor:
        return (0, 0)
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, _, rest = text.partition(":")
        parts = rest.split(":")
        if not all(p.isascii() and p.isdigit() and int(p) < 2**63 for p in parts):
            raise ValueError
        if version == "v1" and len(parts) == 1:
            return (0, int(parts[0]))
        if version == "v2" and len(parts) == 2:
            return (int(parts[0]), int(parts[1]))
        raise ValueError
    except (ValueError, UnicodeDecodeError):
        raise bad_data("invalid cursor: pass back exactly the cursor a previous answer gave") from None


def changes_page(platform: Platform, caller: Caller | None, tenant: str, types: list[str], after: Cursor, limit: int) -> tuple[dict[str, Any], bool]:
    """One page of the feed and whether rows were held back for transactions still running."""
    visible = or_(
        and_(entity.c.deleted.is_(False), readable(caller)),
        and_(entity.c.deleted.is_(True), tombstone_visible(caller)),
    )
    # In the same statement as the rows, so both come from one snapshot.
    horizon = literal_column("pg_snapshot_xmin(pg_current_snapshot())::text::bigint") if not platform.store.is_sqlite else literal(2**63 - 1)
    sql = select(entity, horizon.label("horizon")).where(entity.c.tenant == tenant, tuple_(entity.c.tx, entity.c.seq) > tuple_(*after), visible)
    if types:
        sql = sql.where(entity.c.type.in_(types))
    with platform.store.read() as conn:
        rows = conn.execute(sql.order_by(entity.c.tx, entity.c.seq).limit(limit + 1)).all()
    settled = [row for row in rows if row.tx < row.horizon]  # ordered by tx: a prefix
    held_back = len(settled) < len(rows)
    page = settled[:limit]
    last = (page[-1].tx, page[-1].seq) if page else after
    body = {"changes": [_change(row) for row in page], "cursor": encode_cursor(last), "hasMore": len(settled) > limit}
    return body, held_back


def _change(row: Row) -> dict[str, Any]:
    return {"id": row.id, "type": row.type, "deleted": row.deleted, "modifiedAt": row.modified_at,
            "entity": None if row.deleted else render(row, sys_attrs=True)}


def router() -> APIRouter:
    api = APIRouter(tags=["Sync"])

    @api.get("/cityos/v1/changes", summary="Entities changed since a cursor (delta pull)",
             responses={200: {"description": "changes, next cursor, hasMore"}, **problem_responses(400, 401, 403, 429)})
    def changes(
        request: Request,
        type: Annotated[str | None, Query(description="type names, comma-separated")] = None,
        after: Annotated[str | None, Query(description="cursor from the previous answer")] = None,
        limit: Annotated[str | None, Query(description="max changes, 1..1000, default 500")] = None,
        tenant_header: Annotated[str | None, Header(alias="NGSILD-Tenant", description="6-digit municipality code")] = None,
    ) -> JSONResponse:
        platform = platform_of(request)
        caller = platform.caller(request)
        tenant = resolve_tenant(caller, tenant_header, platform.settings.default_tenant)
        types = [t for t in (type or "").split(",") if t]
        for t in types:
            require_known_type(t)
        page, held_back = changes_page(platform, caller, tenant, types, decode_cursor(after), int_param(limit, "limit", 500, 1, MAX_LIMIT))
        return JSONResponse(page, headers={"Cache-Control": "no-store"} if held_back else None)

    return api
