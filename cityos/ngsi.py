"""NGSI-LD API subset (/ngsi-ld/v1); the change feed is cityos/changes.py."""
from __future__ import annotations

import math
import re
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy import Connection, Row, func, select
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from cityos import jsonsafe
from cityos.core import Platform, header_tenant, int_param, platform_of, read_json
from cityos.entities import (
    MUNICIPALITY,
    TYPE_NAME,
    Point,
    distance_m,
    get_row,
    location_attributes,
    put_entity,
    render,
    tombstone,
    validate_attribute,
    validate_entity,
    validate_entity_id,
    with_system_attributes,
)
from cityos.hotpath import own_write
from cityos.jsonsafe import JSONResponse
from cityos.limits import replaying
from cityos.oidc import Caller
from cityos.policy import (
    PUBLIC_WRITERS,
    SHELTER_STAFF,
    STAFF_HELD_TYPES,
    active_categories,
    check_write,
    readable,
    resolve_tenant,
)
from cityos.problems import ALREADY_EXISTS, NOT_ACCEPTABLE, NOT_FOUND, Problem, bad_data, forbidden, not_found, problem_responses, unauthorized
from cityos.query import QueryError, compile_pattern, parse_q
from cityos.store import current_tx, entity, reserve_seqs

MAX_LIMIT = 1000
MAX_BATCH = 1000
_COORDINATES = re.compile(r"^\[\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*\]$")

_ENTITY_SCHEMA = {
    "type": "object",
    "required": ["id", "type"],
    "properties": {
        "id": {"type": "string", "example": "urn:ngsi-ld:SafetyStatus:3f1c"},
        "type": {"type": "string", "example": "SafetyStatus"},
        "@context": {},
    },
    "additionalProperties": {
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"type": "string", "enum": ["Property", "GeoProperty", "Relationship", "LanguageProperty"]}},
    },
}
_JSON_BODY = {"application/json": {"schema": _ENTITY_SCHEMA}, "application/ld+json": {"schema": _ENTITY_SCHEMA}}
_BATCH_BODY = {
    "application/json": {"schema": {"type": "array", "items": _ENTITY_SCHEMA}},
    "application/ld+json": {"schema": {"type": "array", "items": _ENTITY_SCHEMA}},
}
_FRAGMENT_BODY = {"application/json": {"schema": {"type": "object", "additionalProperties": {"type": "object"}}},
                  "application/ld+json": {"schema": {"type": "object"}}}
_ERRORS = problem_responses(400, 401, 403, 413, 415, 429)
_FIXED = ("id", "type", MUNICIPALITY)  # attributes the attribute routes never change
_CONTEXT_LINK = 'rel="http://www.w3.org/ns/json-ld#context"'
# Type names may come expanded with Mamori's @vocab or the core context's default vocabulary.
_TYPE_PREFIXES = ("urn:mamori:ngsi-ld:", "https://uri.etsi.org/ngsi-ld/default-context/")

TenantHeader = Annotated[str | None, Header(alias="NGSILD-Tenant", description="6-digit municipality code")]


