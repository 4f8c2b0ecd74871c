"""On-demand ride dispatch: travel times on the road network and an insertion heuristic.

Usage::

    times = TravelTimes(RoadGraph.from_store(db, "352021"))            # 25 km/h on every street
    dispatcher = Dispatcher(times, [Vehicle("v1", 8, 1, LatLon(33.95, 131.25))], area)
    assignment = dispatcher.submit(Trip("r1", pickup, dropoff, 2, 0, earliest_s, latest_s), now_s)
    assignment.vehicle_id, assignment.pickup_s, assignment.dropoff_s
    dispatcher.cancel("r1", now_s)                                     # DispatchError when on board / done

Model (a dial-a-ride problem with time windows, solved greedily): every vehicle has a plan of
stops (pickups and drop-offs). A new trip is tried at every pair of positions (pickup before
drop-off) of every vehicle; a position pair is feasible when seats and wheelchair slots are
never exceeded, the pickup falls in the trip's window, the drop-off before its deadline
(latest pickup + a bounded detour over the direct ride), and no stop already promised is
pushed past its own window. Feasibility of the delay pushed onto the rest of a plan is O(1)
through each stop's precomputed "largest delay it and everything after it can absorb"
(Savelsbergh's forward slack). Among feasible insertions the one adding the least driving
time plus half the added wait wins. Evacuation trips (priority) are placed before the others
in a batch, and when none fits they may take the place of a trip not yet picked up, which is
then re-placed or rejected.

Travel times: the region's road network is the OpenStreetMap WALKING network (the only street
network we have for Ube); vehicles are assumed to drive it at VEHICLE_SPEED_KMH = 25 km/h, a
typical urban average for a small on-demand van including junctions. One-way streets for cars
are therefore not modelled. A point joins the network at the nearer end of its closest street.
Shortest times come from scipy.sparse.csgraph Dijkstra runs, one per new place, into a dense
place-to-place matrix (a batch of places is one call). During an alert, streets inside the
hazard's areas count HAZARD_SLOWDOWN times slower, so vehicles drive around them where a
detour exists and ETAs include the crawl where none does.

numpy and scipy are imported where they are used (a municipality's ride service starts on
first use): a platform worker that never dispatches a ride, or one restarted in a surge, does
not pay for importing them.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from geo.hazards import HazardLayers
from geo.models import LatLon, Shelter
from geo.routing import MAX_SNAP_M, RoadGraph
from protocol.hazards import HazardType, ShelterKind

VEHICLE_SPEED_KMH = 25.0
VEHICLE_SPEED_MPS = VEHICLE_SPEED_KMH / 3.6
DWELL_S = 60.0  # boarding or alighting at one stop
MAX_RIDE_FACTOR = 1.5  # a ride may take this × the direct ride ...
MIN_RIDE_SLACK_S = 600.0  # ... or the direct ride + 10 minutes, whichever is longer
WAIT_WEIGHT = 0.5  # seconds of added driving worth one second of a passenger's wait
HAZARD_SLOWDOWN = 5.0
MAX_ADVANCE_S = 14 * 24 * 3600.0  # bookings at most two weeks ahead
PAST_GRACE_S = 60.0  # a window that closed this long ago is "in the past"
AREA_MARGIN_M = 200.0  # a derived service area reaches this far past the outermost streets
_INF = math.inf


class DispatchErrorCode(str, Enum):
    PICKUP_OUTSIDE_AREA = "pickup_outside_area"
    DROPOFF_OUTSIDE_AREA = "dropoff_outside_area"
    OFF_NETWORK = "off_network"  # inside the area but no street within MAX_SNAP_M
    INVALID_TIME_WINDOW = "invalid_time_window"
    PAST_TIME_WINDOW = "past_time_window"
    TOO_FAR_AHEAD = "too_far_ahead"
    INVALID_PARTY = "invalid_party"
    PARTY_TOO_LARGE = "party_too_large"  # no vehicle has that many seats / wheelchair slots
    SAME_PLACE = "same_place"
    NO_VEHICLE = "no_vehicle"  # no vehicle can meet the window
    UNREACHABLE = "unreachable"
    NO_SAFE_SHELTER = "no_safe_shelter"
    UNKNOWN_RIDE = "unknown_ride"
    DUPLICATE_RIDE = "duplicate_ride"
    NOT_CANCELLABLE = "not_cancellable"  # already on board or finished
    BUMPED = "bumped_for_evacuation"

    @property
    def message_key(self) -> str:
        return f"rides.error.{self.value}"


class DispatchError(Exception):
    """A request the dispatcher cannot accept; ``code.message_key`` is the translated message."""

    def __init__(self, code: DispatchErrorCode, detail: str) -> None:
        super().__init__(f"{code.value}: {detail}")
        self.code, self.detail = code, detail

    @property
    def message_key(self) -> str:
        return self.code.message_key


@dataclass(frozen=True, slots=True)
class Vehicle:
    id: str
    seats: int
    wheelchair_slots: int
    depot: LatLon
    simulated: bool = True  # the demo's vehicles are simulated; the API says so


@dataclass(frozen=True, slots=True)
class Trip:
    """One booking as the dispatcher sees it. Times are seconds on the dispatcher's clock."""

    id: str
    pickup: LatLon
    dropoff: LatLon
    passengers: int  # including companions and wheelchair users
    wheelchairs: int
    earliest_s: float  # pickup window
    latest_s: float
    evacuation: bool = False  # 要支援者 during an alert: placed first


