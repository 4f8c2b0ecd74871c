"""Consent registry (オプトイン): grant, revoke and history per category × purpose × recipient.

Revoking the last active grant of a category deletes that resident's stored data of the
category in the same transaction (for `location`: strips the location attribute).
"""
from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import Connection, select, update
from starlette.concurrency import run_in_threadpool

from cityos import checkin, rides
from cityos.core import Platform, platform_of, read_json
from cityos.entities import delete_personal_data, strip_location
from cityos.oidc import Caller
from cityos.policy import (
    CATEGORIES,
    LOCATION,
    PERSONAL_CATEGORY,
    active_categories,
)
from cityos.problems import bad_data, problem_responses, unauthorized
from cityos.store import consent, consent_event, utc_now

_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class ConsentChoice(BaseModel):
    category: str = Field(examples=["safety_status"])
    purpose: str = Field(examples=["disaster_response"])
    recipient: str = Field(examples=["city"])


_CHOICE_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": ConsentChoice.model_json_schema()}}}}


def _choice(payload: Any) -> tuple[str, str, str]:
    if not isinstance(payload, dict):
        raise bad_data("body must be an object with category, purpose and recipient")
    values = []
    for key in ("category", "purpose", "recipient"):
        value = payload.get(key)
        if not isinstance(value, str) or not _ID.match(value):
            raise bad_data(f"{key} must be a short lower-case id such as 'city', got {str(value)[:40]!r}")
        values.append(value)
    if values[0] not in CATEGORIES:
        raise bad_data(f"unknown category {values[0]!r}; categories: {', '.join(CATEGORIES)}")
    return values[0], values[1], values[2]


def _resident(platform: Platform, request: Request) -> Caller:
    caller = platform.caller(request)
    if caller is None:
        raise unauthorized("the consent registry needs a bearer token", error="invalid_request")
    return caller


def grant(conn: Connection, sub: str, category: str, purpose: str, recipient: str) -> dict[str, Any] | None:
    """Record a grant; None when it was already active (granting is idempotent)."""
    key = (consent.c.sub == sub, consent.c.category == category, consent.c.purpose == purpose, consent.c.recipient == recipient)
    row = conn.execute(select(consent).where(*key)).first()
    if row is not None and row.active:
        return None
    now = utc_now()
    if row is None:
        conn.execute(consent.insert().values(sub=sub, category=category, purpose=purpose, recipient=recipient, active=True, granted_at=now))
    else:
        conn.execute(update(consent).where(*key).values(active=True, granted_at=now))
    conn.execute(consent_event.insert().values(sub=sub, category=category, purpose=purpose, recipient=recipient, action="grant", at=now))
    return {"category": category, "purpose": purpose, "recipient": recipient, "grantedAt": now}


def revoke(conn: Connection, sub: str, category: str, purpose: str, recipient: str) -> dict[str, Any]:
    key = (consent.c.sub == sub, consent.c.category == category, consent.c.purpose == purpose, consent.c.recipient == recipient)
    changed = conn.execute(update(consent).where(*key, consent.c.active.is_(True)).values(active=False)).rowcount
    deleted = stripped = 0
    if changed:
        conn.execute(consent_event.insert().values(sub=sub, category=category, purpose=purpose, recipient=recipient, action="revoke", at=utc_now()))
        if category not in active_categories(conn, sub):
            if category == LOCATION:
                stripped = strip_location(conn, sub)
            else:
                deleted = delete_personal_data(conn, sub, category)
            if category == checkin.CONSENT_CATEGORY:
                deleted += checkin.forget_own_events(conn, sub)
            if category == rides.CONSENT_CATEGORY:
                deleted += rides.forget_rides(conn, sub)
    return {"revoked": bool(changed), "deletedEntities": deleted, "strippedAttributes": stripped}


def router() -> APIRouter:
    api = APIRouter(prefix="/cityos/v1", tags=["Consent"])
    errors = problem_responses(400, 401, 413, 415, 429)

    @api.get("/consent-categories", summary="Data categories a resident can consent to")
    def categories() -> list[dict[str, Any]]:
        return [
            {"id": c.id, "label_ja": c.label_ja, "label_en": c.label_en,
             "entityTypes": sorted(t for t, cat in PERSONAL_CATEGORY.items() if cat == c.id),
             "attributes": ["location"] if c.id == LOCATION else []}
            for c in CATEGORIES.values()
        ]

    @api.get("/consents", summary="The caller's active consents", responses=problem_responses(401, 429))
    def active(request: Request) -> list[dict[str, Any]]:
        platform = platform_of(request)
        caller = _resident(platform, request)
        with platform.store.read() as conn:
            rows = conn.execute(
                select(consent).where(consent.c.sub == caller.sub, consent.c.active.is_(True)).order_by(consent.c.category, consent.c.purpose,
                                                                                                        consent.c.recipient)
            ).all()
        return [{"category": r.category, "purpose": r.purpose, "recipient": r.recipient, "grantedAt": r.granted_at} for r in rows]

    @api.post("/consents", status_code=201, summary="Grant consent (idempotent)", openapi_extra=_CHOICE_BODY,
              responses={200: {"description": "was already granted"}, 201: {"description": "granted"}, **errors})
    async def grant_consent(request: Request) -> JSONResponse:
        platform = platform_of(request)
        caller = _resident(platform, request)
        payload, _ = await read_json(request)
        category, purpose, recipient = _choice(payload)

        def write() -> dict[str, Any] | None:
            with platform.store.write() as conn:
                return grant(conn, caller.sub, category, purpose, recipient)

        created = await run_in_threadpool(write)
        if created is None:
            return JSONResponse({"category": category, "purpose": purpose, "recipient": recipient, "alreadyGranted": True}, status_code=200)
        return JSONResponse(created, status_code=201)

    @api.post("/consents/revoke", summary="Revoke consent; deletes the category's data when no grant is left", openapi_extra=_CHOICE_BODY,
              responses={200: {"description": "revoked (or was not active)"}, **errors})
    async def revoke_consent(request: Request) -> JSONResponse:
        platform = platform_of(request)
        caller = _resident(platform, request)
        payload, _ = await read_json(request)
        category, purpose, recipient = _choice(payload)

        def write() -> dict[str, Any]:
            with platform.store.write() as conn:
                return revoke(conn, caller.sub, category, purpose, recipient)

        return JSONResponse(await run_in_threadpool(write))

    @api.get("/consents/history", summary="Every grant and revoke of the caller, oldest first", responses=problem_responses(401, 429))
    def history(request: Request) -> list[dict[str, Any]]:
        platform = platform_of(request)
        caller = _resident(platform, request)
        with platform.store.read() as conn:
            rows = conn.execute(select(consent_event).where(consent_event.c.sub == caller.sub).order_by(consent_event.c.n)).all()
        return [{"category": r.category, "purpose": r.purpose, "recipient": r.recipient, "action": r.action, "at": r.at} for r in rows]

    return api
