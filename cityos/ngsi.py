"""NGSI-LD API subset (/ngsi-ld/v1) and the change feed (/cityos/v1/changes)."""
from __future__ import annotations

import base64
import math
import re
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy import Connection, Row, and_, func, or_, select
from starlette.concurrency import run_in_threadpool

from cityos.core import Platform, header_tenant, int_param, platform_of, read_json
from cityos.entities import (
    MUNICIPALITY,
    Point,
    distance_m,
    get_row,
    location_attributes,
    put_entity,
    render,
    tombstone,
    validate_entity,
    validate_entity_id,
    with_system_attributes,
)
from cityos.jsonsafe import JSONResponse
from cityos.oidc import Caller
from cityos.policy import (
    PUBLIC_WRITERS,
    SHELTER_STAFF,
    STAFF_HELD_TYPES,
    active_categories,
    check_write,
    readable,
    require_known_type,
    resolve_tenant,
    tombstone_visible,
)
from cityos.problems import ALREADY_EXISTS, NOT_FOUND, Problem, bad_data, forbidden, not_found, problem_responses, unauthorized
from cityos.query import QueryError, compile_pattern, parse_q
from cityos.store import entity, reserve_seqs

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
_ERRORS = problem_responses(400, 401, 403, 413, 415, 429)

TenantHeader = Annotated[str | None, Header(alias="NGSILD-Tenant", description="6-digit municipality code")]


