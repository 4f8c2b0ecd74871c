"""The router: per-hazard preparation (weights + multi-source Dijkstra) and the queries."""
from __future__ import annotations

import contextlib
import gc
import heapq
import math
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

import sqlite_utils

from geo.hazard_import import SEDIMENT_ZONE
from geo.hazards import HazardLayers, LevelIndex
from geo.models import LatLon, Shelter
from geo.routing._geometry import bearing_deg, haversine_m
from geo.routing._graph import SNAP_SLACK_M, Attach, RoadGraph
from geo.routing._result import Alternative, RouteResult, RouteStatus, Street
from protocol.hazards import HazardType, ShelterKind

DEFAULT_WALKING_SPEED_MPS = 1.0  # 内閣府 tsunami evacuation planning assumes about 1.0 m/s
OUTSIDE_REGION_M = 20_000.0  # straight-line answers farther than this say "outside the region"
HIGH_GROUND_REF_M = 10.0  # tsunami / storm surge: ground below this costs up to HIGH_GROUND_WEIGHT more
HIGH_GROUND_WEIGHT = 0.5
ALTERNATIVES = 3
ALTERNATIVE_SEARCH_NODES = 200_000  # bound on the alternatives search in huge graphs
_WATER_HAZARDS = (HazardType.TSUNAMI, HazardType.STORM_SURGE)
_INF = math.inf


class _Start(NamedTuple):
    """From the walker's point, straight to a street, then along ``edge`` to its end ``node``."""

    node: int
    cost: float
    length: float
    edge: int
    fraction: float  # where on the edge the walker joins it
    gap: float  # straight metres from the point to the street


class _Arrival(NamedTuple):
    """From ``node`` along ``edge`` up to ``fraction`` of it, then straight to the shelter."""

    node: int
    cost: float
    length: float
    edge: int
    fraction: float


@dataclass(slots=True)
class _Target:
    shelter: Shelter
    attach: list[_Arrival]


@dataclass(slots=True)
class _Prepared:
    hazard: HazardType
    weight: list[float]
    blocked: list[bool]
    targets: list[_Target]
    status: RouteStatus  # OK, ALL_SHELTERS_IN_HAZARD or NO_SUITABLE_SHELTER
    dist: list[float]
    next_edge: list[int]  # -1: the node is a target attachment
    at_node: dict[int, list[tuple[int, float, float]]]  # node -> [(target index, cost, length)]
    on_edge: dict[int, list[tuple[int, _Arrival]]]  # edge -> [(target index, arrival)]
    candidates: list[Shelter] = field(default_factory=list)  # for straight lines, also those far from any street
    prep_ms: float = 0.0


def _block_level(hazard: HazardType, scheme: str) -> int | None:
    """Lowest level whose edges are treated as impassable (None: only penalised)."""
    if scheme == SEDIMENT_ZONE:
        return 2  # 特別警戒区域
    if hazard is HazardType.TSUNAMI:
        return None  # the wave has not arrived yet: cross low ground quickly rather than detour
    return 2  # water 0.5 m deep or more


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Python's cycle collector off while the network's million small lists and tuples are built:
    it otherwise walks them again and again, a third of the build's time. None of them is garbage,
    so they are then moved out of its reach (``gc.freeze``): each later full collection would
    otherwise walk them too, an 80 ms pause of the event loop that serves taps."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


