"""The platform's ``Alert`` entity: what a city publishes and what every app must be able to read.

An alert names a hazard, a 警戒レベル (1–5, as in Japan's evacuation information) and its
target area: a GeoJSON Polygon/MultiPolygon (``location``), a list of 6-digit municipality
codes (``targetMunicipalities``), or both (either matches).
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from protocol.entities import iso_utc, make_entity, parse_time, prop, utc
from protocol.family._errors import InvalidAlert
from protocol.geojson import point_in_polygon

LEVELS = range(1, 6)
_HAZARD = re.compile(r"^[a-z][a-z_]{1,31}$")
_CODE = re.compile(r"^\d{6}$")
Rings = list[list[tuple[float, float]]]


@dataclass(frozen=True, slots=True)
class Place:
    """Where the resident is or lives; ``municipality_code`` when known (e.g. home's)."""

    lat: float
    lon: float
    municipality_code: str | None = None


@dataclass(frozen=True, slots=True)
class Alert:
    id: str
    hazard: str  # HazardType value, or another short id such as "heavy_rain"
    level: int  # 警戒レベル 1..5
    headline: str
    issued_at: datetime
    expires_at: datetime
    polygons: tuple[Rings, ...] = ()  # each: outer ring then holes, (lon, lat)
    municipalities: frozenset[str] = frozenset()
    is_test: bool = False

    def active(self, now: datetime) -> bool:
        return self.issued_at <= utc(now) < self.expires_at

    def covers(self, place: Place) -> bool:
        if place.municipality_code is not None and place.municipality_code in self.municipalities:
            return True
        return any(point_in_polygon(place.lon, place.lat, rings) for rings in self.polygons)

    @property
    def level_key(self) -> str:
        return f"family.alert.level.{self.level}"


def _value(entity: dict[str, Any], name: str) -> Any:
    attr = entity.get(name)
    return attr.get("value") if isinstance(attr, dict) else None


def _polygons(geometry: Any, where: str) -> tuple[Rings, ...]:
    if geometry is None:
        return ()
    kind = geometry.get("type") if isinstance(geometry, dict) else None
    coords = geometry.get("coordinates") if isinstance(geometry, dict) else None
    if kind == "Polygon":
        polys: Any = [coords]
    elif kind == "MultiPolygon":
        polys = coords
    else:
        raise InvalidAlert(f"{where}: location must be a Polygon or MultiPolygon, got {str(kind)[:20]}")
    result = []
    try:
        for poly in polys:
            rings = [[(float(p[0]), float(p[1])) for p in ring] for ring in poly]
            if not rings or any(len(r) < 4 for r in rings):
                raise InvalidAlert(f"{where}: every polygon ring needs at least 4 positions")
            result.append(rings)
    except (TypeError, IndexError, ValueError):
        raise InvalidAlert(f"{where}: polygon coordinates are malformed") from None
    return tuple(result)


def alert_from_entity(entity: dict[str, Any]) -> Alert:
    """Strict reading of one Alert entity; ``InvalidAlert`` names what is wrong."""
    where = f"alert {str(entity.get('id'))[:80]}"
    hazard, level = _value(entity, "hazard"), _value(entity, "level")
    if not isinstance(hazard, str) or not _HAZARD.match(hazard):
        raise InvalidAlert(f"{where}: hazard must be a short id such as 'flood'")
    if not isinstance(level, int) or isinstance(level, bool) or level not in LEVELS:
        raise InvalidAlert(f"{where}: level must be 1..5 (警戒レベル)")
    codes = _value(entity, "targetMunicipalities") or []
    if not isinstance(codes, list) or not all(isinstance(c, str) and _CODE.match(c) for c in codes):
        raise InvalidAlert(f"{where}: targetMunicipalities must be 6-digit codes")
    polygons = _polygons(_value(entity, "location"), where)
    if not polygons and not codes:
        raise InvalidAlert(f"{where}: no target area (location polygon or targetMunicipalities)")
    try:
        issued, expires = parse_time(_value(entity, "issuedAt")), parse_time(_value(entity, "expiresAt"))
    except (TypeError, ValueError, AttributeError):
        raise InvalidAlert(f"{where}: issuedAt/expiresAt must be ISO 8601 times with a zone") from None
    if expires <= issued:
        raise InvalidAlert(f"{where}: expiresAt is not after issuedAt")
    headline = _value(entity, "headline")
    return Alert(entity["id"], hazard, level, headline[:200] if isinstance(headline, str) else "", issued, expires,
                 polygons, frozenset(codes), _value(entity, "isTest") is True)


def alert_entity(local_id: str, municipality_code: str, *, hazard: str, level: int, headline: str,
                 issued_at: datetime, expires_at: datetime, polygon: dict[str, Any] | None = None,
                 municipalities: Sequence[str] = (), is_test: bool = False) -> dict[str, Any]:
    """The platform entity for an alert (what the city publishes; the inverse of ``alert_from_entity``)."""
    attrs: dict[str, Any] = {
        "hazard": hazard, "level": level, "headline": headline, "issuedAt": iso_utc(issued_at),
        "expiresAt": iso_utc(expires_at), "isTest": is_test,
    }
    if municipalities:
        attrs["targetMunicipalities"] = prop(list(municipalities))
    if polygon is not None:
        attrs["location"] = {"type": "GeoProperty", "value": polygon}
    entity = make_entity("Alert", local_id, municipality_code, **attrs)
    alert_from_entity(entity)  # refuse to publish what no app could read
    return entity
