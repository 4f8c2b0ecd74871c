"""NGSI-LD entities: shape checks (normalised form), storage rows, and output forms.

Bodies are stored without ``@context`` and system attributes; ``createdAt``/``modifiedAt``
live in columns. Deleting keeps a tombstone row (no body) so the change feed can tell
clients to drop their copy.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, and_, select, update

from cityos.problems import bad_data
from cityos.store import current_tx, entity, next_seq, touch_public, utc_now

ATTRIBUTE_TYPES = ("Property", "GeoProperty", "Relationship", "LanguageProperty")
GEOMETRY_TYPES = ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon")
SYSTEM_ATTRIBUTES = ("createdAt", "modifiedAt")
MUNICIPALITY = "municipalityCode"
TYPE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,127}$")
_ATTRIBUTE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"]+$")
MAX_ID_LENGTH = 512
_LATITUDE_KEYS = frozenset({"lat", "latitude"})
_LONGITUDE_KEYS = frozenset({"lon", "lng", "long", "longitude"})


@dataclass(frozen=True, slots=True)
class Point:
    lat: float
    lon: float


def validate_entity_id(value: Any) -> str:
    if not isinstance(value, str) or len(value) > MAX_ID_LENGTH or not _URI.match(value):
        raise bad_data(f"entity id must be a URI such as urn:ngsi-ld:Type:123, got {str(value)[:80]!r}")
    return value


def validate_entity(body: Any, tenant: str, context_in_body_allowed: bool, where: str = "entity") -> dict[str, Any]:
    """Check one normalised entity; return it cleaned (no @context, no system attributes)."""
    if not isinstance(body, dict):
        raise bad_data(f"{where}: must be a JSON object")
    if "@context" in body and not context_in_body_allowed:
        raise bad_data(f"{where}: @context in the body needs Content-Type application/ld+json (else send it in a Link header)")
    if context_in_body_allowed and "@context" not in body:
        raise bad_data(f"{where}: application/ld+json needs @context in the body (or send application/json with a Link header)")
    entity_id = validate_entity_id(body.get("id"))
    entity_type = body.get("type")
    if not isinstance(entity_type, str) or not TYPE_NAME.match(entity_type):
        raise bad_data(f"{where} {entity_id}: 'type' must be a short type name like EvacuationShelter")
    clean: dict[str, Any] = {"id": entity_id, "type": entity_type}
    for name, attribute in body.items():
        if name in ("id", "type", "@context") or name in SYSTEM_ATTRIBUTES:
            continue
        if not _ATTRIBUTE_NAME.match(name):
            raise bad_data(f"{where} {entity_id}: invalid attribute name {name[:60]!r}")
        clean[name] = validate_attribute(attribute, f"{where} {entity_id} attribute {name!r}")
    code = clean.get(MUNICIPALITY)
    if code is None:
        clean[MUNICIPALITY] = {"type": "Property", "value": tenant}
    elif code.get("type") != "Property" or not isinstance(code.get("value"), str):
        raise bad_data(f"{where} {entity_id}: municipalityCode must be a Property with a 6-digit string value")
    return clean


def validate_attribute(attribute: Any, where: str) -> dict[str, Any]:
    if isinstance(attribute, list):
        raise bad_data(f"{where}: multi-attributes (datasetId) are not supported")
    if not isinstance(attribute, dict):
        raise bad_data(f"{where}: must be an object with a 'type' of {', '.join(ATTRIBUTE_TYPES)} (normalised form)")
    kind = attribute.get("type")
    if kind not in ATTRIBUTE_TYPES:
        raise bad_data(f"{where}: 'type' must be one of {', '.join(ATTRIBUTE_TYPES)}, got {str(kind)[:40]!r}")
    if kind == "Relationship":
        target = attribute.get("object")
        targets = target if isinstance(target, list) else [target]
        if not targets or not all(isinstance(t, str) and _URI.match(t) for t in targets):
            raise bad_data(f"{where}: a Relationship needs 'object' holding a URI")
    elif kind == "LanguageProperty":
        if not isinstance(attribute.get("languageMap"), dict):
            raise bad_data(f"{where}: a LanguageProperty needs a 'languageMap' object")
    elif "value" not in attribute or attribute["value"] is None:
        raise bad_data(f"{where}: a {kind} needs a non-null 'value'")
    elif kind == "GeoProperty":
        validate_geometry(attribute["value"], where)
    for meta in ("observedAt", "unitCode", "datasetId"):
        if meta in attribute and not isinstance(attribute[meta], str):
            raise bad_data(f"{where}: {meta} must be a string")
    return {k: v for k, v in attribute.items() if k not in SYSTEM_ATTRIBUTES}


def validate_geometry(geometry: Any, where: str) -> None:
    if not isinstance(geometry, dict) or geometry.get("type") not in GEOMETRY_TYPES:
        raise bad_data(f"{where}: value must be a GeoJSON geometry ({', '.join(GEOMETRY_TYPES)})")
    positions = list(_positions(geometry.get("coordinates")))
    if not positions:
        raise bad_data(f"{where}: GeoJSON coordinates are missing or empty")
    for lon, lat in positions:
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise bad_data(f"{where}: coordinate [{lon}, {lat}] is outside [-180..180, -90..90] (order is [lon, lat])")


def _positions(coordinates: Any):
    """Every [lon, lat] in a GeoJSON coordinates array of any depth; raises on a malformed one."""
    if isinstance(coordinates, list) and coordinates and all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in coordinates):
        if len(coordinates) not in (2, 3) or not all(math.isfinite(c) for c in coordinates):
            raise bad_data(f"GeoJSON position must be [lon, lat], got {coordinates[:4]}")
        yield float(coordinates[0]), float(coordinates[1])
        return
    if not isinstance(coordinates, list):
        raise bad_data("GeoJSON coordinates must be arrays of numbers")
    for item in coordinates:
        yield from _positions(item)


def location_attributes(body: dict[str, Any]) -> list[str]:
    """Names of the attributes that hold location data, whatever they are called: a
    GeoProperty, or GeoJSON ``coordinates`` or a latitude/longitude pair nested anywhere inside."""
    return [name for name, attribute in body.items() if name not in ("id", "type", MUNICIPALITY) and _holds_location(attribute)]


def _holds_location(node: Any) -> bool:
    if isinstance(node, dict):
        keys = {str(k).lower() for k in node}
        if node.get("type") == "GeoProperty" or "coordinates" in keys or (keys & _LATITUDE_KEYS and keys & _LONGITUDE_KEYS):
            return True
        return any(_holds_location(v) for v in node.values())
    if isinstance(node, list):
        return any(_holds_location(v) for v in node)
    return False


def reference_point(body: dict[str, Any]) -> Point | None:
    """Where the entity is for georel: its Point, or the mean vertex of another geometry."""
    location = body.get("location")
    if not isinstance(location, dict) or location.get("type") != "GeoProperty":
        return None
    positions = list(_positions(location["value"]["coordinates"]))
    lon = sum(p[0] for p in positions) / len(positions)
    lat = sum(p[1] for p in positions) / len(positions)
    return Point(lat, lon)


# --- rows ------------------------------------------------------------------------------------


def get_row(conn: Connection, tenant: str, entity_id: str) -> Row | None:
    return conn.execute(select(entity).where(entity.c.tenant == tenant, entity.c.id == entity_id)).first()


def put_entity(conn: Connection, tenant: str, body: dict[str, Any], owner_sub: str | None, category: str | None, existing: Row | None,
               merge: bool = False, seq: int | None = None, tx: int | None = None) -> bool:
    """Store ``body`` (replacing, or merging attributes into, the live entity). True when created."""
    now = utc_now()
    live = existing is not None and not existing.deleted
    if merge and existing is not None and live:
        body = {**existing.body, **body}
    point = reference_point(body)
    values = {
        "type": body["type"], "owner_sub": owner_sub, "category": category, "body": body, "deleted": False,
        "modified_at": now, "seq": seq if seq is not None else next_seq(conn), "tx": tx if tx is not None else current_tx(conn),
        "lat": point.lat if point else None, "lon": point.lon if point else None,
    }
    if category is None:
        touch_public(conn, tenant)
    if existing is None:
        conn.execute(entity.insert().values(tenant=tenant, id=body["id"], created_at=now, **values))
    else:
        if not live:
            values["created_at"] = now
        conn.execute(update(entity).where(entity.c.tenant == tenant, entity.c.id == body["id"]).values(**values))
    return not live


def tombstone(conn: Connection, tenant: str, entity_id: str) -> None:
    """Delete the entity's data; keep id/type/owner so the change feed reports the deletion."""
    touch_public(conn, tenant)  # cheaper than asking whether it was public
    conn.execute(
        update(entity)
        .where(entity.c.tenant == tenant, entity.c.id == entity_id)
        .values(deleted=True, body=None, lat=None, lon=None, modified_at=utc_now(), seq=next_seq(conn), tx=current_tx(conn))
    )