class EvacuationRouter:
    """Routes from a point to shelters suitable for a hazard in one region."""

    def __init__(self, graph: RoadGraph | None, shelters: list[Shelter], layers: HazardLayers | None = None) -> None:
        self.graph = graph
        self.shelters = shelters
        self.layers = layers
        self._by_id = {s.id: s for s in shelters if s.kind is ShelterKind.EMERGENCY_SITE}
        self._by_id.update({s.id: s for s in shelters if s.id not in self._by_id})
        self._prepared: dict[HazardType, _Prepared] = {}
        self._shelter_attach: dict[str, list[Attach]] = {}

    @classmethod
    def for_region(cls, db: sqlite_utils.Database, region: str) -> EvacuationRouter:
        """Load the region and build every hazard-independent index (snapping grid, shelter
        attachments, street sample points and ground heights) so that ``prepare`` does only per-hazard work."""
        with _gc_paused():
            router = cls(RoadGraph.from_store(db, region), _shelters_from_store(db, region), HazardLayers.for_region(db, region))
        router.warm_up()  # pauses the collector itself
        return router

    def warm_up(self) -> None:
        """Build the hazard-independent indexes now rather than inside the first ``prepare``."""
        if self.graph is None:
            return
        with _gc_paused():
            self.graph.edge_ground_m()
            if self.layers is not None and self.layers.layers():
                self.graph.edge_samples()
            for shelter in self.shelters:
                self._target_attach(shelter, self.graph.length_m)

    @property
    def has_network(self) -> bool:
        return self.graph is not None and self.graph.edge_count > 0

    @property
    def _net(self) -> RoadGraph:
        """The graph, for code that runs only when ``has_network``."""
        if self.graph is None:
            raise RuntimeError("no road network in this region")
        return self.graph

    # -- preparation --

    def prepare(self, hazard: HazardType) -> float:
        """Weight the network for ``hazard`` and compute every node's way to the nearest
        suitable shelter; cached per hazard. Returns the time it took in ms."""
        if hazard in self._prepared:
            return self._prepared[hazard].prep_ms
        started = time.perf_counter()
        prepared = self._prepare(hazard)
        prepared.prep_ms = (time.perf_counter() - started) * 1000
        self._prepared[hazard] = prepared
        return prepared.prep_ms

    def _hazard_index(self, hazard: HazardType) -> tuple[LevelIndex | None, int | None]:
        if self.layers is None:
            return None, None
        active = self.layers.active_layers(hazard)
        if not active:
            return None, None
        return self.layers.level_index(hazard, active), _block_level(hazard, active[0].level_scheme)

    def _prepare(self, hazard: HazardType) -> _Prepared:
        graph = self.graph
        index, block = self._hazard_index(hazard)
        weight, blocked = self._weights(hazard, index, block)
        suitable = [s for s in self.shelters if s.kind is ShelterKind.EMERGENCY_SITE and s.suits(hazard)]
        status = RouteStatus.OK
        if not suitable:
            status = RouteStatus.NO_SUITABLE_SHELTER
            suitable = [s for s in self.shelters if s.kind is ShelterKind.EMERGENCY_SITE] or list(self.shelters)
        if index is not None and block is not None:
            outside = [s for s in suitable if index.level_at(s.lat, s.lon) < block]
            if outside:
                suitable = outside
            elif suitable and status is RouteStatus.OK:
                status = RouteStatus.ALL_SHELTERS_IN_HAZARD
        targets = [_Target(s, self._target_attach(s, weight)) for s in suitable]
        targets = [t for t in targets if t.attach] if graph else targets
        n = graph.node_count if graph else 0
        dist, next_edge = [_INF] * n, [-1] * n
        at_node: dict[int, list[tuple[int, float, float]]] = defaultdict(list)
        on_edge: dict[int, list[tuple[int, _Arrival]]] = defaultdict(list)
        heap: list[tuple[float, int]] = []
        for ti, target in enumerate(targets):
            for arrival in target.attach:
                node, cost = arrival.node, arrival.cost
                at_node[node].append((ti, cost, arrival.length))
                on_edge[arrival.edge].append((ti, arrival))
                if cost < dist[node]:
                    dist[node] = cost
                    heap.append((cost, node))
        heapq.heapify(heap)
        if graph:
            _dijkstra_to_targets(heap, graph.in_edges, graph.edge_u, weight, dist, next_edge)
        return _Prepared(
            hazard, weight, blocked, targets, status, dist, next_edge, dict(at_node), dict(on_edge), suitable
        )

    def _weights(self, hazard: HazardType, index: LevelIndex | None, block: int | None) -> tuple[list[float], list[bool]]:
        graph = self.graph
        if graph is None:
            return [], []
        m = graph.edge_count
        factor = [1.0] * m
        level = [0] * m
        if index is not None and not index.empty:
            level_at = index.level_at
            node_level = [level_at(a, b) for a, b in zip(graph.lat, graph.lon, strict=True)]
            group_of, groups = graph.edge_samples()
            group_level = [max(level_at(a, b) for a, b in points) for points in groups]
            eu, ev = graph.edge_u, graph.edge_v
            level = [max(node_level[eu[e]], node_level[ev[e]], group_level[group_of[e]]) for e in range(m)]
            factor = [1.0 + lv for lv in level]
        if hazard in _WATER_HAZARDS:
            ref, extra = HIGH_GROUND_REF_M, HIGH_GROUND_WEIGHT
            factor = [f * (1.0 + extra * max(0.0, min(1.0, (ref - gm) / ref))) for f, gm in zip(factor, graph.edge_ground_m(), strict=True)]
        blocked = [block is not None and lv >= block for lv in level]
        weight = [ln * f for ln, f in zip(graph.length_m, factor, strict=True)]
        if any(blocked):
            # Costlier than any simple clean path, so a blocked edge is used only when no clean way exists,
            # and among such routes the one with the fewest blocked metres wins.
            big = sum(w for w, b in zip(weight, blocked, strict=True) if not b) + 1.0
            weight = [big * max(ln, 1.0) if b else w for w, b, ln in zip(weight, blocked, graph.length_m, strict=True)]
        return weight, blocked

    def _target_attach(self, shelter: Shelter, weight: list[float]) -> list[_Arrival]:
        """Ways from network nodes to the shelter: along the nearest street(s), then straight."""
        if self.graph is None:
            return []
        if shelter.id not in self._shelter_attach:
            self._shelter_attach[shelter.id] = self.graph.attachments(LatLon(shelter.lat, shelter.lon))
        out = []
        for a in self._shelter_attach[shelter.id]:
            # The walker arrives from the edge's start node and walks `fraction` of it.
            e = a.edge
            start = self.graph.edge_u[e]
            length = a.fraction * self.graph.length_m[e]
            cost = a.fraction * weight[e] + a.gap_m
            out.append(_Arrival(start, cost, length + a.gap_m, e, a.fraction))
        return out

    # -- queries --

    def nearest(
        self, point: LatLon, hazard: HazardType, walking_speed_mps: float = DEFAULT_WALKING_SPEED_MPS, alternatives: int = ALTERNATIVES
    ) -> RouteResult:
        """Route to the nearest shelter suitable for ``hazard``, with up to ``alternatives`` others
        (0 skips their search: cheapest for re-routing while walking)."""
        _check_speed(walking_speed_mps)
        self.prepare(hazard)
        prep = self._prepared[hazard]
        if not prep.targets:
            return self._straight(point, prep, RouteStatus.NO_REACHABLE_SHELTER, walking_speed_mps)
        if not self.has_network:
            return self._straight(point, prep, RouteStatus.NO_ROAD_NETWORK, walking_speed_mps)
        starts = self._starts(point, prep)
        if starts is None:
            return self._straight(point, prep, RouteStatus.OUTSIDE_NETWORK, walking_speed_mps)
        best = min(starts, key=lambda s: s.cost + prep.dist[s.node])
        direct = self._direct(starts, prep)
        if direct is not None and direct[0] <= best.cost + prep.dist[best.node]:
            result = self._assemble_direct(point, prep, *direct[1:], walking_speed_mps)
        elif best.cost + prep.dist[best.node] == _INF:
            return self._straight(point, prep, RouteStatus.NO_REACHABLE_SHELTER, walking_speed_mps)
        else:
            result = self._walk(point, prep, best, walking_speed_mps)
        if alternatives > 0:
            result.alternatives = self._alternatives(starts, prep, result.shelter, walking_speed_mps, alternatives)
        return result

    def to_shelter(
        self, point: LatLon, hazard: HazardType, shelter_id: str, walking_speed_mps: float = DEFAULT_WALKING_SPEED_MPS
    ) -> RouteResult:
        """Route to one chosen shelter on the network weighted for ``hazard``."""
        _check_speed(walking_speed_mps)
        shelter = self._by_id.get(shelter_id)
        if shelter is None:
            return RouteResult(RouteStatus.UNKNOWN_SHELTER, hazard)
        self.prepare(hazard)
        prep = self._prepared[hazard]
        target = _Target(shelter, self._target_attach(shelter, prep.weight))
        on_edge = {a.edge: [(0, a)] for a in target.attach}
        chosen = _Prepared(hazard, prep.weight, prep.blocked, [target], RouteStatus.OK, [], [], {}, on_edge, [shelter])
        if not self.has_network:
            result = self._straight(point, chosen, RouteStatus.NO_ROAD_NETWORK, walking_speed_mps)
        else:
            starts = self._starts(point, prep)
            found = self._astar_to(starts, chosen) if starts and target.attach else None
            direct = self._direct(starts or [], chosen)
            if direct is not None and (found is None or direct[0] <= found[3]):
                result = self._assemble_direct(point, chosen, *direct[1:], walking_speed_mps)
            elif found is None:
                status = RouteStatus.OUTSIDE_NETWORK if starts is None else RouteStatus.NO_REACHABLE_SHELTER
                result = self._straight(point, chosen, status, walking_speed_mps)
            else:
                result = self._assemble(point, chosen, *found[:3], walking_speed_mps)
        result.suitable = shelter.suits(hazard)
        return result

    def _starts(self, point: LatLon, prep: _Prepared) -> list[_Start] | None:
        """The streets the walker may start along (None: no street within MAX_SNAP_M).
        If the closest streets reach no shelter (a cut-off fragment), farther ones are tried."""
        found = self._net.attachments(point)
        if not found:
            return None
        near = [a for a in found if a.gap_m <= found[0].gap_m + SNAP_SLACK_M]
        if not any(prep.dist[a.node] < _INF for a in near):
            reachable = [a for a in self._net.attachments(point, exhaustive=True) if prep.dist[a.node] < _INF]
            if reachable:
                near = [a for a in reachable if a.gap_m <= reachable[0].gap_m + SNAP_SLACK_M]
        g = self._net
        rest = [(a, 1 - a.fraction) for a in near]
        return [_Start(a.node, a.gap_m + r * prep.weight[a.edge], a.gap_m + r * g.length_m[a.edge], a.edge, a.fraction, a.gap_m) for a, r in rest]

    def _direct(self, starts: list[_Start], prep: _Prepared) -> tuple[float, _Start, int, _Arrival] | None:
        """The cheapest shelter reached along the very street the walker starts on (no node between):
        (cost, start, target index, arrival)."""
        best = None
        for start in starts:
            for ti, arrival in prep.on_edge.get(start.edge, ()):
                if arrival.fraction >= start.fraction:
                    cost = start.gap + arrival.cost - start.fraction * prep.weight[start.edge]
                    if best is None or cost < best[0]:
                        best = (cost, start, ti, arrival)
        return best

    def _assemble_direct(self, point: LatLon, prep: _Prepared, start: _Start, ti: int, arrival: _Arrival, speed: float) -> RouteResult:
        g, edge, fraction = self._net, start.edge, start.fraction
        shelter = prep.targets[ti].shelter
        path = [(point.lat, point.lon), *g.cut(edge, fraction, arrival.fraction), (shelter.lat, shelter.lon)]
        distance = start.gap + arrival.length - fraction * g.length_m[edge]
        exposure = (arrival.fraction - fraction) * g.length_m[edge] * prep.blocked[edge]
        cost = start.gap + arrival.cost - fraction * prep.weight[edge]
        streets = _streets(g, [(edge, (arrival.fraction - fraction) * g.length_m[edge])])
        return _routed(point, prep, shelter, path, distance, exposure, start.gap, cost, speed, streets)

    def _walk(self, point: LatLon, prep: _Prepared, start: _Start, speed: float) -> RouteResult:
        """Follow the prepared next-edge pointers from the start node to a target."""
        node = start.node
        edges = []
        while prep.next_edge[node] != -1:
            edge = prep.next_edge[node]
            edges.append(edge)
            node = self._net.edge_v[edge]
        ti = min(prep.at_node[node], key=lambda a: a[1])[0]  # the pointer walk ends where a shelter attaches
        return self._assemble(point, prep, start, edges, ti, speed)

    def _assemble(self, point: LatLon, prep: _Prepared, start: _Start, edges: list[int], ti: int, speed: float) -> RouteResult:
        g = self._net
        target = prep.targets[ti]
        end_node = g.edge_v[edges[-1]] if edges else start.node
        end = min((a for a in target.attach if a.node == end_node), key=lambda a: a.cost)
        path = [(point.lat, point.lon), *g.cut(start.edge, start.fraction, 1.0)]
        for e in edges:
            path.extend(g.geometry(e)[1:])
        path.extend(g.cut(end.edge, 0.0, end.fraction)[1:])
        shelter = target.shelter
        path.append((shelter.lat, shelter.lon))
        distance = start.length + sum(g.length_m[e] for e in edges) + end.length
        exposure = sum(g.length_m[e] for e in edges if prep.blocked[e])
        exposure += (1 - start.fraction) * g.length_m[start.edge] * prep.blocked[start.edge]
        exposure += end.fraction * g.length_m[end.edge] * prep.blocked[end.edge]
        cost = start.cost + sum(prep.weight[e] for e in edges) + end.cost
        pieces = [(start.edge, (1 - start.fraction) * g.length_m[start.edge]), *((e, g.length_m[e]) for e in edges),
                  (end.edge, end.fraction * g.length_m[end.edge])]
        return _routed(point, prep, shelter, path, distance, exposure, start.gap, cost, speed, _streets(g, pieces))

    def _straight(self, point: LatLon, prep: _Prepared, status: RouteStatus, speed: float) -> RouteResult:
        ranked = sorted((haversine_m(point, LatLon(s.lat, s.lon)), i, s) for i, s in enumerate(prep.candidates))
        if not ranked:
            return RouteResult(RouteStatus.NO_SHELTER, prep.hazard)
        (d, _, first), others = ranked[0], ranked[1 : 1 + ALTERNATIVES]
        if d > OUTSIDE_REGION_M:
            status = RouteStatus.OUTSIDE_REGION
        return RouteResult(
            status,
            prep.hazard,
            first,
            [(point.lat, point.lon), (first.lat, first.lon)],
            d,
            d / speed,
            straight_line=True,
            bearing_deg=bearing_deg(point, LatLon(first.lat, first.lon)),
            alternatives=[Alternative(s, dt, dt / speed, straight_line=True) for dt, _, s in others],
            suitable=first.suits(prep.hazard),
        )

    def _alternatives(self, starts: list[_Start], prep: _Prepared, primary: Shelter | None, speed: float, wanted: int) -> list[Alternative]:
        """The next-cheapest other shelters, by A* from the origin with the prepared cost-to-nearest
        as heuristic: consistent and tight, so the search stays near the routes it reports."""
        g, dist, weight, length_m = self._net, prep.dist, prep.weight, self._net.length_m
        out_edges, edge_v, at_node = g.out_edges, g.edge_v, prep.at_node
        pop, push = heapq.heappop, heapq.heappush
        cost: dict[int, float] = {}
        length: dict[int, float] = {}
        heap: list[tuple[float, float, int, int]] = []  # (f, g, node, target index or -1 for the node itself)
        for node, c, ln, *_ in starts:
            if c < cost.get(node, _INF) and dist[node] < _INF:
                cost[node], length[node] = c, ln
                heap.append((c + dist[node], c, node, -1))
        heapq.heapify(heap)
        found: list[Alternative] = []
        seen = {primary.id} if primary else set()
        settled: set[int] = set()
        while heap and len(found) < wanted and len(settled) < ALTERNATIVE_SEARCH_NODES:
            _, c, node, ti = pop(heap)
            if ti >= 0:
                shelter = prep.targets[ti].shelter
                if shelter.id not in seen:
                    seen.add(shelter.id)
                    metres = length[node] + _attach_len(prep, node, ti)
                    found.append(Alternative(shelter, metres, metres / speed))
                continue
            if node in settled:
                continue
            settled.add(node)
            for t_index, t_cost, _ in at_node.get(node, ()):
                push(heap, (c + t_cost, c + t_cost, node, t_index))
            here = length[node]
            for e in out_edges[node]:
                y = edge_v[e]
                nc = c + weight[e]
                if nc < cost.get(y, _INF):
                    h = dist[y]
                    if h < _INF:
                        cost[y] = nc
                        length[y] = here + length_m[e]
                        push(heap, (nc + h, nc, y, -1))
        return found

    def _astar_to(self, starts: list[_Start], chosen: _Prepared) -> tuple[_Start, list[int], int, float] | None:
        """A* to one shelter: (start, edges, target index 0, cost). Heuristic: 0.99 × the straight
        distance to its nearest arrival node (streets are never shorter than the straight line)."""
        g, weight = self._net, chosen.weight
        ends: dict[int, float] = {}
        for node, c, *_ in chosen.targets[0].attach:
            ends[node] = min(c, ends.get(node, _INF))
        goal_xy = [(g.x[n], g.y[n]) for n in ends]

        def h(n: int) -> float:
            return 0.99 * min(math.hypot(g.x[n] - x, g.y[n] - y) for x, y in goal_xy)

        cost: dict[int, float] = {}
        parent: dict[int, tuple[int, int]] = {}  # node -> (edge, previous node) or (-1, start index)
        heap: list[tuple[float, float, int, int]] = []
        for i, (node, c, *_rest) in enumerate(starts):
            if c < cost.get(node, _INF):
                cost[node], parent[node] = c, (-1, i)
                heap.append((c + h(node), c, node, 0))
        heapq.heapify(heap)
        done: set[int] = set()
        while heap:
            _, c, node, terminal = heapq.heappop(heap)
            if terminal:
                edges, n = [], node
                while parent[n][0] != -1:
                    edges.append(parent[n][0])
                    n = parent[n][1]
                return starts[parent[n][1]], edges[::-1], 0, c
            if node in done:
                continue
            done.add(node)
            if node in ends:
                heapq.heappush(heap, (c + ends[node], c + ends[node], node, 1))
            for e in g.out_edges[node]:
                y = g.edge_v[e]
                nc = c + weight[e]
                if nc < cost.get(y, _INF):
                    cost[y], parent[y] = nc, (e, node)
                    heapq.heappush(heap, (nc + h(y), nc, y, 0))
        return None


