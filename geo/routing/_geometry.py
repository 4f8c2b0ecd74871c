"""Plane geometry near a city: metric projection, distances, bearings, off-route test."""
from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence

from geo.models import LatLon

OFF_ROUTE_M = 30.0
_INF = math.inf


class Projection:
    """Local metric plane around a latitude (accurate to ~0.1 % across a city)."""

    def __init__(self, lat0: float, lon0: float) -> None:
        phi = math.radians(lat0)
        self.lat0, self.lon0 = lat0, lon0
        self.ky = 111_132.954 - 559.822 * math.cos(2 * phi) + 1.175 * math.cos(4 * phi)
        self.kx = 111_412.84 * math.cos(phi) - 93.5 * math.cos(3 * phi)

    def xy(self, lat: float, lon: float) -> tuple[float, float]:
        return (lon - self.lon0) * self.kx, (lat - self.lat0) * self.ky

    def xy_all(self, points: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
        """``xy`` of many (lat, lon) points: one call instead of one per point (the router's start-up)."""
        lat0, lon0, kx, ky = self.lat0, self.lon0, self.kx, self.ky
        return [((lon - lon0) * kx, (lat - lat0) * ky) for lat, lon in points]


def haversine_m(a: LatLon, b: LatLon) -> float:
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dp, dl = p2 - p1, math.radians(b.lon - a.lon)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(min(1.0, math.sqrt(h)))


def bearing_deg(a: LatLon, b: LatLon) -> float:
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dl = math.radians(b.lon - a.lon)
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return (math.degrees(math.atan2(y, x)) + 360.0) % 360.0


def segment_projection(px: float, py: float, ax: float, ay: float, bx: float, by: float) -> tuple[float, float]:
    """(distance from p to segment ab, fraction along ab of the closest point)."""
    dx, dy = bx - ax, by - ay
    span = dx * dx + dy * dy
    t = 0.0 if span == 0 else max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / span))
    return math.hypot(px - (ax + t * dx), py - (ay + t * dy)), t


def distance_to_route_m(point: LatLon, path: Sequence[tuple[float, float]]) -> float:
    """Shortest distance in metres from ``point`` to the polyline ``path`` of (lat, lon)."""
    if not path:
        return _INF
    proj = Projection(point.lat, point.lon)
    pts = [proj.xy(lat, lon) for lat, lon in path]
    if len(pts) == 1:
        return math.hypot(*pts[0])
    return min(segment_projection(0.0, 0.0, *a, *b)[0] for a, b in itertools.pairwise(pts))


def is_off_route(point: LatLon, path: Sequence[tuple[float, float]], threshold_m: float = OFF_ROUTE_M) -> bool:
    """True when the walker is farther than ``threshold_m`` from the route: time to recompute."""
    return distance_to_route_m(point, path) > threshold_m