def delete_personal_data(conn: Connection, owner_sub: str, category: str) -> int:
    """Tombstone every live entity of one resident in one category (all tenants)."""
    rows = conn.execute(
        select(entity.c.tenant, entity.c.id).where(and_(entity.c.owner_sub == owner_sub, entity.c.category == category, entity.c.deleted.is_(False)))
    ).all()
    for row in rows:
        tombstone(conn, row.tenant, row.id)
    return len(rows)


def strip_location(conn: Connection, owner_sub: str) -> int:
    """Remove every attribute holding location data from a resident's live entities (on revoke);
    the number of attributes removed."""
    rows = conn.execute(select(entity).where(entity.c.owner_sub == owner_sub, entity.c.deleted.is_(False))).all()
    stripped = 0
    for row in rows:
        names = location_attributes(row.body)
        if names:
            body = {k: v for k, v in row.body.items() if k not in names}
            put_entity(conn, row.tenant, body, row.owner_sub, row.category, row)
            stripped += len(names)
    return stripped


# --- output ----------------------------------------------------------------------------------


def with_system_attributes(row: Row) -> dict[str, Any]:
    """Body plus createdAt/modifiedAt: what `q` sees and `options=sysAttrs` returns."""
    return {**row.body, "createdAt": row.created_at, "modifiedAt": row.modified_at}


def render(row: Row, key_values: bool = False, sys_attrs: bool = False, attrs: set[str] | None = None) -> dict[str, Any]:
    body = with_system_attributes(row) if sys_attrs else dict(row.body)
    if attrs is not None:
        body = {k: v for k, v in body.items() if k in ("id", "type", "createdAt", "modifiedAt") or k in attrs}
    if key_values:
        return {k: (_simplified(v) if k not in ("id", "type") else v) for k, v in body.items()}
    return body


def _simplified(attribute: Any) -> Any:
    if not isinstance(attribute, dict):
        return attribute
    if attribute.get("type") == "Relationship":
        return attribute.get("object")
    if attribute.get("type") == "LanguageProperty":
        return attribute.get("languageMap")
    return attribute.get("value")


def distance_m(a: Point, b: Point) -> float:
    """Great-circle distance in metres (haversine; plenty for a town)."""
    r = 6_371_008.8
    phi1, phi2 = math.radians(a.lat), math.radians(b.lat)
    dphi, dlmb = phi2 - phi1, math.radians(b.lon - a.lon)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * r * math.asin(min(1.0, math.sqrt(h)))
