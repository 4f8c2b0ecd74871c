"""Live updates for open screens: one server-sent event stream per app (``GET /cityos/v1/events``).

A stream watches topics for its caller and sends an event whenever what the caller may see
there changes (and once at the start):

* ``family`` — every member's status in the caller's family groups, exactly as
  ``GET /cityos/v1/family/groups/{id}/status`` gives it (consent applied), so the app shows an
  answer without another request, and ``remindedAt`` (the HQ asked the caller to answer);
* ``alerts`` / ``shelters`` — the change number of the tenant's newest ``Alert`` /
  ``EvacuationShelter`` write; the app then pulls the change feed as usual.

Waking: every committed write on this worker wakes the streams at once (``Hub.publish`` is a
``Store`` commit listener). Writes made by another worker are seen within ``FALLBACK_S``
because each stream re-checks that often; a deployment with several workers calls
``hub.publish()`` from its database notifications (PostgreSQL LISTEN/NOTIFY) to make that
immediate too. The stream ends after ``MAX_S`` (the token is checked once, at the start) and
the client reconnects; a comment line every ``PING_S`` keeps proxies from closing it.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import Connection, func, select
from starlette.concurrency import run_in_threadpool

from cityos.core import platform_of
from cityos.family import family_member, group_status, reminder
from cityos.oidc import Caller
from cityos.problems import bad_data, problem_responses, unauthorized
from cityos.store import entity

TOPICS = {"family": None, "alerts": "Alert", "shelters": "EvacuationShelter"}
FALLBACK_S = 2.0  # re-check this often without a wake-up (writes by other workers)
MIN_GAP_S = 0.25  # a burst of writes costs one check per stream, not one per write
PING_S = 15.0
MAX_S = 600.0


class Hub:
    """Wakes waiting streams; ``publish`` may be called from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.version = 0
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def publish(self) -> None:
        with self._lock:
            self.version += 1
            waiters = list(self._waiters)
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is closed (server shutting down)
                loop.call_soon_threadsafe(event.set)

    async def wait(self, seen: int, timeout: float) -> None:
        """Return once ``version`` differs from ``seen``, or after ``timeout`` seconds."""
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            if self.version != seen:
                return
            self._waiters.add(entry)
        try:
            await asyncio.wait_for(entry[1].wait(), timeout)
        except TimeoutError:
            pass
        finally:
            with self._lock:
                self._waiters.discard(entry)


def hub_of(request: Request) -> Hub:
    return request.app.state.hub


def _topic_state(conn: Connection, caller: Caller, topic: str) -> dict[str, Any]:
    entity_type = TOPICS[topic]
    if entity_type is None:
        groups = conn.execute(select(family_member.c.group_id).where(family_member.c.sub == caller.sub)
                              .order_by(family_member.c.group_id)).scalars().all()
        return {"groups": [{"id": g, "members": group_status(conn, caller, g)} for g in groups],
                "remindedAt": reminder(conn, caller.sub)}
    seq = conn.execute(select(func.max(entity.c.seq)).where(
        entity.c.tenant == caller.municipality_code, entity.c.type == entity_type)).scalar()
    return {"seq": int(seq or 0)}


def snapshot(conn: Connection, caller: Caller, topics: list[str]) -> dict[str, tuple[str, str]]:
    """{topic: (digest, event data)} of what the caller may see now."""
    result = {}
    for topic in topics:
        data = json.dumps(_topic_state(conn, caller, topic), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        result[topic] = (hashlib.sha256(data.encode()).hexdigest(), data)
    return result


def _topics(text: str) -> list[str]:
    wanted = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in wanted if t not in TOPICS]
    if unknown or not wanted:
        raise bad_data(f"topics must be a comma-separated list of {', '.join(TOPICS)}, got {text[:60]!r}")
    return list(dict.fromkeys(wanted))


def router() -> APIRouter:
    api = APIRouter(prefix="/cityos/v1", tags=["Live"])

    @api.get("/events", summary="Server-sent events: family statuses, alert and shelter changes, as they happen",
             responses={200: {"content": {"text/event-stream": {}}}, **problem_responses(400, 401, 429)})
    def events(request: Request, topics: str = Query("family,alerts,shelters", max_length=100,
                                                      description="comma-separated: family, alerts, shelters")) -> StreamingResponse:
        platform, hub = platform_of(request), hub_of(request)
        caller = platform.caller(request)
        if caller is None:
            raise unauthorized("the event stream needs a bearer token", error="invalid_request")
        wanted = _topics(topics)

        def check() -> dict[str, tuple[str, str]]:
            with platform.store.read() as conn:
                return snapshot(conn, caller, wanted)

        async def stream() -> AsyncIterator[str]:
            sent: dict[str, str] = {}
            ends = time.monotonic() + MAX_S
            quiet_since = time.monotonic()
            yield "retry: 2000\n\n"
            while time.monotonic() < ends and not await request.is_disconnected():
                seen = hub.version
                for topic, (digest, data) in (await run_in_threadpool(check)).items():
                    if sent.get(topic) != digest:
                        sent[topic] = digest
                        quiet_since = time.monotonic()
                        yield f"event: {topic}\ndata: {data}\n\n"
                if time.monotonic() - quiet_since > PING_S:
                    quiet_since = time.monotonic()
                    yield ": ping\n\n"
                await asyncio.sleep(MIN_GAP_S)
                await hub.wait(seen, FALLBACK_S)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return api
