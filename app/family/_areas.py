"""Areas a city engineer recognises: the city's own district polygons (地区) when the region
folder supplies them (``districts.geojson``, see docs/hq.md), else each designated shelter's
catchment (指定避難所の区域), the part of the city nearer to it than to any other designated
shelter — a Voronoi cell, clipped to the shelters' extent. The HQ counts answers per area and
sends an alert to chosen areas as one MultiPolygon."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Ring = list[tuple[float, float]]  # (lon, lat), closed
Polygon = list[Ring]  # outer ring then holes
MARGIN = 0.02  # degrees (~2 km) beyond the outermost shelters


def catchments(sites: Sequence[tuple[str, float, float]]) -> dict[str, Ring]:
    """{name: outer ring (lon, lat)} of the catchment of each (name, lat, lon); same-place names merge last-wins."""
    from scipy.spatial import Voronoi  # here, not at import: a fifth of a second off every app start

    if len(sites) < 2:
        return {}
    lat0 = sum(s[1] for s in sites) / len(sites)
    kx = math.cos(math.radians(lat0))  # plane with metre-like axes, so "nearest" is right
    points = np.array([(lon * kx, lat) for _, lat, lon in sites])
    lo, hi = points.min(axis=0) - MARGIN, points.max(axis=0) + MARGIN
    span = float((hi - lo).max()) * 10
    far = np.array([(lo[0] - span, lo[1] - span), (lo[0] - span, hi[1] + span), (hi[0] + span, lo[1] - span), (hi[0] + span, hi[1] + span)])
    diagram = Voronoi(np.vstack([points, far]))  # the far points make every real cell finite
    box = [(lo[0], lo[1]), (hi[0], lo[1]), (hi[0], hi[1]), (lo[0], hi[1])]
    result = {}
    for i, (name, _, _) in enumerate(sites):
        region = diagram.regions[diagram.point_region[i]]
        if not region or -1 in region:
            continue
        cell = _clip([tuple(diagram.vertices[v]) for v in region], box)
        if len(cell) >= 3:
            ring = [(x / kx, y) for x, y in cell]
            result[name] = [*ring, ring[0]]
    return result


def _clip(polygon: list[tuple[float, float]], box: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Sutherland–Hodgman: a convex cell cut by the (counter-clockwise) box."""
    out = polygon
    for a, b in zip(box, [*box[1:], box[0]], strict=True):
        src, out = out, []
        for j, cur in enumerate(src):
            prev = src[j - 1]
            if _side(a, b, cur) >= 0:
                if _side(a, b, prev) < 0:
                    out.append(_cross(a, b, prev, cur))
                out.append(cur)
            elif _side(a, b, prev) >= 0:
                out.append(_cross(a, b, prev, cur))
        if not out:
            break
    return out


def _side(a: tuple[float, float], b: tuple[float, float], p: tuple[float, float]) -> float:
    """Positive left of the edge a->b (inside a counter-clockwise box)."""
    return (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])


def _cross(a: tuple[float, float], b: tuple[float, float], p: tuple[float, float], q: tuple[float, float]) -> tuple[float, float]:
    """Where p->q crosses the line through a->b."""
    d1, d2 = _side(a, b, p), _side(a, b, q)
    t = d1 / (d1 - d2)
    return p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])


@dataclass(frozen=True, slots=True)
class Areas:
    """The HQ's areas: name → polygons."""

    kind: Literal["district", "catchment"]
    polygons: dict[str, list[Polygon]]


def hq_areas(districts: Mapping[str, list[Polygon]], sites: Sequence[tuple[str, float, float]]) -> Areas:
    """The city's districts when it has supplied them, else the designated shelters' (name, lat, lon) catchments."""
    if districts:
        return Areas("district", dict(districts))
    return Areas("catchment", {name: [[ring]] for name, ring in catchments(sites).items()})


def area_polygon(areas: Areas, chosen: Sequence[str]) -> dict | None:
    """The GeoJSON MultiPolygon of the chosen areas (None when none is chosen)."""
    polygons = [polygon for name in chosen for polygon in areas.polygons.get(name, [])]
    if not polygons:
        return None
    return {"type": "MultiPolygon", "coordinates": [[[list(p) for p in ring] for ring in polygon] for polygon in polygons]}
