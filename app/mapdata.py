"""Map-ready geometry: the road network as a few thousand merged polylines.

The data stores every street twice (both directions) and splits it at every junction;
drawing 30k directed edges takes a browser ~10 s. Here each street is kept once and
consecutive edges are chained into long strokes, and the map draws major roads everywhere
plus every road near the point it focuses on.
"""
from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass

import sqlite_utils

from geo.models import LatLon

MAJOR_HIGHWAYS = frozenset(
    {"trunk", "primary", "secondary", "tertiary", "trunk_link", "primary_link", "secondary_link", "tertiary_link"}
)


@dataclass(frozen=True, slots=True)
class Stroke:
    points: tuple[tuple[float, float], ...]  # (lat, lon)
    major: bool
    bbox: tuple[float, float, float, float]  # min_lat, min_lon, max_lat, max_lon


@dataclass(frozen=True, slots=True)
class RoadStrokes:
    strokes: tuple[Stroke, ...]

    def centre(self) -> LatLon | None:
        if not self.strokes:
            return None
        lats = [v for s in self.strokes for v in (s.bbox[0], s.bbox[2])]
        lons = [v for s in self.strokes for v in (s.bbox[1], s.bbox[3])]
        return LatLon((min(lats) + max(lats)) / 2, (min(lons) + max(lons)) / 2)

    def major(self) -> list[Stroke]:
        return [s for s in self.strokes if s.major]

    def minor_near(self, centre: LatLon, radius_m: float) -> list[Stroke]:
        dlat = radius_m / 111_320.0
        dlon = dlat / max(math.cos(math.radians(centre.lat)), 0.01)
        lo_lat, hi_lat, lo_lon, hi_lon = centre.lat - dlat, centre.lat + dlat, centre.lon - dlon, centre.lon + dlon
        return [
            s
            for s in self.strokes
            if not s.major and s.bbox[0] <= hi_lat and s.bbox[2] >= lo_lat and s.bbox[1] <= hi_lon and s.bbox[3] >= lo_lon
        ]


def load_road_strokes(db: sqlite_utils.Database, region: str) -> RoadStrokes:
    edges: dict[tuple[int, int, int], tuple[int, int, list, bool]] = {}
    for u, v, key, highway, coords in db.execute("SELECT u, v, key, highway, coords FROM road_edge WHERE region = ?", [region]):
        undirected = (min(u, v), max(u, v), key)
        if undirected not in edges:
            edges[undirected] = (u, v, json.loads(coords), highway in MAJOR_HIGHWAYS)
    strokes = []
    for major in (True, False):
        strokes += _chain([e for e in edges.values() if e[3] == major], major)
    return RoadStrokes(tuple(strokes))


def _chain(edges: list[tuple[int, int, list, bool]], major: bool) -> list[Stroke]:
    """Greedy path cover: walk from each dead end or junction through unused edges."""
    at_node: dict[int, list[int]] = defaultdict(list)
    for i, (u, v, _, _) in enumerate(edges):
        at_node[u].append(i)
        at_node[v].append(i)
    used = [False] * len(edges)
    # Start at odd-degree nodes: an Euler-style cover then needs the fewest strokes.
    starts = sorted(at_node, key=lambda node: len(at_node[node]) % 2 == 0)
    strokes: list[Stroke] = []
    for start in starts:
        for first in at_node[start]:
            if used[first]:
                continue
            node, line = start, list[tuple[float, float]]()
            index: int | None = first
            while index is not None:
                used[index] = True
                u, v, coords, _ = edges[index]
                part = coords if u == node else coords[::-1]
                line.extend(part if not line else part[1:])
                node = v if u == node else u
                index = next((i for i in at_node[node] if not used[i]), None)
            points = tuple((lat, lon) for lon, lat in line)
            lats, lons = [p[0] for p in points], [p[1] for p in points]
            strokes.append(Stroke(points, major, (min(lats), min(lons), max(lats), max(lons))))
    return strokes