def _json(payload: Any, platform: Platform, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(payload, status_code=status, headers={"Link": platform.link_header, **(headers or {})})


def _wants_ld(request: Request) -> bool:
    """Whether the answer is JSON-LD (asked for, and plain JSON not); 406 when neither is acceptable."""
    accept = request.headers.get("accept", "")
    ranges = set()
    for part in accept.split(","):
        media, *params = (p.strip().lower() for p in part.split(";"))
        if not any(p.startswith("q=") and p[2:].strip("0.") == "" for p in params):  # q=0: "not this one"
            ranges.add(media)
    if accept and not ranges & {"application/json", "application/ld+json", "application/*", "*/*"}:
        raise Problem(406, NOT_ACCEPTABLE, f"answers are application/json or application/ld+json, not {accept[:80]!r}")
    return "application/ld+json" in ranges and "application/json" not in ranges


def _entities_response(request: Request, platform: Platform, payload: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    """application/json with the context in a Link header, or JSON-LD with it inline when asked."""
    if not _wants_ld(request):
        return _json(payload, platform, headers=headers)
    context = {"@context": platform.context_url}
    body = [{**e, **context} for e in payload] if isinstance(payload, list) else {**payload, **context}
    return JSONResponse(body, headers=headers, media_type="application/ld+json")


_ENTITY_MEDIA: dict[str, Any] = {"content": {"application/json": {}, "application/ld+json": {}}}


def _acting(request: Request, tenant_header: str | None) -> tuple[Platform, Caller | None, str]:
    """The platform, the verified caller (or None) and the municipality the request acts in."""
    platform = platform_of(request)
    caller = platform.caller(request)
    return platform, caller, resolve_tenant(caller, tenant_header, platform.settings.default_tenant)


def _check_code(body: dict[str, Any], tenant: str) -> None:
    code = body[MUNICIPALITY]["value"]
    if code != tenant:
        raise forbidden(f"entity {body['id']} carries municipalityCode {code!r} but the request acts for {tenant}")


class _Writer:
    """Writes one request's entities in one transaction, looking up stored rows and the
    caller's consents once per batch rather than once per entity."""

    def __init__(self, conn: Connection, caller: Caller | None, tenant: str, ids: list[str]):
        self.conn, self.caller, self.tenant = conn, caller, tenant
        self.consented = active_categories(conn, caller.sub) if caller else set()
        self.stored = {row.id: row for row in conn.execute(select(entity).where(entity.c.tenant == tenant, entity.c.id.in_(ids)))} if ids else {}
        self.seqs = iter(reserve_seqs(conn, len(ids)))
        self.tx = current_tx(conn)
        self.written: set[str] = set()

    def write(self, body: dict[str, Any], merge: bool, must_be_new: bool) -> bool:
        """Store one validated entity; True when it was created. Raises a Problem when refused."""
        _check_code(body, self.tenant)
        entity_id = body["id"]
        existing = get_row(self.conn, self.tenant, entity_id) if entity_id in self.written else self.stored.get(entity_id)
        live = existing is not None and not existing.deleted
        if must_be_new and live:
            raise Problem(409, ALREADY_EXISTS, f"entity {entity_id} already exists")
        if existing is not None and live and existing.type != body["type"]:
            raise bad_data(f"entity {entity_id} is a {existing.type}, not a {body['type']}")
        owner = existing.owner_sub if existing is not None else None
        decision = check_write(self.caller, body["type"], location_attributes(body), owner, existing is not None, self.consented)
        created = put_entity(self.conn, self.tenant, body, decision.owner_sub, decision.category, existing, merge=merge, seq=next(self.seqs),
                             tx=self.tx)
        self.written.add(entity_id)
        return created

    def update(self, fragment: dict[str, Any], keep_existing: bool) -> bool:
        """Batch update: merge attributes into an entity that exists; never creates one."""
        existing = get_row(self.conn, self.tenant, fragment["id"]) if fragment["id"] in self.written else self.stored.get(fragment["id"])
        if existing is None or existing.deleted:
            raise not_found(f"no entity {fragment['id']}")
        if keep_existing:
            fragment = {k: v for k, v in fragment.items() if k in ("id", "type") or k not in existing.body}
        return self.write(fragment, merge=True, must_be_new=False)


def _delete(conn: Connection, caller: Caller | None, tenant: str, entity_id: str) -> None:
    row = get_row(conn, tenant, entity_id)
    if row is None or row.deleted:
        raise Problem(404, NOT_FOUND, f"no entity {entity_id}")
    _may_delete(caller, row)
    tombstone(conn, tenant, entity_id)


def _modify(platform: Platform, caller: Caller | None, tenant: str, entity_id: str, change: Any) -> None:
    """Rewrite one live entity the caller may read through ``change(body) -> body``, with the
    same checks (role, owner, consent, location) as any other write."""
    validate_entity_id(entity_id)
    with platform.store.write() as conn:
        row = conn.execute(select(entity).where(entity.c.tenant == tenant, entity.c.id == entity_id, entity.c.deleted.is_(False),
                                                readable(caller))).first()
        if row is None:
            raise not_found(f"no entity {entity_id}")
        _Writer(conn, caller, tenant, [entity_id]).write(change(dict(row.body)), merge=False, must_be_new=False)


async def _read_entities(request: Request) -> tuple[list[Any], bool]:
    payload, ld = await _read_body(request)
    if not isinstance(payload, list):
        raise bad_data("a batch operation takes a JSON array of entities")
    if len(payload) > MAX_BATCH:
        raise bad_data(f"at most {MAX_BATCH} entities per batch, got {len(payload)}")
    return payload, ld


async def _read_fragment(request: Request) -> tuple[dict[str, Any], bool]:
    payload, ld = await _read_body(request)
    if not isinstance(payload, dict):
        raise bad_data("the body must be a JSON object of attributes")
    if ld and "@context" not in payload:
        raise bad_data("application/ld+json needs @context in the body (or send application/json with a Link header)")
    return payload, ld


async def _read_body(request: Request) -> tuple[Any, bool]:
    """The JSON body; with application/ld+json the @context belongs in the body, never also in a Link header."""
    payload, ld = await read_json(request)
    if ld and _CONTEXT_LINK in request.headers.get("link", ""):
        raise bad_data("application/ld+json carries @context in the body; a JSON-LD context Link header is for application/json only")
    return payload, ld


def _no_overwrite(options: str | None) -> bool:
    if options not in (None, "", "noOverwrite"):
        raise bad_data(f"options must be noOverwrite or absent, got {options[:40]!r}")
    return options == "noOverwrite"


def _batch_item_id(item: Any, index: int) -> str:
    """The entity a batch error is about: its id, or a URI naming the position of an item without one."""
    entity_id = item.get("id") if isinstance(item, dict) else None
    return entity_id if isinstance(entity_id, str) and len(entity_id) <= 512 else f"urn:cityos:batch-item:{index}"


async def _batch(platform: Platform, caller: Caller | None, tenant: str, payload: list[Any], ld: bool, apply: Any,
                 *, creates: bool = False) -> Response:
    """Run ``apply(writer, body)`` per entity in one transaction; 201 (ids created) / 204 / 207.
    A batch create always answers 201 with the ids it created, an empty list for an empty batch."""

    def write() -> tuple[list[str], list[str], list[dict[str, Any]]]:
        created: list[str] = []
        success: list[str] = []
        errors: list[dict[str, Any]] = []
        ids = [item["id"] for item in payload if isinstance(item, dict) and isinstance(item.get("id"), str)]
        with platform.store.write() as conn:
            writer = _Writer(conn, caller, tenant, ids)
            for index, item in enumerate(payload):
                try:
                    body = validate_entity(item, tenant, ld, where=f"entity [{index}]")
                    if apply(writer, body):
                        created.append(body["id"])
                    success.append(body["id"])
                except Problem as problem:
                    errors.append({"entityId": _batch_item_id(item, index), "error": problem.body()})
        return created, success, errors

    created, success, errors = await run_in_threadpool(write)
    if errors:
        return _json({"success": success, "errors": errors}, platform, status=207)
    if created or creates:
        return _json(created, platform, status=201)
    return Response(status_code=204, headers={"Link": platform.link_header})


async def _upsert_own(platform: Platform, caller: Caller | None, tenant: str, item: Any, ld: bool) -> Response | None:
    """A one-entity upsert of the caller's own personal entity in one statement (cityos/hotpath.py);
    None when that does not apply or wrote nothing: then ``_batch`` decides as always."""
    assert platform.hot is not None
    try:
        body = validate_entity(item, tenant, ld, where="entity [0]")
        _check_code(body, tenant)
    except Problem:
        return None  # the general path reports it (207)
    plan = own_write(caller, body)
    if plan is None or caller is None:
        return None
    created = await platform.hot.upsert_own(caller, tenant, body, *plan)
    if created is None:
        return None
    platform.store.committed()
    if created:
        return _json([body["id"]], platform, status=201)
    return Response(status_code=204, headers={"Link": platform.link_header})


UPSERT_PATH = "/ngsi-ld/v1/entityOperations/upsert"
_TRIED = "cityos.hot_upsert_tried"  # scope key: the one-statement write was tried and did not apply
_PLAIN_QUERIES = (b"", b"options=", b"options=replace")


class HotUpsert:
    """ASGI middleware in front of FastAPI: a phone's safety answer — an upsert of one entity of
    its own, ``application/json`` — goes straight to the one-statement write (cityos/hotpath.py)
    without the framework's routing, dependency and exception layers, which cost more CPU than
    the write itself. Whatever it cannot answer (any other shape, a bad token, a refusal) goes on
    to the route unchanged, body and all, and is answered there as always."""

    def __init__(self, app: ASGIApp, platform: Platform) -> None:
        self.app, self.platform = app, platform

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != UPSERT_PATH
                or scope.get("query_string", b"") not in _PLAIN_QUERIES):
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        response = await self._answer(scope, body)
        if response is not None:
            await response(scope, receive, send)
            return
        await self.app(scope, replaying(body, receive), send)

    async def _answer(self, scope: Scope, raw: bytes) -> Response | None:
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))  # the first, as Starlette's headers.get
        if headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            return None
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        try:
            caller = self.platform.provider.verify(token.strip())
            tenant = resolve_tenant(caller, headers.get("ngsild-tenant"), self.platform.settings.default_tenant)
            payload = jsonsafe.loads(raw)
        except (Problem, ValueError):  # ValueError: not JSON, or a value refused (jsonsafe)
            return None
        if not isinstance(payload, list) or len(payload) != 1:
            return None
        scope[_TRIED] = True
        return await _upsert_own(self.platform, caller, tenant, payload[0], ld=False)


