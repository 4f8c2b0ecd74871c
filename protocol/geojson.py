"""GeoJSON geometry as the wire carries it: rings of (lon, lat) positions, outer ring first."""
from __future__ import annotations

Ring = list[tuple[float, float]]


def point_in_polygon(lon: float, lat: float, rings: list[Ring]) -> bool:
    """Even-odd rule over the outer ring and its holes (GeoJSON (lon, lat) order)."""
    inside = False
    for ring in rings:
        x1, y1 = ring[-1]
        for x2, y2 in ring:
            if (y1 > lat) != (y2 > lat) and lon < x1 + (lat - y1) * (x2 - x1) / (y2 - y1):
                inside = not inside
            x1, y1 = x2, y2
    return inside