@dataclass(frozen=True, slots=True)
class Assignment:
    trip_id: str
    vehicle_id: str
    pickup_s: float  # planned; moves (within the window) as other trips are inserted
    dropoff_s: float
    direct_s: float  # the ride alone, for "arrival" in a quote


@dataclass(frozen=True, slots=True)
class PlannedStop:
    trip_id: str
    pickup: bool
    point: LatLon
    arrive_s: float
    service_s: float  # after waiting for the window to open


@dataclass(frozen=True, slots=True)
class ServiceArea:
    """Where rides may start and end in one municipality: polygon rings of (lon, lat)."""

    municipality: str
    outer: tuple[tuple[float, float], ...]

    @classmethod
    def around_network(cls, municipality: str, graph: RoadGraph, margin_m: float = AREA_MARGIN_M) -> ServiceArea:
        """The street network's convex hull widened by ``margin_m``: the demo's area where no
        official one exists (points on the outermost streets are inside)."""
        import numpy as np
        from scipy.spatial import ConvexHull, QhullError

        points = np.column_stack([graph.lon, graph.lat])
        try:
            corners = points[ConvexHull(points).vertices]
            lat0 = math.radians(float(points[:, 1].mean()))
            angles = np.linspace(0.0, 2 * math.pi, 16, endpoint=False)
            ring = np.column_stack([np.cos(angles) * margin_m / (111_320.0 * math.cos(lat0)), np.sin(angles) * margin_m / 111_320.0])
            widened = (corners[:, None, :] + ring[None, :, :]).reshape(-1, 2)
            outer = widened[ConvexHull(widened).vertices]
        except (QhullError, ValueError) as exc:
            raise ValueError(f"cannot derive a service area for {municipality}: {exc}") from None
        return cls(municipality, tuple((float(x), float(y)) for x, y in outer))

    def contains(self, point: LatLon) -> bool:
        inside, ring = False, self.outer
        x1, y1 = ring[-1]
        for x2, y2 in ring:
            if (y1 > point.lat) != (y2 > point.lat) and point.lon < x1 + (point.lat - y1) * (x2 - x1) / (y2 - y1):
                inside = not inside
            x1, y1 = x2, y2
        return inside