async def _change_attributes(request: Request, entity_id: str, append: bool, keep: bool) -> Response:
    """PATCH (update existing attributes) or POST (append) /entities/{id}/attrs: 204, or 207
    naming the attributes left alone (absent for PATCH, present under noOverwrite for POST)."""
    platform, caller, tenant = _acting(request, header_tenant(request))
    fragment, ld = await _read_fragment(request)
    names = [k for k in fragment if k not in ("@context", "id", "type")]
    skipped: list[dict[str, str]] = []

    def change(body: dict[str, Any]) -> dict[str, Any]:
        clean = validate_entity({**fragment, "id": entity_id, "type": body["type"], MUNICIPALITY: body[MUNICIPALITY]}, "", ld)
        for name in names:
            exists = name in body
            if name in _FIXED or (not append and not exists) or (keep and exists):
                skipped.append({"attributeName": name,
                                "reason": "cannot be changed here" if name in _FIXED else "exists (noOverwrite)" if exists else "no such attribute"})
            else:
                body[name] = clean[name]
        return body

    await run_in_threadpool(_modify, platform, caller, tenant, entity_id, change)
    if skipped:
        done = [n for n in names if n not in {s["attributeName"] for s in skipped}]
        return _json({"updated": done, "notUpdated": skipped}, platform, status=207)
    return Response(status_code=204)