def _streets(g: RoadGraph, pieces: list[tuple[int, float]]) -> list[Street]:
    """The named streets along (edge, metres walked on it) pieces, in order: a street interrupted
    only by unnamed pieces counts once; each labelled at the middle of its longest edge."""
    out: list[tuple[str, float, int, float]] = []  # name, metres, longest edge, its metres
    for edge, metres in pieces:
        name = g.names[edge]
        if not name or metres <= 0:
            continue
        if out and out[-1][0] == name:
            _, total, longest, most = out[-1]
            out[-1] = (name, total + metres, *((edge, metres) if metres > most else (longest, most)))
        else:
            out.append((name, metres, edge, metres))
    return [Street(name, total, _middle(g.geometry(longest))) for name, total, longest, _ in out]


def _middle(points: list[tuple[float, float]]) -> tuple[float, float]:
    if len(points) > 2:
        return points[len(points) // 2]
    (a_lat, a_lon), (b_lat, b_lon) = points[0], points[-1]
    return (a_lat + b_lat) / 2, (a_lon + b_lon) / 2


def _routed(
    point: LatLon, prep: _Prepared, shelter: Shelter, path: list, distance: float, exposure: float, gap: float, cost: float,
    speed: float, streets: list[Street],
) -> RouteResult:
    status = RouteStatus.ROUTE_THROUGH_HAZARD if prep.status is RouteStatus.OK and exposure > 0 else prep.status
    return RouteResult(
        status,
        prep.hazard,
        shelter,
        path,
        distance,
        distance / speed,
        bearing_deg=bearing_deg(point, LatLon(shelter.lat, shelter.lon)),
        hazard_exposure_m=exposure,
        access_m=gap,
        suitable=shelter.suits(prep.hazard),
        cost=cost,
        streets=streets,
    )


def _attach_len(prep: _Prepared, node: int, ti: int) -> float:
    return min(length for t, _, length in prep.at_node[node] if t == ti)


def _dijkstra_to_targets(
    heap: list[tuple[float, int]],
    in_edges: list[list[int]],
    edge_u: list[int],
    weight: list[float],
    dist: list[float],
    next_edge: list[int],
) -> None:
    """Multi-source Dijkstra over reversed edges: afterwards ``next_edge[x]`` leads from x
    towards its nearest target. Kept as one tight loop; it is the preparation's hot path."""
    pop, push = heapq.heappop, heapq.heappush
    done = bytearray(len(dist))
    while heap:
        d, y = pop(heap)
        if done[y]:
            continue
        done[y] = 1
        for e in in_edges[y]:
            x = edge_u[e]
            nd = d + weight[e]
            if nd < dist[x]:
                dist[x] = nd
                next_edge[x] = e
                push(heap, (nd, x))


def _check_speed(speed: float) -> None:
    if not (speed > 0 and math.isfinite(speed)):
        raise ValueError(f"walking_speed_mps must be a positive number, got {speed!r}")


def _shelters_from_store(db: sqlite_utils.Database, region: str) -> list[Shelter]:
    shelters = []
    for row in db["shelter"].rows_where("region = ?", [region], order_by="kind, id"):
        hazards = frozenset(h for h in HazardType if row[h.value] == 1)
        shelters.append(
            Shelter(
                id=row["id"],
                kind=ShelterKind(row["kind"]),
                name=row["name"],
                address=row["address"],
                lat=row["lat"],
                lon=row["lon"],
                hazards=hazards,
                capacity=row["capacity"],
                accepts=row["accepts"],
                note=row["note"],
                same_address_as_other_kind=bool(row["same_address_as_other_kind"]),
                source=row["source"],
            )
        )
    return shelters