class TravelTimes:
    """Driving seconds between places on the road network, in a growing dense matrix.

    ``place(point)`` registers a point (snapped to the network once) and returns its index;
    ``seconds(a, b)`` is then a list lookup. Registering many places at once with ``places``
    costs one multi-source Dijkstra instead of one per place.
    """

    def __init__(
        self, graph: RoadGraph, speed_mps: float = VEHICLE_SPEED_MPS, slow_edges: Sequence[bool] | None = None
    ) -> None:
        if not (speed_mps > 0 and math.isfinite(speed_mps)):
            raise ValueError(f"speed_mps must be a positive number, got {speed_mps!r}")
        if graph.node_count == 0:
            raise ValueError("the road network is empty")
        import numpy as np
        from scipy.sparse import csr_matrix

        self.graph, self.speed_mps = graph, speed_mps
        self.hazard_aware = slow_edges is not None and any(slow_edges)
        sec = np.asarray(graph.length_m, dtype=float) / speed_mps
        if slow_edges is not None:
            sec = np.where(np.asarray(slow_edges, dtype=bool), sec * HAZARD_SLOWDOWN, sec)
        sec = np.maximum(sec, 1e-3)  # csgraph would read an explicit 0 as "no edge"
        u, v = np.asarray(graph.edge_u), np.asarray(graph.edge_v)
        order = np.lexsort((sec, v, u))  # parallel streets: keep the fastest
        u, v, sec = u[order], v[order], sec[order]
        first = np.ones(len(u), dtype=bool)
        first[1:] = (u[1:] != u[:-1]) | (v[1:] != v[:-1])
        n = graph.node_count
        self._fwd = csr_matrix((sec[first], (u[first], v[first])), shape=(n, n))
        self._rev = self._fwd.T.tocsr()
        self._symmetric = abs(self._fwd - self._rev).max() < 1e-9
        self._node: list[int] = []
        self._access_s: list[float] = []
        self.points: list[LatLon] = []
        self._matrix: list[list[float]] = []
        self._known: dict[LatLon, int] = {}

    def __len__(self) -> int:
        return len(self.points)

    def snaps(self, point: LatLon) -> bool:
        return bool(self.graph.attachments(point, radius_m=MAX_SNAP_M))

    def place(self, point: LatLon) -> int:
        return self.places([point])[0]

    def places(self, points: Iterable[LatLon]) -> list[int]:
        """Indices of ``points``, adding the new ones; DispatchError OFF_NETWORK for a point
        farther than MAX_SNAP_M from every street (nothing is added then)."""
        points = list(points)
        fresh: dict[LatLon, tuple[int, float]] = {}
        for point in points:
            if point not in self._known and point not in fresh:
                fresh[point] = self._snap(point)
        if fresh:
            self._add(fresh)
        return [self._known[p] for p in points]

    def seconds(self, a: int, b: int) -> float:
        return self._matrix[a][b]

    def matrix(self) -> list[list[float]]:
        """The live matrix (row = from, column = to); it grows as places are added."""
        return self._matrix

    def _snap(self, point: LatLon) -> tuple[int, float]:
        found = self.graph.attachments(point, radius_m=MAX_SNAP_M)
        if not found:
            raise DispatchError(DispatchErrorCode.OFF_NETWORK, f"no street within {MAX_SNAP_M:.0f} m of ({point.lat:.5f}, {point.lon:.5f})")
        a = found[0]
        e = a.edge
        along = a.fraction * self.graph.length_m[e]
        to_end = self.graph.length_m[e] - along
        node, drive = (self.graph.edge_u[e], along) if along <= to_end else (self.graph.edge_v[e], to_end)
        return node, (a.gap_m + drive) / self.speed_mps

    def _add(self, fresh: dict[LatLon, tuple[int, float]]) -> None:
        import numpy as np
        from scipy.sparse.csgraph import dijkstra

        new_nodes = sorted({node for node, _ in fresh.values()})
        row_of = {node: i for i, node in enumerate(new_nodes)}
        out = dijkstra(self._fwd, directed=True, indices=new_nodes)
        back = out if self._symmetric else dijkstra(self._rev, directed=True, indices=new_nodes)
        start = len(self.points)
        for point, (node, access) in fresh.items():
            self._known[point] = len(self.points)
            self.points.append(point)
            self._node.append(node)
            self._access_s.append(access)
        nodes = np.asarray(self._node)
        access_s = np.asarray(self._access_s)
        new_rows = [row_of[node] for node in self._node[start:]]
        if start:  # old places: a column to each new place
            cols = back[np.ix_(np.asarray(new_rows), nodes[:start])] + access_s[start:, None] + access_s[None, :start]
            for i in range(start):
                self._matrix[i].extend(cols[:, i].tolist())
        for k, row_index in zip(range(start, len(self.points)), new_rows, strict=True):
            row = out[row_index, nodes] + access_s + access_s[k]
            row[k] = 0.0
            self._matrix.append(row.tolist())