def _may_delete(caller: Caller | None, row: Row) -> None:
    if caller is None:
        raise unauthorized("deleting needs a bearer token", error="invalid_request")
    if row.type in PUBLIC_WRITERS:
        if not caller.roles & PUBLIC_WRITERS[row.type]:
            raise forbidden(f"deleting {row.type} needs one of the roles {', '.join(sorted(PUBLIC_WRITERS[row.type]))}")
        return
    city_held = row.owner_sub is None and row.type in STAFF_HELD_TYPES and SHELTER_STAFF in caller.roles
    if row.owner_sub != caller.sub and not city_held:
        raise not_found(f"no entity {row.id}")  # someone else's: do not reveal it exists


def _parse_near(georel: str | None, geometry: str | None, coordinates: str | None) -> tuple[Point, float | None, float | None] | None:
    if georel is None:
        if geometry or coordinates:
            raise bad_data("geometry/coordinates need georel")
        return None
    parts = georel.split(";")
    if parts[0] != "near":
        raise bad_data(f"georel {parts[0][:40]!r} is not supported here; use near;maxDistance==N or near;minDistance==N")
    max_d = min_d = None
    for part in parts[1:]:
        name, _, value = part.partition("==")
        try:
            metres = float(value)
        except ValueError:
            raise bad_data(f"georel distance must be a number of metres, got {part!r}") from None
        if not 0 <= metres < math.inf:  # also refuses NaN
            raise bad_data(f"georel distance must be a non-negative number, got {part!r}")
        if name == "maxDistance":
            max_d = metres
        elif name == "minDistance":
            min_d = metres
        else:
            raise bad_data(f"georel near takes maxDistance==N or minDistance==N, got {part!r}")
    if max_d is None and min_d is None:
        raise bad_data("georel near needs maxDistance==N and/or minDistance==N")
    if geometry != "Point":
        raise bad_data("georel near needs geometry=Point")
    match = _COORDINATES.match(coordinates or "")
    if not match:
        raise bad_data("coordinates must be [lon,lat], e.g. coordinates=[131.25,33.95]")
    lon, lat = float(match[1]), float(match[2])
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise bad_data(f"coordinates [{lon},{lat}] are out of range (order is [lon,lat])")
    return Point(lat, lon), max_d, min_d


