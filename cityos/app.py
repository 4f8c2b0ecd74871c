"""Assemble the platform: store, keys, OIDC provider, NGSI-LD and consent routes, guards."""
from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cityos import checkin, consent, events, family, ngsi, oidc, points, rides
from cityos.accounts import seed_demo_accounts
from cityos.core import Platform
from cityos.limits import Guard, TokenBuckets, subject_of
from cityos.oidc import Keys, Provider
from cityos.problems import NOT_FOUND, NOT_SUPPORTED, Problem, bad_data
from cityos.seed import seed_shelters
from cityos.settings import Settings
from cityos.store import Store

log = logging.getLogger("cityos")


def create_app(settings: Settings, issuer: str) -> Guard:
    """Open (and create/seed) the database and return the ASGI app, guards in front.

    ``.app`` of the result is the FastAPI application (routes, OpenAPI).
    """
    store = Store(settings.db_url)
    keys = Keys(store)
    if settings.demo_accounts:
        seed_demo_accounts(store)
    for code in settings.regions:
        added = seed_shelters(store, settings.data_dir, code)
        if added:
            log.info("seeded %d shelters for %s", added, code)
    provider = Provider(store, keys, issuer, settings.access_token_ttl, settings.refresh_token_ttl)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        store.close()

    app = FastAPI(
        lifespan=lifespan,
        title="cityos — reference city-OS platform",
        version="1.0",
        description="OpenID Connect provider, NGSI-LD (ETSI GS CIM 009) subset, consent registry and change feed. See docs/cityos.md.",
    )
    app.state.platform = Platform(settings, store, keys, provider, issuer)
    app.state.hub = events.Hub()
    store.on_commit.append(app.state.hub.publish)
    app.include_router(oidc.router(provider))
    app.include_router(ngsi.router())
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

    buckets = TokenBuckets(settings.rate_limit, settings.rate_burst)
    return Guard(app, settings.max_body_bytes, buckets, subject_of(keys.public_set))