def hazard_slow_edges(graph: RoadGraph, layers: HazardLayers, hazard: HazardType | None) -> list[bool]:
    """Streets touching an active area of ``hazard`` (ends or sample points inside any level); none without a hazard."""
    index = layers.level_index(hazard) if hazard is not None else None
    if index is None or index.empty:
        return [False] * graph.edge_count
    level_at = index.level_at
    node_level = [level_at(a, b) for a, b in zip(graph.lat, graph.lon, strict=True)]
    group_of, groups = graph.edge_samples()
    group_level = [max(level_at(a, b) for a, b in pts) for pts in groups]
    eu, ev = graph.edge_u, graph.edge_v
    return [max(node_level[eu[e]], node_level[ev[e]], group_level[group_of[e]]) > 0 for e in range(graph.edge_count)]


def safe_shelter(
    times: TravelTimes, pickup: LatLon, shelters: Sequence[Shelter], hazard: HazardType | None, layers: HazardLayers | None
) -> Shelter:
    """The emergency site suitable for ``hazard`` (any, when the hazard is not known), outside its areas,
    fastest to reach from ``pickup``."""
    index = layers.level_index(hazard) if layers is not None and hazard is not None else None
    fit = [
        s for s in shelters
        if s.kind is ShelterKind.EMERGENCY_SITE and (hazard is None or s.suits(hazard)) and (index is None or index.level_at(s.lat, s.lon) == 0)
    ]
    near = [s for s in fit if times.snaps(LatLon(s.lat, s.lon))]
    if not near:
        what = hazard.value if hazard is not None else "the alert"
        raise DispatchError(DispatchErrorCode.NO_SAFE_SHELTER, f"no emergency site for {what} outside its hazard areas is near a street")
    start = times.place(pickup)
    ends = times.places(LatLon(s.lat, s.lon) for s in near)
    best = min(range(len(near)), key=lambda i: times.seconds(start, ends[i]))
    if times.seconds(start, ends[best]) == _INF:
        raise DispatchError(DispatchErrorCode.UNREACHABLE, "no suitable shelter can be reached by road from the pickup")
    return near[best]


@dataclass(slots=True)
class _Stop:
    trip: Trip
    pickup: bool
    place: int
    open_s: float  # the window at this stop
    close_s: float
    seats: int  # +passengers at a pickup, -passengers at a drop-off
    chairs: int


@dataclass(slots=True)
class _Plan:
    vehicle: Vehicle
    place: int  # where the vehicle is (or will leave from)
    free_s: float  # when it leaves ``place``
    stops: list[_Stop] = field(default_factory=list)
    arrive: list[float] = field(default_factory=list)
    service: list[float] = field(default_factory=list)
    seats_start: int = 0  # on board when it leaves ``place``
    chairs_start: int = 0
    seats_after: list[int] = field(default_factory=list)
    chairs_after: list[int] = field(default_factory=list)
    absorb: list[float] = field(default_factory=list)  # largest arrival delay stop k..end can take
    driven_s: float = 0.0  # already driven (stops passed)


@dataclass(slots=True)
class _Insertion:
    cost: float
    plan: _Plan
    i: int  # pickup goes before old stop i
    j: int  # drop-off goes before old stop j (j ≥ i)


