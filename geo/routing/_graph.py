"""The walking network in flat arrays, with a grid index for snapping points to streets."""
from __future__ import annotations

import itertools
import json
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import sqlite_utils

from geo.models import LatLon, RoadEdge
from geo.routing._geometry import Projection, segment_projection

MAX_SNAP_M = 500.0  # farther than this from any street: "outside the network"
SNAP_SLACK_M = 5.0  # streets this much farther than the closest one are also tried as a start
SAMPLE_M = 50.0  # hazard lookups along a street at most this far apart


@dataclass(frozen=True, slots=True)
class Attach:
    """Where a point joins the network: along directed edge ``edge`` up to its end node."""

    node: int
    edge: int
    fraction: float  # position of the projection along the edge (0 = start, 1 = end)
    gap_m: float  # straight line between the point and the street


class RoadGraph:
    """A directed walking network in flat arrays (indices 0..n-1), with a snapping index."""

    CELL_M = 50.0

    def __init__(
        self,
        lat: list[float],
        lon: list[float],
        edge_u: list[int],
        edge_v: list[int],
        length_m: list[float],
        elev_u: list[float | None] | None = None,
        elev_v: list[float | None] | None = None,
        geometry: list[list[tuple[float, float]]] | None = None,
        names: list[str] | None = None,
    ) -> None:
        """``geometry[e]`` is the edge's polyline as (lat, lon); default: a straight segment.
        ``names[e]`` is the street's name ("" when the data has none)."""
        n, m = len(lat), len(edge_u)
        self.lat, self.lon = lat, lon
        self.edge_u, self.edge_v, self.length_m = edge_u, edge_v, length_m
        self.names = names or [""] * m
        self.elev_u = elev_u or [None] * m
        self.elev_v = elev_v or [None] * m
        self._geometry = geometry
        self.out_edges = _csr(n, edge_u)
        self.in_edges = _csr(n, edge_v)
        self.proj = Projection(sum(lat) / n, sum(lon) / n) if n else Projection(0.0, 0.0)
        points = self.proj.xy_all(zip(lat, lon, strict=True))
        self.x: list[float] = [p[0] for p in points]
        self.y: list[float] = [p[1] for p in points]
        self._grid: dict[tuple[int, int], list[tuple[int, int]]] | None = None
        self._xy: list[list[tuple[float, float]]] | None = None
        self._ground: list[float] | None = None
        self._samples: tuple[list[int], list[list[tuple[float, float]]]] | None = None

    @property
    def node_count(self) -> int:
        return len(self.lat)

    @property
    def edge_count(self) -> int:
        return len(self.edge_u)

    @classmethod
    def from_edges(cls, edges: Iterable[RoadEdge]) -> RoadGraph:
        ids: dict[int, int] = {}
        lat: list[float] = []
        lon: list[float] = []
        cols: tuple[list, ...] = ([], [], [], [], [], [], [])
        for e in edges:
            for node, (x, y) in ((e.u, e.coords[0]), (e.v, e.coords[-1])):
                if node not in ids:
                    ids[node] = len(lat)
                    lat.append(y)
                    lon.append(x)
            for col, value in zip(cols, (ids[e.u], ids[e.v], e.length_m, e.elev_u, e.elev_v, [(y, x) for x, y in e.coords], e.name or ""),
                                  strict=True):
                col.append(value)
        return cls(lat, lon, *cols)

    @classmethod
    def from_store(cls, db: sqlite_utils.Database, region: str) -> RoadGraph | None:
        sql = "SELECT u, v, key, length_m, highway, name, elev_u, elev_v, coords FROM road_edge WHERE region = ? ORDER BY u, v, key"
        rows = db.execute(sql, [region]).fetchall()
        if not rows:
            return None
        coords = json.loads("[" + ",".join(row[8] for row in rows) + "]")  # one parse: 30k small ones cost 0.1 s
        return cls.from_edges(RoadEdge(u, v, k, ln, hw, nm, eu, ev, c) for (u, v, k, ln, hw, nm, eu, ev, _), c in zip(rows, coords, strict=True))

    def geometry(self, edge: int) -> list[tuple[float, float]]:
        if self._geometry is not None:
            return self._geometry[edge]
        u, v = self.edge_u[edge], self.edge_v[edge]
        return [(self.lat[u], self.lon[u]), (self.lat[v], self.lon[v])]

    def _xy_geometry(self, edge: int) -> list[tuple[float, float]]:
        if self._geometry is not None:
            if self._xy is None:  # every polyline at once: the grid and the street samples need them all
                self._xy = [self.proj.xy_all(pts) for pts in self._geometry]
            return self._xy[edge]
        u, v = self.edge_u[edge], self.edge_v[edge]
        return [(self.x[u], self.y[u]), (self.x[v], self.y[v])]

    def _build_grid(self) -> dict[tuple[int, int], list[tuple[int, int]]]:
        grid: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
        c = self.CELL_M
        floor = math.floor
        for edge in range(self.edge_count):
            pts = self._xy_geometry(edge)
            ax, ay = floor(pts[0][0] / c), floor(pts[0][1] / c)
            for i in range(len(pts) - 1):
                bx, by = floor(pts[i + 1][0] / c), floor(pts[i + 1][1] / c)
                if ax == bx and ay == by:  # most segments stay inside one cell
                    grid[(ax, ay)].append((edge, i))
                else:
                    for gx in range(min(ax, bx), max(ax, bx) + 1):
                        for gy in range(min(ay, by), max(ay, by) + 1):
                            grid[(gx, gy)].append((edge, i))
                ax, ay = bx, by
        return grid

    def attachments(self, point: LatLon, radius_m: float = MAX_SNAP_M, exhaustive: bool = False) -> list[Attach]:
        """Directed edges near ``point``, closest first, one entry per edge: at least every edge
        within SNAP_SLACK_M of the closest one, or (``exhaustive``) every edge within ``radius_m``."""
        if self._grid is None:
            self._grid = self._build_grid()
        px, py = self.proj.xy(point.lat, point.lon)
        best: dict[int, tuple[float, int, float]] = {}
        full = math.ceil(radius_m / self.CELL_M)
        for reach in (full,) if exhaustive else sorted({1, 3, full}):
            cx, cy = math.floor(px / self.CELL_M), math.floor(py / self.CELL_M)
            for gx in range(cx - reach, cx + reach + 1):
                for gy in range(cy - reach, cy + reach + 1):
                    for edge, i in self._grid.get((gx, gy), ()):
                        if edge in best and best[edge][1] == i:
                            continue
                        pts = self._xy_geometry(edge)
                        d, t = segment_projection(px, py, *pts[i], *pts[i + 1])
                        if d <= radius_m and (edge not in best or d < best[edge][0]):
                            best[edge] = (d, i, t)
            if best and min(v[0] for v in best.values()) + SNAP_SLACK_M <= reach * self.CELL_M:
                break  # the scanned cells hold every point this close to `point`
        if not best:
            return []
        limit = radius_m if exhaustive else min(v[0] for v in best.values()) + SNAP_SLACK_M
        out = [Attach(self.edge_v[e], e, self._fraction(e, i, t), d) for e, (d, i, t) in best.items() if d <= limit]
        return sorted(out, key=lambda a: a.gap_m)

    def _fraction(self, edge: int, segment: int, t: float) -> float:
        pts = self._xy_geometry(edge)
        lengths = [math.hypot(bx - ax, by - ay) for (ax, ay), (bx, by) in itertools.pairwise(pts)]
        total = sum(lengths)
        return 1.0 if total == 0 else (sum(lengths[:segment]) + t * lengths[segment]) / total

    def cut(self, edge: int, start: float, end: float) -> list[tuple[float, float]]:
        """The edge's polyline between two fractions of its length (0 = start node, 1 = end node)."""
        pts = self.geometry(edge)
        (i, first), (j, last) = self._points_at(edge, (start, end))
        return [first, *pts[i + 1 : j + 1], last]

    def _points_at(self, edge: int, fractions: Iterable[float]) -> list[tuple[int, tuple[float, float]]]:
        """(segment, (lat, lon)) at each fraction of the edge's length; one pass over its polyline."""
        pts = self.geometry(edge)
        seg = [math.hypot(bx - ax, by - ay) for (ax, ay), (bx, by) in itertools.pairwise(self._xy_geometry(edge))]
        total = sum(seg)
        marks = list(itertools.accumulate(seg, initial=0.0))
        out = []
        for fraction in fractions:
            target = fraction * total
            i = next((k for k in range(len(seg)) if marks[k + 1] >= target), len(seg) - 1)
            t = 0.0 if seg[i] == 0 else max(0.0, min(1.0, (target - marks[i]) / seg[i]))
            (a_lat, a_lon), (b_lat, b_lon) = pts[i], pts[i + 1]
            out.append((i, (a_lat + t * (b_lat - a_lat), a_lon + t * (b_lon - a_lon))))
        return out

    def edge_ground_m(self) -> list[float]:
        """Lower end's elevation per edge; an end without one borrows its node's elevation from
        another edge, and an edge with none at all counts as 0 m (unknown ground is low ground)."""
        if self._ground is None:
            node: list[float | None] = [None] * self.node_count
            for e in range(self.edge_count):
                if self.elev_u[e] is not None:
                    node[self.edge_u[e]] = self.elev_u[e]
                if self.elev_v[e] is not None:
                    node[self.edge_v[e]] = self.elev_v[e]
            ground = []
            for e in range(self.edge_count):
                a = self.elev_u[e] if self.elev_u[e] is not None else node[self.edge_u[e]]
                b = self.elev_v[e] if self.elev_v[e] is not None else node[self.edge_v[e]]
                known = [x for x in (a, b) if x is not None]
                ground.append(min(known) if known else 0.0)
            self._ground = ground
        return self._ground

    def edge_samples(self) -> tuple[list[int], list[list[tuple[float, float]]]]:
        """Points inside each street where hazard areas are looked up, at most SAMPLE_M apart
        (centres of equal pieces), so a small area across a long street is still seen.
        Returns (group per edge, groups); both directions of a street share one group."""
        if self._samples is None:
            slot: dict[tuple[int, int, float], int] = {}
            index: list[int] = []
            groups: list[list[tuple[float, float]]] = []
            for e in range(self.edge_count):
                u, v = self.edge_u[e], self.edge_v[e]
                key = (min(u, v), max(u, v), round(self.length_m[e], 1))
                if key not in slot:
                    pieces = max(1, round(self.length_m[e] / SAMPLE_M))
                    slot[key] = len(groups)
                    groups.append([p for _, p in self._points_at(e, ((k + 0.5) / pieces for k in range(pieces)))])
                index.append(slot[key])
            self._samples = (index, groups)
        return self._samples


def _csr(n: int, keys: list[int]) -> list[list[int]]:
    buckets: list[list[int]] = [[] for _ in range(n)]
    for edge, node in enumerate(keys):
        buckets[node].append(edge)
    return buckets
