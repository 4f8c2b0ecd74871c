"""Assemble the platform: store, keys, OIDC provider, NGSI-LD and consent routes, guards."""
from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from inspect import signature
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cityos import changes, checkin, consent, events, family, ngsi, oidc, points, rides
from cityos.accounts import seed_demo_accounts
from cityos.caching import Generations, Notices, PublicCache
from cityos.core import Platform
from cityos.hotpath import HotPath
from cityos.limits import Guard, SharedTokenBuckets, TokenBuckets
from cityos.oidc import Keys, Provider
from cityos.problems import NOT_FOUND, NOT_SUPPORTED, Problem, bad_data
from cityos.seed import seed_shelters
from cityos.settings import Settings
from cityos.store import COMMIT_CHANNEL, SESSION_CHANNEL, Store

log = logging.getLogger("cityos")
CONNECTION_AGE_S = 3.0  # with several workers: keep-alive connections end after about this long (cityos/limits.py Guard)
# FastAPI's built-in OpenTelemetry bridge (newer releases) asks on every request whether a
# provider is configured, a cost of its own at a surge's request rates: cityos configures none.
_NO_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}} if "telemetry" in signature(FastAPI).parameters else {}
)


def prepare_database(settings: Settings) -> None:
    """Create the schema, the signing key and the seeds once (the supervisor of several workers
    does this before starting them, so a worker started in a surge only opens the database)."""
    store = Store(settings.db_url, pool_size=1)
    try:
        _seed(store, settings)
    finally:
        store.close()


def _seed(store: Store, settings: Settings) -> Keys:
    with store.exclusive("startup"):  # workers starting together make one signing key and seed once
        keys = Keys(store)
        if settings.demo_accounts:
            seed_demo_accounts(store)
        for code in settings.regions:
            added = seed_shelters(store, settings.data_dir, code)
            if added:
                log.info("seeded %d shelters for %s", added, code)
    return keys


def create_app(settings: Settings, issuer: str, prepared: bool = False) -> Guard:
    """Open (and create/seed, unless ``prepared`` by ``prepare_database``) the database and
    return the ASGI app, guards in front.

    The chain: ``Guard`` (body size, rate, access log) -> ``PublicCache`` (anonymous public
    reads from memory) -> on PostgreSQL ``ngsi.HotUpsert`` (a phone's safety answer in one
    statement) -> the FastAPI application (routes, OpenAPI).
    """
    store = Store(settings.db_url, pool_size=settings.db_pool, create=not prepared)
    keys = Keys(store) if prepared else _seed(store, settings)
    provider = Provider(store, keys, issuer, settings.access_token_ttl, settings.refresh_token_ttl)
    generations, hub = Generations(), events.Hub()
    store.on_public_change.append(generations.bump)
    store.on_commit.append(hub.publish)
    notices = None
    if not store.is_sqlite:
        notices = Notices(store.conninfo, generations, {COMMIT_CHANNEL: lambda _: hub.publish(), SESSION_CHANNEL: provider.session_ended_elsewhere},
                          on_listening=provider.reload_ended)
        provider.hears_ended = lambda: generations.live

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if notices is not None:
            notices.close()
        if hot is not None:
            await hot.close()
        if isinstance(buckets, SharedTokenBuckets):
            buckets.close()
        store.close()

    app = FastAPI(
        **_NO_TELEMETRY,
        lifespan=lifespan,
        title="cityos — reference city-OS platform",
        version="1.0",
        description="OpenID Connect provider, NGSI-LD (ETSI GS CIM 009) subset, consent registry and change feed. See docs/cityos.md.",
    )
    hot = None if store.is_sqlite else HotPath(store.conninfo, settings.db_pool)
    app.state.platform = Platform(settings, store, keys, provider, issuer, hot)
    app.state.hub = hub
    app.include_router(oidc.router(provider))
    app.include_router(ngsi.router())
    app.include_router(changes.router())
    app.include_router(consent.router())
    app.include_router(rides.router())
    app.include_router(family.router())
    app.include_router(points.router())
    app.include_router(checkin.router())
    app.include_router(events.router())

    @app.exception_handler(Problem)
    async def problem(_: Request, exc: Problem) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return bad_data(f"{where}: {first.get('msg', 'invalid')}").response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return Problem(404, NOT_FOUND, str(exc.detail), dict(exc.headers or {})).response()
        # An unsupported method (PUT, …): NGSI-LD maps OperationNotSupported to 422.
        status = 422 if exc.status_code == 405 and request.url.path.startswith("/ngsi-ld/") else exc.status_code
        return Problem(status, NOT_SUPPORTED, str(exc.detail), dict(exc.headers or {})).response()

    buckets = (TokenBuckets(settings.rate_limit, settings.rate_burst) if store.is_sqlite
               else SharedTokenBuckets(settings.rate_limit, settings.rate_burst, store.conninfo, settings.workers))
    front = app if hot is None else ngsi.HotUpsert(app, app.state.platform)
    cached = PublicCache(front, generations, settings.default_tenant, ttl_s=1.0 if notices is None else 5.0)
    connection_age_s = CONNECTION_AGE_S if settings.workers > 1 else 0.0
    return Guard(cached, settings.max_body_bytes, buckets, provider.subject, settings.access_log_share, connection_age_s)