class Dispatcher:
    """Assigns trips to vehicles by cheapest feasible insertion; see the module docstring."""

    def __init__(self, times: TravelTimes, vehicles: Sequence[Vehicle], area: ServiceArea | None = None, now_s: float = 0.0) -> None:
        if not vehicles:
            raise ValueError("a dispatcher needs at least one vehicle")
        self.times, self.area = times, area
        depots = times.places(v.depot for v in vehicles)
        self._plans = {v.id: _Plan(v, place, now_s) for v, place in zip(vehicles, depots, strict=True)}
        self._where: dict[str, str] = {}  # trip id -> vehicle id, for trips still in a plan
        self._done: dict[str, Assignment] = {}  # trips dropped off
        self._direct: dict[str, float] = {}
        self._picked: dict[str, float] = {}  # trip id -> pickup time, while on board
        self.bumped: list[str] = []  # ordinary trips given up for evacuation trips: tell their passengers
        self.max_seats = max(v.seats for v in vehicles)
        self.max_chairs = max(v.wheelchair_slots for v in vehicles)

    @property
    def vehicles(self) -> list[Vehicle]:
        return [p.vehicle for p in self._plans.values()]

    # -- checks --

    def check(self, trip: Trip, now_s: float) -> None:
        """Raise the DispatchError a trip deserves before any search (bad party, window, area)."""
        if trip.id in self._where or trip.id in self._done:
            raise DispatchError(DispatchErrorCode.DUPLICATE_RIDE, f"trip {trip.id!r} is already booked")
        if not (trip.passengers >= 1 and 0 <= trip.wheelchairs <= trip.passengers):
            raise DispatchError(DispatchErrorCode.INVALID_PARTY,
                                f"passengers must be ≥ 1 and wheelchairs between 0 and passengers, got {trip.passengers}/{trip.wheelchairs}")
        if trip.passengers > self.max_seats or trip.wheelchairs > self.max_chairs:
            raise DispatchError(DispatchErrorCode.PARTY_TOO_LARGE,
                                f"the largest vehicle takes {self.max_seats} passengers and {self.max_chairs} wheelchairs")
        if not (math.isfinite(trip.earliest_s) and math.isfinite(trip.latest_s)) or trip.latest_s < trip.earliest_s:
            raise DispatchError(DispatchErrorCode.INVALID_TIME_WINDOW, "the pickup window must end after it starts")
        if trip.latest_s < now_s - PAST_GRACE_S:
            raise DispatchError(DispatchErrorCode.PAST_TIME_WINDOW, "the pickup window is already over")
        if trip.earliest_s > now_s + MAX_ADVANCE_S:
            raise DispatchError(DispatchErrorCode.TOO_FAR_AHEAD, f"bookings open {MAX_ADVANCE_S / 86400:.0f} days ahead at most")
        if self.area is not None:
            if not self.area.contains(trip.pickup):
                raise DispatchError(DispatchErrorCode.PICKUP_OUTSIDE_AREA, f"the pickup is outside the service area of {self.area.municipality}")
            if not self.area.contains(trip.dropoff):
                raise DispatchError(DispatchErrorCode.DROPOFF_OUTSIDE_AREA, f"the drop-off is outside the service area of {self.area.municipality}")

    # -- booking --

    def quote(self, trip: Trip, now_s: float) -> Assignment:
        """Where ``trip`` would go now, without booking it (DispatchError when it cannot): it is
        inserted, read and taken out again, so the times include the detours of shared rides."""
        self.check(trip, now_s)
        best = self._best(trip, now_s)
        self._insert(trip, best)
        try:
            return self.assignment(trip.id)
        finally:
            self._remove(best.plan, trip.id)

    def submit(self, trip: Trip, now_s: float) -> Assignment:
        """Book ``trip`` into the cheapest feasible place, or raise DispatchError (nothing changes)."""
        self.check(trip, now_s)
        try:
            best = self._best(trip, now_s)
        except DispatchError as exc:
            if not (trip.evacuation and exc.code is DispatchErrorCode.NO_VEHICLE):
                raise
            return self._bump_for(trip, now_s)
        self._insert(trip, best)
        return self.assignment(trip.id)

    def submit_many(self, trips: Iterable[Trip], now_s: float) -> dict[str, Assignment | DispatchError]:
        """Evacuation trips first, then by window start; each gets an assignment or its error."""
        out: dict[str, Assignment | DispatchError] = {}
        for trip in sorted(trips, key=lambda t: (not t.evacuation, t.earliest_s, t.latest_s)):
            try:
                out[trip.id] = self.submit(trip, now_s)
            except DispatchError as exc:
                out[trip.id] = exc
        return out

    def cancel(self, trip_id: str, now_s: float) -> None:
        """Take a trip out of its plan; NOT_CANCELLABLE once its passengers are picked up."""
        self.advance(now_s)
        if trip_id in self._done:
            raise DispatchError(DispatchErrorCode.NOT_CANCELLABLE, "the ride is already finished")
        plan = self._plan_of(trip_id)
        if not any(s.trip.id == trip_id and s.pickup for s in plan.stops):
            raise DispatchError(DispatchErrorCode.NOT_CANCELLABLE, "the passengers are already on board")
        self._remove(plan, trip_id)

    def advance(self, now_s: float) -> None:
        """Move every simulated vehicle along its plan to ``now_s`` (stops served until then)."""
        for plan in self._plans.values():
            while plan.stops and plan.service[0] + DWELL_S <= now_s:
                stop = plan.stops.pop(0)
                plan.driven_s += self.times.seconds(plan.place, stop.place)
                if not stop.pickup:
                    picked = self._picked.pop(stop.trip.id)
                    self._done[stop.trip.id] = Assignment(stop.trip.id, plan.vehicle.id, picked, plan.service[0], self._direct[stop.trip.id])
                    self._where.pop(stop.trip.id, None)
                else:
                    self._picked[stop.trip.id] = plan.service[0]
                plan.place, plan.free_s = stop.place, plan.service[0] + DWELL_S
                self._retime(plan)
            if not plan.stops and plan.free_s < now_s:
                plan.free_s = now_s  # idle: it leaves when the next trip comes

    def use_times(self, times: TravelTimes) -> None:
        """Drive on other travel times from now on (an alert starts or ends). Every place keeps
        its index; plans are re-timed, and a promise the slower streets now break stays in the
        plan (the vehicle is late) rather than being dropped."""
        if times.places(self.times.points) != list(range(len(self.times.points))):
            raise ValueError("the new travel times must start from the same places")
        self.times = times
        for plan in self._plans.values():
            self._retime(plan)

    # -- keeping --

    def snapshot(self) -> dict[str, Any]:
        """The plans and what became of every trip, as JSON (places as points, so travel times
        built afresh, e.g. after a restart, can take them back with ``restore``)."""
        points = self.times.points
        return {
            "plans": {
                vid: {"at": [points[p.place].lat, points[p.place].lon], "free_s": p.free_s, "driven_s": p.driven_s,
                      "stops": [[s.trip.id, s.pickup, _finite(s.open_s), _finite(s.close_s)] for s in p.stops]}
                for vid, p in self._plans.items()
            },
            "done": {k: [a.vehicle_id, a.pickup_s, a.dropoff_s, a.direct_s] for k, a in self._done.items()},
            "direct": self._direct, "picked": self._picked, "bumped": self.bumped,
        }

    def restore(self, state: dict[str, Any], trips: Mapping[str, Trip]) -> None:
        """Take back a ``snapshot``; ``trips`` by id are the bookings it refers to. A stop of a
        trip missing from ``trips`` (its booking was deleted) is left out."""
        self._done = {k: Assignment(k, v, p, d, r) for k, (v, p, d, r) in state["done"].items()}
        self._direct = {k: float(v) for k, v in state["direct"].items() if k in trips}
        self._picked = {k: float(v) for k, v in state["picked"].items() if k in trips}
        self.bumped = list(state["bumped"])
        self._where = {}
        for vid, saved in state["plans"].items():
            plan = self._plans[vid]
            plan.place = self.times.place(LatLon(*saved["at"]))
            plan.free_s, plan.driven_s, plan.stops = float(saved["free_s"]), float(saved["driven_s"]), []
            for trip_id, pickup, open_s, close_s in saved["stops"]:
                trip = trips.get(trip_id)
                if trip is None:
                    continue
                place = self.times.place(trip.pickup if pickup else trip.dropoff)
                sign = 1 if pickup else -1
                plan.stops.append(_Stop(trip, pickup, place, -_INF if open_s is None else float(open_s), _INF if close_s is None else float(close_s),
                                        sign * trip.passengers, sign * trip.wheelchairs))
                self._where[trip_id] = vid
            self._retime(plan)

    # -- reading --

    def assignment(self, trip_id: str) -> Assignment:
        if trip_id in self._done:
            return self._done[trip_id]
        plan = self._plan_of(trip_id)
        pick = next((plan.service[k] for k, s in enumerate(plan.stops) if s.trip.id == trip_id and s.pickup), None)
        drop = next(plan.service[k] for k, s in enumerate(plan.stops) if s.trip.id == trip_id and not s.pickup)
        return Assignment(trip_id, plan.vehicle.id, pick if pick is not None else self._picked[trip_id], drop, self._direct[trip_id])

    def phase(self, trip_id: str) -> str:
        """'assigned', 'on_board' or 'done' as of the last ``advance``."""
        if trip_id in self._done:
            return "done"
        self._plan_of(trip_id)
        return "on_board" if trip_id in self._picked else "assigned"

    def plan(self, vehicle_id: str) -> list[PlannedStop]:
        plan = self._plans[vehicle_id]
        return [PlannedStop(s.trip.id, s.pickup, self.times.points[s.place], plan.arrive[k], plan.service[k]) for k, s in enumerate(plan.stops)]

    def planned_drive_s(self) -> float:
        """Driving time of every vehicle: behind it and still planned (the depot return not counted)."""
        total = 0.0
        for plan in self._plans.values():
            total += plan.driven_s
            at = plan.place
            for stop in plan.stops:
                total += self.times.seconds(at, stop.place)
                at = stop.place
        return total

    # -- internals --

    def _plan_of(self, trip_id: str) -> _Plan:
        vehicle = self._where.get(trip_id)
        if vehicle is None:
            raise DispatchError(DispatchErrorCode.UNKNOWN_RIDE, f"no booked ride {trip_id!r}")
        return self._plans[vehicle]

    def _direct_s(self, trip: Trip) -> float:
        p, d = self.times.places([trip.pickup, trip.dropoff])
        if p == d:
            raise DispatchError(DispatchErrorCode.SAME_PLACE, "pickup and drop-off are the same place")
        direct = self.times.seconds(p, d)
        if direct == _INF:
            raise DispatchError(DispatchErrorCode.UNREACHABLE, "the drop-off cannot be reached by road from the pickup")
        return direct

    def _best(self, trip: Trip, now_s: float) -> _Insertion:
        self.advance(now_s)
        direct = self._direct_s(trip)
        p, d = self.times.places([trip.pickup, trip.dropoff])
        earliest = max(trip.earliest_s, now_s)
        deadline = trip.latest_s + DWELL_S + max(direct * MAX_RIDE_FACTOR, direct + MIN_RIDE_SLACK_S)
        best: _Insertion | None = None
        for plan in self._plans.values():
            v = plan.vehicle
            if trip.passengers > v.seats or trip.wheelchairs > v.wheelchair_slots:
                continue
            found = self._best_in(plan, trip, p, d, earliest, deadline, now_s)
            if found is not None and (best is None or found.cost < best.cost):
                best = found
        if best is None:
            raise DispatchError(DispatchErrorCode.NO_VEHICLE, "no vehicle can pick up within the requested window")
        return best

    def _best_in(self, plan: _Plan, trip: Trip, p: int, d: int, earliest: float, deadline: float, now_s: float) -> _Insertion | None:
        T = self.times.matrix()
        stops, arrive, service, absorb = plan.stops, plan.arrive, plan.service, plan.absorb
        n = len(stops)
        seats, chairs = plan.vehicle.seats - trip.passengers, plan.vehicle.wheelchair_slots - trip.wheelchairs
        first = 1 if n and plan.free_s < now_s else 0  # on its way to stop 0: no turning mid-street
        best: _Insertion | None = None
        tp, td, latest = T[p], T[d], trip.latest_s
        for i in range(first, n + 1):
            prev = plan.place if i == 0 else stops[i - 1].place
            leave = max(plan.free_s, now_s) if i == 0 else service[i - 1] + DWELL_S
            reach = leave + T[prev][p]
            if reach > latest:
                break  # every later position leaves even later
            before = (plan.seats_after[i - 1], plan.chairs_after[i - 1]) if i else (plan.seats_start, plan.chairs_start)
            if before[0] > seats or before[1] > chairs:
                continue
            at_p = max(reach, earliest)
            wait_cost = WAIT_WEIGHT * (at_p - trip.earliest_s)
            leave_p = at_p + DWELL_S
            nxt = stops[i].place if i < n else -1
            base = T[prev][nxt] if i < n else 0.0
            # drop-off right after the pickup
            at_d = leave_p + tp[d]
            if at_d <= deadline and (i == n or at_d + DWELL_S + td[nxt] - arrive[i] <= absorb[i]):
                added = T[prev][p] + tp[d] + (td[nxt] - base if i < n else 0.0)
                if best is None or added + wait_cost < best.cost:
                    best = _Insertion(added + wait_cost, plan, i, i)
            if i == n:
                continue
            delay = leave_p + tp[nxt] - arrive[i]
            if delay > absorb[i]:
                continue
            added_p = T[prev][p] + tp[nxt] - base
            for j in range(i + 1, n + 1):
                k = j - 1
                if plan.seats_after[k] > seats or plan.chairs_after[k] > chairs:
                    break  # the party would be on board past a full stop
                shift = max(0.0, delay - (service[k] - arrive[k]))
                at_d = service[k] + shift + DWELL_S + T[stops[k].place][d]
                if at_d > deadline:
                    break
                if j < n:
                    after = stops[j].place
                    if at_d + DWELL_S + td[after] - arrive[j] > absorb[j]:
                        delay = shift
                        continue
                    added = added_p + T[stops[k].place][d] + td[after] - T[stops[k].place][after]
                else:
                    added = added_p + T[stops[k].place][d]
                if best is None or added + wait_cost < best.cost:
                    best = _Insertion(added + wait_cost, plan, i, j)
                delay = shift
        return best

    def _insert(self, trip: Trip, ins: _Insertion) -> None:
        p, d = self.times.places([trip.pickup, trip.dropoff])
        direct = self.times.seconds(p, d)
        deadline = trip.latest_s + DWELL_S + max(direct * MAX_RIDE_FACTOR, direct + MIN_RIDE_SLACK_S)
        plan = ins.plan
        pick = _Stop(trip, True, p, max(trip.earliest_s, 0.0), trip.latest_s, trip.passengers, trip.wheelchairs)
        drop = _Stop(trip, False, d, -_INF, deadline, -trip.passengers, -trip.wheelchairs)
        plan.stops.insert(ins.j, drop)
        plan.stops.insert(ins.i, pick)
        self._where[trip.id] = plan.vehicle.id
        self._direct[trip.id] = direct
        self._retime(plan)

    def _remove(self, plan: _Plan, trip_id: str) -> None:
        plan.stops = [s for s in plan.stops if s.trip.id != trip_id]
        self._where.pop(trip_id, None)
        self._direct.pop(trip_id, None)
        self._retime(plan)

    def _retime(self, plan: _Plan) -> None:
        """Arrival and service times, loads, and each stop's absorbable delay, front to back then back to front."""
        T = self.times.matrix()
        n = len(plan.stops)
        arrive, service, seats_after, chairs_after = [0.0] * n, [0.0] * n, [0] * n, [0] * n
        at, leave = plan.place, plan.free_s
        on_board = [s for s in plan.stops if not s.pickup and s.trip.id in self._picked]
        seats, chairs = -sum(s.seats for s in on_board), -sum(s.chairs for s in on_board)
        plan.seats_start, plan.chairs_start = seats, chairs
        for k, stop in enumerate(plan.stops):
            arrive[k] = leave + T[at][stop.place]
            service[k] = max(arrive[k], stop.open_s)
            seats += stop.seats
            chairs += stop.chairs
            seats_after[k], chairs_after[k] = seats, chairs
            at, leave = stop.place, service[k] + DWELL_S
        absorb = [0.0] * n
        room = _INF
        for k in range(n - 1, -1, -1):
            room = (service[k] - arrive[k]) + min(plan.stops[k].close_s - service[k], room)
            absorb[k] = room
        plan.arrive, plan.service, plan.seats_after, plan.chairs_after, plan.absorb = arrive, service, seats_after, chairs_after, absorb

    def _bump_for(self, trip: Trip, now_s: float) -> Assignment:
        """An evacuation trip that fits nowhere takes the place of the ordinary trip not yet picked
        up whose removal lets it in most cheaply; that trip is re-placed if it still fits elsewhere,
        else it is rejected with BUMPED (listed in ``bumped``)."""
        candidates = [
            (plan, s.trip) for plan in self._plans.values() for s in plan.stops
            if s.pickup and not s.trip.evacuation and (s is not plan.stops[0] or plan.free_s >= now_s)
        ]
        best: tuple[float, _Plan, Trip] | None = None
        for plan, other in candidates:
            saved = list(plan.stops)
            self._remove(plan, other.id)
            try:
                cost = self._best(trip, now_s)
                if cost.plan is plan and (best is None or cost.cost < best[0]):
                    best = (cost.cost, plan, other)
            except DispatchError:
                pass
            plan.stops = saved
            self._where[other.id] = plan.vehicle.id
            self._direct[other.id] = self._direct_s(other)
            self._retime(plan)
        if best is None:
            raise DispatchError(DispatchErrorCode.NO_VEHICLE, "no vehicle can reach the evacuation pickup in time, even by moving other rides")
        _, plan, other = best
        self._remove(plan, other.id)
        self._insert(trip, self._best(trip, now_s))
        try:
            self._insert(other, self._best(other, now_s))
        except DispatchError:
            self.bumped.append(other.id)
        return self.assignment(trip.id)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