def _compact_type(name: str) -> str:
    """``urn:mamori:ngsi-ld:Alert`` or the core default vocabulary's URI -> ``Alert``."""
    return next((name[len(p):] for p in _TYPE_PREFIXES if name.startswith(p)), name)


def _check_type_name(name: str) -> None:
    """A type no entity has matches nothing (200, as the standard says); only a malformed name is a 400."""
    if not TYPE_NAME.match(name):
        raise bad_data(f"type {name[:60]!r} is not a type name (or one expanded with the served @context)")


def _split(value: str | None) -> list[str]:
    return [v for v in (value or "").split(",") if v]


def _query(platform: Platform, caller: Caller | None, tenant: str, params: dict[str, str | None],
           want_count: bool) -> tuple[list[dict[str, Any]], int | None]:
    """One page of matching entities and, when asked (or free), how many match in all."""
    types, ids = [_compact_type(t) for t in _split(params["type"])], _split(params["id"])
    wanted_attrs = set(_split(params["attrs"]))
    if not (types or ids or params["idPattern"] or params["q"] or params["georel"] or wanted_attrs):
        raise bad_data("a query needs at least one of type, id, idPattern, q, georel or attrs")
    for t in types:
        _check_type_name(t)
    for i in ids:
        validate_entity_id(i)
    limit = int_param(params["limit"], "limit", 20, 0, MAX_LIMIT)
    offset = int_param(params["offset"], "offset", 0, 0, 10**9)
    try:
        predicate = parse_q(params["q"]) if params["q"] else None
    except QueryError as exc:
        raise bad_data(f"invalid q: {exc}") from None
    try:
        pattern = compile_pattern(params["idPattern"]) if params["idPattern"] else None
    except QueryError as exc:
        raise bad_data(f"invalid idPattern: {exc}") from None
    near = _parse_near(params["georel"], params["geometry"], params["coordinates"])
    options = set(_split(params["options"]))
    unknown = options - {"keyValues", "sysAttrs", "normalized", "count"}
    if unknown:
        raise bad_data(f"unsupported options: {', '.join(sorted(unknown))}")
    attrs = wanted_attrs or None
    only_attrs = not (types or ids or params["idPattern"] or params["q"] or params["georel"])  # entities having any of them

    sql = select(entity).where(entity.c.tenant == tenant, entity.c.deleted.is_(False), readable(caller))
    if types:
        sql = sql.where(entity.c.type.in_(types))
    if ids:
        sql = sql.where(entity.c.id.in_(ids))
    if near:
        centre, max_d, _ = near
        sql = sql.where(entity.c.lat.is_not(None))
        if max_d is not None:  # a box around the circle narrows the scan; the exact test follows
            dlat = max_d / 111_000 + 1e-6
            dlon = dlat / max(0.01, math.cos(math.radians(centre.lat)))
            sql = sql.where(entity.c.lat.between(centre.lat - dlat, centre.lat + dlat), entity.c.lon.between(centre.lon - dlon, centre.lon + dlon))
    key_values, sys_attrs = "keyValues" in options, "sysAttrs" in options
    with platform.store.read() as conn:
        if not (pattern or predicate or near or only_attrs):  # all in SQL: count and page without loading the rest
            total = conn.execute(select(func.count()).select_from(sql.subquery())).scalar_one() if want_count else None
            rows = conn.execute(sql.order_by(entity.c.id).offset(offset).limit(limit)).all() if limit else []
            return [render(row, key_values, sys_attrs, attrs) for row in rows], total
        rows = conn.execute(sql.order_by(entity.c.id)).all()
    matched: list[tuple[float, Row]] = []
    for row in rows:
        if pattern and not pattern(row.id):
            continue
        if only_attrs and not wanted_attrs & set(row.body):
            continue
        distance = 0.0
        if near:
            centre, max_d, min_d = near
            distance = distance_m(centre, Point(row.lat, row.lon))
            if (max_d is not None and distance > max_d) or (min_d is not None and distance < min_d):
                continue
        if predicate and not predicate(with_system_attributes(row)):
            continue
        matched.append((distance, row))
    if near:
        matched.sort(key=lambda pair: (pair[0], pair[1].id))
    page = matched[offset: offset + limit]
    return [render(row, key_values, sys_attrs, attrs) for _, row in page], len(matched)