def _json(payload: Any, platform: Platform, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(payload, status_code=status, headers={"Link": platform.link_header, **(headers or {})})


def _entities_response(request: Request, platform: Platform, payload: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    """application/json with the context in a Link header, or JSON-LD with it inline when asked."""
    accept = request.headers.get("accept", "")
    if "application/ld+json" not in accept or "application/json" in accept:
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
        created = put_entity(self.conn, self.tenant, body, decision.owner_sub, decision.category, existing, merge=merge, seq=next(self.seqs))
        self.written.add(entity_id)
        return created


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


def _split(value: str | None) -> list[str]:
    return [v for v in (value or "").split(",") if v]


def _query(platform: Platform, caller: Caller | None, tenant: str, params: dict[str, str | None], want_count: bool) -> tuple[list[dict[str, Any]], int | None]:
    """One page of matching entities and, when asked (or free), how many match in all."""
    types, ids = _split(params["type"]), _split(params["id"])
    if not (types or ids or params["idPattern"] or params["q"] or params["georel"]):
        raise bad_data("a query needs at least one of type, id, idPattern, q or georel")
    for t in types:
        require_known_type(t)
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
    attrs = set(_split(params["attrs"])) or None

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
        if not (pattern or predicate or near):  # all in SQL: count and page without loading the rest
            total = conn.execute(select(func.count()).select_from(sql.subquery())).scalar_one() if want_count else None
            rows = conn.execute(sql.order_by(entity.c.id).offset(offset).limit(limit)).all() if limit else []
            return [render(row, key_values, sys_attrs, attrs) for row in rows], total
        rows = conn.execute(sql.order_by(entity.c.id)).all()
    matched: list[tuple[float, Row]] = []
    for row in rows:
        if pattern and not pattern(row.id):
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


# --- change feed -------------------------------------------------------------------------------


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, _, seq = text.partition(":")
        if version != "v1" or not seq.isascii() or not seq.isdigit() or int(seq) >= 2**63:
            raise ValueError
        return int(seq)
    except (ValueError, UnicodeDecodeError):
        raise bad_data("invalid cursor: pass back exactly the cursor a previous answer gave") from None


def _changes(platform: Platform, caller: Caller | None, tenant: str, types: list[str], after: int, limit: int) -> dict[str, Any]:
    visible = or_(
        and_(entity.c.deleted.is_(False), readable(caller)),
        and_(entity.c.deleted.is_(True), tombstone_visible(caller)),
    )
    sql = select(entity).where(entity.c.tenant == tenant, entity.c.seq > after, visible)
    if types:
        sql = sql.where(entity.c.type.in_(types))
    with platform.store.read() as conn:
        rows = conn.execute(sql.order_by(entity.c.seq).limit(limit + 1)).all()
    page = rows[:limit]
    changes = [
        {"id": row.id, "type": row.type, "deleted": row.deleted, "modifiedAt": row.modified_at,
         "entity": None if row.deleted else render(row, sys_attrs=True)}
        for row in page
    ]
    return {"changes": changes, "cursor": encode_cursor(page[-1].seq if page else after), "hasMore": len(rows) > limit}


# --- routes ------------------------------------------------------------------------------------


def router() -> APIRouter:
    api = APIRouter(tags=["NGSI-LD"])

    @api.post("/ngsi-ld/v1/entities", status_code=201, summary="Create one entity",
              openapi_extra={"requestBody": {"required": True, "content": _JSON_BODY}},
              responses={201: {"description": "created; Location names it"}, **problem_responses(400, 401, 403, 409, 413, 415, 429)})
    async def create_entity(request: Request) -> Response:
        platform, caller, tenant = _acting(request, header_tenant(request))
        payload, ld = await read_json(request)
        body = validate_entity(payload, tenant, ld)

        def write() -> None:
            with platform.store.write() as conn:
                _Writer(conn, caller, tenant, [body["id"]]).write(body, merge=False, must_be_new=True)

        await run_in_threadpool(write)
        return Response(status_code=201, headers={"Location": f"/ngsi-ld/v1/entities/{body['id']}"})

    @api.post("/ngsi-ld/v1/entityOperations/upsert", summary="Batch upsert (idempotent)",
              openapi_extra={"requestBody": {"required": True, "content": _BATCH_BODY}},
              responses={201: {"description": "ids of the entities created"}, 204: {"description": "all existed and were replaced/updated"},
                         207: {"description": "BatchOperationResult: some failed"}, **_ERRORS})
    async def upsert(request: Request, options: Annotated[str | None, Query(description="replace (default) or update")] = None) -> Response:
        platform, caller, tenant = _acting(request, header_tenant(request))
        if options not in (None, "", "replace", "update"):
            raise bad_data(f"options must be replace or update, got {options!r}")
        payload, ld = await read_json(request)
        if not isinstance(payload, list):
            raise bad_data("batch upsert takes a JSON array of entities")
        if len(payload) > MAX_BATCH:
            raise bad_data(f"at most {MAX_BATCH} entities per batch, got {len(payload)}")

        def write() -> tuple[list[str], list[str], list[dict[str, Any]]]:
            created: list[str] = []
            success: list[str] = []
            errors: list[dict[str, Any]] = []
            ids = [item["id"] for item in payload if isinstance(item, dict) and isinstance(item.get("id"), str)]
            with platform.store.write() as conn:
                writer = _Writer(conn, caller, tenant, ids)
                for index, item in enumerate(payload):
                    entity_id = item.get("id") if isinstance(item, dict) and isinstance(item.get("id"), str) else f"[{index}]"
                    try:
                        body = validate_entity(item, tenant, ld, where=f"entity [{index}]")
                        if writer.write(body, merge=options == "update", must_be_new=False):
                            created.append(body["id"])
                        success.append(body["id"])
                    except Problem as problem:
                        errors.append({"entityId": entity_id, "error": problem.body()})
            return created, success, errors

        created, success, errors = await run_in_threadpool(write)
        if errors:
            return _json({"success": success, "errors": errors}, platform, status=207)
        if created:
            return _json(created, platform, status=201)
        return Response(status_code=204, headers={"Link": platform.link_header})

    @api.get("/ngsi-ld/v1/entities", summary="Query entities", responses={200: {"description": "array of entities", **_ENTITY_MEDIA}, **problem_responses(400, 401, 403, 429)})
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

    @api.get("/ngsi-ld/v1/entities/{entityId}", summary="Get one entity", responses={200: {"description": "the entity", **_ENTITY_MEDIA}, **problem_responses(400, 401, 403, 404, 429)})
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
            row = conn.execute(select(entity).where(entity.c.tenant == tenant, entity.c.id == entityId, entity.c.deleted.is_(False), readable(caller))).first()
        if row is None:
            raise Problem(404, NOT_FOUND, f"no entity {entityId}")
        return _entities_response(request, platform, render(row, "keyValues" in opts, "sysAttrs" in opts, set(_split(attrs)) or None))

    @api.delete("/ngsi-ld/v1/entities/{entityId}", status_code=204, summary="Delete one entity",
                responses={204: {"description": "deleted"}, **problem_responses(400, 401, 403, 404, 429)})
    def delete_entity(request: Request, entityId: Annotated[str, Path()], tenant_header: TenantHeader = None) -> Response:
        platform, caller, tenant = _acting(request, tenant_header)
        validate_entity_id(entityId)
        with platform.store.write() as conn:
            row = get_row(conn, tenant, entityId)
            if row is None or row.deleted:
                raise Problem(404, NOT_FOUND, f"no entity {entityId}")
            _may_delete(caller, row)
            tombstone(conn, tenant, entityId)
        return Response(status_code=204)

    @api.get("/ngsi-ld/v1/contexts/mamori.jsonld", summary="The JSON-LD @context the Link header names",
             response_class=JSONResponse, responses={200: {"content": {"application/ld+json": {}}, "description": "JSON-LD context"}})
    def context(request: Request) -> JSONResponse:
        return JSONResponse(
            {"@context": [{"@vocab": "urn:mamori:ngsi-ld:"}, "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"]},
            media_type="application/ld+json",
        )

    @api.get("/cityos/v1/changes", tags=["Sync"], summary="Entities changed since a cursor (delta pull)",
             responses={200: {"description": "changes, next cursor, hasMore"}, **problem_responses(400, 401, 403, 429)})
    def changes(
        request: Request,
        type: Annotated[str | None, Query(description="type names, comma-separated")] = None,
        after: Annotated[str | None, Query(description="cursor from the previous answer")] = None,
        limit: Annotated[str | None, Query(description="max changes, 1..1000, default 500")] = None,
        tenant_header: TenantHeader = None,
    ) -> JSONResponse:
        platform, caller, tenant = _acting(request, tenant_header)
        types = _split(type)
        for t in types:
            require_known_type(t)
        page = _changes(platform, caller, tenant, types, decode_cursor(after), int_param(limit, "limit", 500, 1, MAX_LIMIT))
        return JSONResponse(page)

    return api

