"""NGSI-LD normalised entities (ETSI GS CIM 009 §4.5): building them and reading them back.

The client keeps entities as plain dicts, the wire form, so whatever a conformant broker
returns can be stored and forwarded unchanged.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

Entity = dict[str, Any]

# NGSI-LD core context; the broker resolves short attribute names with the Link header.
CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"

_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_LOCAL_ID = re.compile(r"^[^\s<>\"'=;()#?&/\\]+$")  # NGSI-LD forbidden characters, plus '/'

# Residents' time: every region is in Japan, and in web mode (or on a server) the machine's
# clock zone is not the resident's. Screens show times, and typed times are read, in it.
RESIDENT_TZ = ZoneInfo("Asia/Tokyo")


class EntityError(ValueError):
    """An entity (or part of one) that is not valid NGSI-LD; the message names the field."""


def entity_id(entity_type: str, local_id: str) -> str:
    """``urn:ngsi-ld:<Type>:<id>`` — the id scheme every Mamori entity uses."""
    if not _TYPE.match(entity_type):
        raise EntityError(f"entity type {entity_type!r} must be letters, digits or '_' starting with a letter")
    if not local_id or not _LOCAL_ID.match(local_id):
        raise EntityError(f"local id {local_id!r} for {entity_type} is empty or has characters NGSI-LD forbids")
    return f"urn:ngsi-ld:{entity_type}:{local_id}"


def iso_utc(moment: datetime) -> str:
    """NGSI-LD DateTime: UTC with a trailing Z."""
    if moment.tzinfo is None:
        raise EntityError(f"timestamp {moment!r} has no timezone")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc(moment: datetime | None = None) -> datetime:
    moment = moment or datetime.now(UTC)
    if moment.tzinfo is None:
        raise ValueError("timestamps must carry a timezone")
    return moment.astimezone(UTC)


def parse_time(text: str) -> datetime:
    """ISO 8601 with a zone (the platform's ...Z form included)."""
    return utc(datetime.fromisoformat(text))


def prop(value: Any, observed_at: datetime | None = None, unit_code: str | None = None) -> dict[str, Any]:
    attr: dict[str, Any] = {"type": "Property", "value": value}
    if observed_at is not None:
        attr["observedAt"] = iso_utc(observed_at)
    if unit_code is not None:
        attr["unitCode"] = unit_code
    return attr


def geo_point(lat: float, lon: float) -> dict[str, Any]:
    """GeoJSON Point as a GeoProperty; GeoJSON order is [longitude, latitude]."""
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise EntityError(f"location ({lat}, {lon}) is outside latitude/longitude range")
    return {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}}


def rel(target_id: str) -> dict[str, Any]:
    if not target_id.startswith("urn:"):
        raise EntityError(f"relationship target {target_id!r} is not a URN")
    return {"type": "Relationship", "object": target_id}


def make_entity(entity_type: str, local_id: str, municipality_code: str, **attrs: Any) -> Entity:
    """A normalised entity. Plain values become Properties; pass ``prop/geo_point/rel``
    results for anything richer. Every entity carries ``municipalityCode``."""
    if not re.fullmatch(r"\d{6}", municipality_code):
        raise EntityError(f"municipality code {municipality_code!r} must be the 6-digit 全国地方公共団体コード")
    entity: Entity = {"id": entity_id(entity_type, local_id), "type": entity_type,
                      "municipalityCode": prop(municipality_code)}
    for name, value in attrs.items():
        if value is None:
            continue
        is_attr = isinstance(value, Mapping) and value.get("type") in ("Property", "GeoProperty", "Relationship")
        entity[name] = dict(value) if is_attr else prop(value)
    return entity


def validate(entity: Mapping[str, Any]) -> None:
    """Reject what a broker would reject, before it is queued for days offline."""
    ident, etype = entity.get("id"), entity.get("type")
    if not isinstance(ident, str) or not ident.startswith("urn:"):
        raise EntityError(f"entity id {ident!r} is not a URN")
    if not isinstance(etype, str) or not _TYPE.match(etype):
        raise EntityError(f"entity {ident}: type {etype!r} is not a valid type name")
    for name, attr in entity.items():
        if name in ("id", "type", "@context"):
            continue
        if not isinstance(attr, Mapping) or "type" not in attr:
            raise EntityError(f"entity {ident}: attribute {name!r} is not normalised (needs a 'type')")
        key = "object" if attr["type"] == "Relationship" else "value"
        if key not in attr:
            raise EntityError(f"entity {ident}: attribute {name!r} has no {key!r}")


def simplified(entity: Mapping[str, Any]) -> dict[str, Any]:
    """keyValues view of a normalised entity: attribute name -> value / object."""
    out: dict[str, Any] = {"id": entity["id"], "type": entity["type"]}
    for name, attr in entity.items():
        if name in ("id", "type", "@context"):
            continue
        if isinstance(attr, Mapping):
            out[name] = attr.get("object", attr.get("value"))
        else:
            out[name] = attr
    return out