# --- routes ------------------------------------------------------------------------------------


def router() -> APIRouter:
    api = APIRouter(tags=["NGSI-LD"])

    @api.post("/ngsi-ld/v1/entities", status_code=201, summary="Create one entity",
              openapi_extra={"requestBody": {"required": True, "content": _JSON_BODY}},
              responses={201: {"description": "created; Location names it"}, **problem_responses(400, 401, 403, 409, 413, 415, 429)})
    async def create_entity(request: Request) -> Response:
        platform, caller, tenant = _acting(request, header_tenant(request))
        payload, ld = await _read_body(request)
        body = validate_entity(payload, tenant, ld)

        def write() -> None:
            with platform.store.write() as conn:
                _Writer(conn, caller, tenant, [body["id"]]).write(body, merge=False, must_be_new=True)

        await run_in_threadpool(write)
        return Response(status_code=201, headers={"Location": f"/ngsi-ld/v1/entities/{body['id']}"})

    @api.post(UPSERT_PATH, summary="Batch upsert (idempotent)",
              openapi_extra={"requestBody": {"required": True, "content": _BATCH_BODY}},
              responses={201: {"description": "ids of the entities created"}, 204: {"description": "all existed and were replaced/updated"},
                         207: {"description": "BatchOperationResult: some failed"}, **_ERRORS})
    async def upsert(request: Request, options: Annotated[str | None, Query(description="replace (default) or update")] = None) -> Response:
        platform, caller, tenant = _acting(request, header_tenant(request))
        if options not in (None, "", "replace", "update"):
            raise bad_data(f"options must be replace or update, got {options!r}")
        payload, ld = await _read_entities(request)
        merge = options == "update"
        if platform.hot is not None and not merge and len(payload) == 1 and not request.scope.get(_TRIED):  # a phone's outbox: one entity
            answered = await _upsert_own(platform, caller, tenant, payload[0], ld)
            if answered is not None:
                return answered
        return await _batch(platform, caller, tenant, payload, ld, lambda writer, body: writer.write(body, merge=merge, must_be_new=False))

    @api.post("/ngsi-ld/v1/entityOperations/create", summary="Batch create",
              openapi_extra={"requestBody": {"required": True, "content": _BATCH_BODY}},
              responses={201: {"description": "ids of the entities created"}, 207: {"description": "BatchOperationResult: some failed"}, **_ERRORS})
    async def batch_create(request: Request) -> Response:
        platform, caller, tenant = _acting(request, header_tenant(request))
        payload, ld = await _read_entities(request)
        return await _batch(platform, caller, tenant, payload, ld, lambda writer, body: writer.write(body, merge=False, must_be_new=True),
                            creates=True)

    @api.post("/ngsi-ld/v1/entityOperations/update", summary="Batch update: attributes of existing entities",
              openapi_extra={"requestBody": {"required": True, "content": _BATCH_BODY}},
              responses={204: {"description": "all updated"}, 207: {"description": "BatchOperationResult: some failed"}, **_ERRORS})
    async def batch_update(request: Request,
                           options: Annotated[str | None, Query(description="noOverwrite: keep existing attributes")] = None) -> Response:
        platform, caller, tenant = _acting(request, header_tenant(request))
        keep = _no_overwrite(options)
        payload, ld = await _read_entities(request)
        return await _batch(platform, caller, tenant, payload, ld, lambda writer, body: writer.update(body, keep))

    @api.post("/ngsi-ld/v1/entityOperations/delete", summary="Batch delete",
              openapi_extra={"requestBody": {"required": True,
                                             "content": {"application/json": {"schema": {"type": "array", "items": {"type": "string"}}}}}},
              responses={204: {"description": "all deleted"}, 207: {"description": "BatchOperationResult: some failed"}, **_ERRORS})
    async def batch_delete(request: Request) -> Response:
        platform, caller, tenant = _acting(request, header_tenant(request))
        payload, _ = await read_json(request)
        if not isinstance(payload, list) or len(payload) > MAX_BATCH:
            raise bad_data(f"batch delete takes a JSON array of at most {MAX_BATCH} entity ids")

        def write() -> tuple[list[str], list[dict[str, Any]]]:
            success: list[str] = []
            errors: list[dict[str, Any]] = []
            with platform.store.write() as conn:
                for index, item in enumerate(payload):
                    try:
                        entity_id = validate_entity_id(item)
                        _delete(conn, caller, tenant, entity_id)
                        success.append(entity_id)
                    except Problem as problem:
                        errors.append({"entityId": _batch_item_id(item, index), "error": problem.body()})
            return success, errors

        success, errors = await run_in_threadpool(write)
        if errors:
            return _json({"success": success, "errors": errors}, platform, status=207)
        return Response(status_code=204)

    @api.patch("/ngsi-ld/v1/entities/{entityId}/attrs", summary="Update existing attributes of an entity",
               openapi_extra={"requestBody": {"required": True, "content": _FRAGMENT_BODY}},
               responses={204: {"description": "all updated"}, 207: {"description": "some attributes do not exist"},
                          **problem_responses(400, 401, 403, 404, 413, 415, 429)})
    async def update_attrs(request: Request, entityId: Annotated[str, Path()]) -> Response:
        return await _change_attributes(request, entityId, append=False, keep=False)

    @api.post("/ngsi-ld/v1/entities/{entityId}/attrs", summary="Append attributes to an entity",
              openapi_extra={"requestBody": {"required": True, "content": _FRAGMENT_BODY}},
              responses={204: {"description": "appended"}, 207: {"description": "noOverwrite kept some attributes"},
                         **problem_responses(400, 401, 403, 404, 413, 415, 429)})
    async def append_attrs(request: Request, entityId: Annotated[str, Path()],
                           options: Annotated[str | None, Query(description="noOverwrite: keep existing attributes")] = None) -> Response:
        return await _change_attributes(request, entityId, append=True, keep=_no_overwrite(options))

    @api.patch("/ngsi-ld/v1/entities/{entityId}/attrs/{attrId}", status_code=204, summary="Partially update one attribute",
               openapi_extra={"requestBody": {"required": True, "content": _FRAGMENT_BODY}},
               responses={204: {"description": "updated"}, **problem_responses(400, 401, 403, 404, 413, 415, 429)})
    async def patch_attr(request: Request, entityId: Annotated[str, Path()], attrId: Annotated[str, Path()]) -> Response:
        platform, caller, tenant = _acting(request, header_tenant(request))
        fragment, _ld = await _read_fragment(request)

        def change(body: dict[str, Any]) -> dict[str, Any]:
            if attrId not in body or attrId in _FIXED:
                raise not_found(f"entity {entityId} has no attribute {attrId!r} that can be changed")
            merged = {**body[attrId], **{k: v for k, v in fragment.items() if k != "@context"}}
            return {**body, attrId: validate_attribute(merged, f"attribute {attrId!r}")}

        await run_in_threadpool(_modify, platform, caller, tenant, entityId, change)
        return Response(status_code=204)

    @api.delete("/ngsi-ld/v1/entities/{entityId}/attrs/{attrId}", status_code=204, summary="Delete one attribute",
                responses={204: {"description": "deleted"}, **problem_responses(400, 401, 403, 404, 429)})
    def delete_attr(request: Request, entityId: Annotated[str, Path()], attrId: Annotated[str, Path()],
                    tenant_header: TenantHeader = None) -> Response:
        platform, caller, tenant = _acting(request, tenant_header)

        def change(body: dict[str, Any]) -> dict[str, Any]:
            if attrId not in body or attrId in _FIXED:
                raise not_found(f"entity {entityId} has no attribute {attrId!r} that can be deleted")
            return {k: v for k, v in body.items() if k != attrId}

        _modify(platform, caller, tenant, entityId, change)
        return Response(status_code=204)

    @api.get("/ngsi-ld/v1/entities", summary="Query entities",
             responses={200: {"description": "array of entities", **_ENTITY_MEDIA}, **problem_responses(400, 401, 403, 429)})
    def query_entities(
        request: Request,
        type: Annotated[str | None, Query(description="type names, comma-separated")] = None,
        id: Annotated[str | None, Query(description="entity ids, comma-separated")] = None,
        idPattern: Annotated[str | None, Query(description="regular expression over ids")] = None,
        q: Annotated[str | None, Query(description="NGSI-LD query language")] = None,
        georel: Annotated[str | None, Query(description="near;maxDistance==N (metres)")] = None,
        geometry: Annotated[str | None, Query(description="Point")] = None,
        coordinates: Annotated[str | None, Query(description="[lon,lat]")] = None,
        attrs: Annotated[str | None, Query(description="attribute names to return")] = None,
        options: Annotated[str | None, Query(description="keyValues, sysAttrs")] = None,
        limit: Annotated[str | None, Query(description=f"page size, 0..{MAX_LIMIT}, default 20")] = None,
        offset: Annotated[str | None, Query(description="entities to skip")] = None,
        count: Annotated[str | None, Query(description="true: NGSILD-Results-Count header")] = None,
        tenant_header: TenantHeader = None,
    ) -> Response:
        platform, caller, tenant = _acting(request, tenant_header)
        if count not in (None, "true", "false"):
            raise bad_data(f"count must be true or false, got {count!r}")
        params = {"type": type, "id": id, "idPattern": idPattern, "q": q, "georel": georel, "geometry": geometry,
                  "coordinates": coordinates, "attrs": attrs, "options": options, "limit": limit, "offset": offset}
        want_count = count == "true" or "count" in _split(options)
        results, total = _query(platform, caller, tenant, params, want_count)
        headers = {"NGSILD-Results-Count": str(total)} if want_count else {}
        return _entities_response(request, platform, results, headers)

    @api.get("/ngsi-ld/v1/entities/{entityId}", summary="Get one entity",
             responses={200: {"description": "the entity", **_ENTITY_MEDIA}, **problem_responses(400, 401, 403, 404, 429)})
    def get_entity(
        request: Request,
        entityId: Annotated[str, Path()],
        options: Annotated[str | None, Query()] = None,
        attrs: Annotated[str | None, Query()] = None,
        tenant_header: TenantHeader = None,
    ) -> Response:
        platform, caller, tenant = _acting(request, tenant_header)
        validate_entity_id(entityId)
        opts = set(_split(options))
        with platform.store.read() as conn:
            row = conn.execute(select(entity).where(entity.c.tenant == tenant, entity.c.id == entityId, entity.c.deleted.is_(False),
                                                    readable(caller))).first()
        if row is None:
            raise Problem(404, NOT_FOUND, f"no entity {entityId}")
        return _entities_response(request, platform, render(row, "keyValues" in opts, "sysAttrs" in opts, set(_split(attrs)) or None))

    @api.delete("/ngsi-ld/v1/entities/{entityId}", status_code=204, summary="Delete one entity",
                responses={204: {"description": "deleted"}, **problem_responses(400, 401, 403, 404, 429)})
    def delete_entity(request: Request, entityId: Annotated[str, Path()], tenant_header: TenantHeader = None) -> Response:
        platform, caller, tenant = _acting(request, tenant_header)
        validate_entity_id(entityId)
        with platform.store.write() as conn:
            _delete(conn, caller, tenant, entityId)
        return Response(status_code=204)

    @api.get("/ngsi-ld/v1/contexts/mamori.jsonld", summary="The JSON-LD @context the Link header names",
             response_class=JSONResponse, responses={200: {"content": {"application/ld+json": {}}, "description": "JSON-LD context"}})
    def context(request: Request) -> JSONResponse:
        return JSONResponse(
            # The core context first: a later @vocab overrides the core's default vocabulary.
            {"@context": ["https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld", {"@vocab": "urn:mamori:ngsi-ld:"}]},
            media_type="application/ld+json",
        )

    return api

