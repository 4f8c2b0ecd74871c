"""The ride dispatcher: travel times, constraints of every plan, errors, evacuation priority."""
from __future__ import annotations

import math
import random
import shutil

import pytest

from cityos.dispatch import (
    DWELL_S,
    VEHICLE_SPEED_MPS,
    Assignment,
    Dispatcher,
    DispatchError,
    DispatchErrorCode,
    ServiceArea,
    TravelTimes,
    Trip,
    Vehicle,
    hazard_slow_edges,
    safe_shelter,
)
from geo.hazards import HazardLayers
from geo.models import LatLon, RoadEdge, Shelter
from geo.regionfiles import read_road_edges
from geo.routing import EvacuationRouter, RoadGraph
from offline.store import open_store
from protocol.hazards import HazardType, ShelterKind

LAT0, LON0, STEP = 33.95, 131.25, 0.001  # grid near Ube, ~111 m × ~92 m cells


def grid_graph(side: int = 10, slow_row: int | None = None) -> RoadGraph:
    """A side × side street grid, every street both ways, lengths from the projection."""
    edges, key = [], 0
    def node(r: int, c: int) -> int:
        return r * side + c
    def coord(r: int, c: int) -> tuple[float, float]:
        return (LON0 + c * STEP, LAT0 + r * STEP)
    for r in range(side):
        for c in range(side):
            for dr, dc in ((0, 1), (1, 0)):
                r2, c2 = r + dr, c + dc
                if r2 < side and c2 < side:
                    length = 92.3 if dr == 0 else 110.9
                    for a, b in ((node(r, c), node(r2, c2)), (node(r2, c2), node(r, c))):
                        ra, ca = divmod(a, side)
                        rb, cb = divmod(b, side)
                        edges.append(RoadEdge(a, b, key, length, "residential", "", None, None, [coord(ra, ca), coord(rb, cb)]))
                        key += 1
    return RoadGraph.from_edges(edges)


def at(r: float, c: float) -> LatLon:
    return LatLon(LAT0 + r * STEP, LON0 + c * STEP)


@pytest.fixture(scope="module")
def grid() -> RoadGraph:
    return grid_graph()


def trip(tid: str, a: LatLon, b: LatLon, start: float = 0.0, window: float = 1800.0, n: int = 1, chairs: int = 0, evac: bool = False) -> Trip:
    return Trip(tid, a, b, n, chairs, start, start + window, evac)


def check_plans(dispatcher: Dispatcher, trips: dict[str, Trip], booked: set[str] | dict[str, Assignment]) -> None:
    """An independent walk over every plan: windows, seats, chairs, order and completeness
    (a trip already on board has only its drop-off left)."""
    times = dispatcher.times
    seen: dict[str, list[bool]] = {}
    for vehicle in dispatcher.vehicles:
        plan = dispatcher._plans[vehicle.id]
        aboard = [trips[s.trip.id] for s in plan.stops if not s.pickup and s.trip.id in dispatcher._picked]
        place, leave = plan.place, plan.free_s
        seats, chairs = sum(t.passengers for t in aboard), sum(t.wheelchairs for t in aboard)
        for stop in plan.stops:
            arrive = leave + times.seconds(place, stop.place)
            service = max(arrive, stop.open_s)
            t = trips[stop.trip.id]
            if stop.pickup:
                assert t.earliest_s <= service <= t.latest_s + 1e-6, (t.id, service)
                seats, chairs = seats + t.passengers, chairs + t.wheelchairs
            else:
                assert service <= stop.close_s + 1e-6
                seats, chairs = seats - t.passengers, chairs - t.wheelchairs
            assert 0 <= seats <= vehicle.seats and 0 <= chairs <= vehicle.wheelchair_slots
            seen.setdefault(t.id, []).append(stop.pickup)
            place, leave = stop.place, service + DWELL_S
    assert set(seen) == set(booked)
    assert all(v == ([False] if tid in dispatcher._picked else [True, False]) for tid, v in seen.items())


def test_travel_times_follow_the_grid(grid):
    times = TravelTimes(grid)
    a, b, c = times.places([at(0, 0), at(3, 4), at(3, 4)])
    assert b == c  # one place per point
    expected = (3 * 110.9 + 4 * 92.3) / VEHICLE_SPEED_MPS
    assert times.seconds(a, b) == pytest.approx(expected, rel=1e-6)
    assert times.seconds(b, a) == pytest.approx(expected, rel=1e-6)
    assert times.seconds(a, a) == 0.0
    d = times.place(at(9, 9))  # added later: the matrix grows both ways
    assert times.seconds(d, a) == pytest.approx((9 * 110.9 + 9 * 92.3) / VEHICLE_SPEED_MPS, rel=1e-6)
    with pytest.raises(DispatchError) as err:
        times.place(LatLon(LAT0 + 0.1, LON0))
    assert err.value.code is DispatchErrorCode.OFF_NETWORK and err.value.message_key == "rides.error.off_network"


def test_slow_streets_are_driven_around(grid):
    slow = [grid.lat[grid.edge_u[e]] == grid.lat[grid.edge_v[e]] == LAT0 + 2 * STEP for e in range(grid.edge_count)]
    fast, careful = TravelTimes(grid), TravelTimes(grid, slow_edges=slow)
    a, b = fast.places([at(2, 0), at(2, 9)]), careful.places([at(2, 0), at(2, 9)])
    assert fast.seconds(*a) == pytest.approx(9 * 92.3 / VEHICLE_SPEED_MPS, rel=1e-6)
    assert careful.seconds(*b) == pytest.approx((9 * 92.3 + 2 * 110.9) / VEHICLE_SPEED_MPS, rel=1e-6)  # one row up and back


def test_shared_ride_and_every_constraint_on_random_load(grid):
    rnd = random.Random(3)
    vehicles = [Vehicle(f"v{k}", 4, 1, at(rnd.randrange(10), rnd.randrange(10))) for k in range(4)]
    dispatcher = Dispatcher(TravelTimes(grid), vehicles, ServiceArea.around_network("352021", grid))
    trips = {}
    for k in range(120):
        a, b = at(rnd.randrange(10), rnd.randrange(10)), at(rnd.randrange(10), rnd.randrange(10))
        if a != b:
            start = rnd.uniform(0, 3600)
            trips[f"t{k}"] = trip(f"t{k}", a, b, start, 900, n=rnd.choice((1, 1, 2, 3)), chairs=int(rnd.random() < 0.1))
    results = dispatcher.submit_many(trips.values(), 0.0)
    booked = {k: r for k, r in results.items() if isinstance(r, Assignment)}
    assert len(booked) >= 60
    assert {r.code for r in results.values() if isinstance(r, DispatchError)} == {DispatchErrorCode.NO_VEHICLE}
    check_plans(dispatcher, trips, booked)
    dispatcher.advance(math.inf)
    for tid in booked:
        done = dispatcher.assignment(tid)
        assert trips[tid].earliest_s <= done.pickup_s <= trips[tid].latest_s + 1e-6
        assert dispatcher.phase(tid) == "done"


def test_online_bookings_and_cancels_keep_every_promise(grid):
    rnd = random.Random(8)
    dispatcher = Dispatcher(TravelTimes(grid), [Vehicle(f"v{k}", 3, 1, at(k * 4, k * 4)) for k in range(3)])
    trips: dict[str, Trip] = {}
    live: set[str] = set()
    kept: set[str] = set()
    now = 0.0
    for k in range(150):
        now += rnd.uniform(0, 60)
        dispatcher.advance(now)
        live -= {t for t in live if dispatcher.phase(t) == "done"}
        if live and rnd.random() < 0.2:
            victim = rnd.choice(sorted(live))
            try:
                dispatcher.cancel(victim, now)
                live.discard(victim)
                kept.discard(victim)
            except DispatchError as exc:
                assert exc.code is DispatchErrorCode.NOT_CANCELLABLE and dispatcher.phase(victim) == "on_board"
        a, b = at(rnd.randrange(10), rnd.randrange(10)), at(rnd.randrange(10), rnd.randrange(10))
        if a == b:
            continue
        t = trips[f"t{k}"] = trip(f"t{k}", a, b, now + rnd.uniform(0, 600), 600, n=rnd.choice((1, 2)), chairs=int(rnd.random() < 0.1))
        try:
            dispatcher.submit(t, now)
            live.add(t.id)
            kept.add(t.id)
        except DispatchError as exc:
            assert exc.code is DispatchErrorCode.NO_VEHICLE
        check_plans(dispatcher, trips, live)
    dispatcher.advance(math.inf)
    assert len(kept) > 40
    for tid in kept:
        done = dispatcher.assignment(tid)
        assert trips[tid].earliest_s <= done.pickup_s <= trips[tid].latest_s + 1e-6
        assert done.dropoff_s <= trips[tid].latest_s + DWELL_S + max(1.5 * done.direct_s, done.direct_s + 600) + 1e-6


def test_two_people_going_the_same_way_share_one_vehicle(grid):
    dispatcher = Dispatcher(TravelTimes(grid), [Vehicle("a", 4, 0, at(0, 0)), Vehicle("b", 4, 0, at(9, 9))])
    one = dispatcher.submit(trip("1", at(0, 1), at(0, 9)), 0.0)
    two = dispatcher.submit(trip("2", at(0, 2), at(0, 8)), 0.0)
    assert one.vehicle_id == two.vehicle_id == "a"
    assert [s.pickup for s in dispatcher.plan("a")] == [True, True, False, False]  # on board together
    assert [s.trip_id for s in dispatcher.plan("a")][2:] == ["2", "1"]


def test_capacity_and_wheelchair_slots_are_respected(grid):
    dispatcher = Dispatcher(TravelTimes(grid), [Vehicle("small", 2, 0, at(0, 0)), Vehicle("chair", 3, 1, at(9, 9))])
    assert dispatcher.submit(trip("w", at(0, 1), at(0, 3), chairs=1, n=2), 0.0).vehicle_id == "chair"
    with pytest.raises(DispatchError) as err:
        dispatcher.submit(trip("big", at(0, 1), at(0, 3), n=5), 0.0)
    assert err.value.code is DispatchErrorCode.PARTY_TOO_LARGE


@pytest.mark.parametrize(
    ("start", "window", "code"),
    [
        (100.0, -10.0, DispatchErrorCode.INVALID_TIME_WINDOW),
        (-4000.0, 600.0, DispatchErrorCode.PAST_TIME_WINDOW),
        (30 * 86400.0, 600.0, DispatchErrorCode.TOO_FAR_AHEAD),
        (math.nan, 600.0, DispatchErrorCode.INVALID_TIME_WINDOW),
    ],
)
def test_bad_windows_are_typed_errors(grid, start, window, code):
    dispatcher = Dispatcher(TravelTimes(grid), [Vehicle("a", 4, 0, at(0, 0))])
    with pytest.raises(DispatchError) as err:
        dispatcher.submit(trip("x", at(0, 1), at(0, 5), start, window), 0.0)
    assert err.value.code is code and err.value.message_key == f"rides.error.{code.value}"
    assert dispatcher.plan("a") == []


def test_outside_the_service_area_and_other_party_errors(grid):
    area = ServiceArea("352021", ((LON0, LAT0), (LON0 + 5 * STEP, LAT0), (LON0 + 5 * STEP, LAT0 + 5 * STEP), (LON0, LAT0 + 5 * STEP)))
    dispatcher = Dispatcher(TravelTimes(grid), [Vehicle("a", 4, 0, at(0, 0))], area)
    cases = [
        (trip("p", at(8, 8), at(1, 1)), DispatchErrorCode.PICKUP_OUTSIDE_AREA),
        (trip("d", at(1, 1), at(8, 8)), DispatchErrorCode.DROPOFF_OUTSIDE_AREA),
        (trip("s", at(1, 1), at(1, 1)), DispatchErrorCode.SAME_PLACE),
        (Trip("z", at(1, 1), at(2, 2), 0, 0, 0.0, 600.0), DispatchErrorCode.INVALID_PARTY),
        (Trip("c", at(1, 1), at(2, 2), 1, 2, 0.0, 600.0), DispatchErrorCode.INVALID_PARTY),
    ]
    for bad, code in cases:
        with pytest.raises(DispatchError) as err:
            dispatcher.submit(bad, 0.0)
        assert err.value.code is code, bad.id
    dispatcher.submit(trip("ok", at(1, 1), at(4, 4)), 0.0)
    with pytest.raises(DispatchError) as err:
        dispatcher.submit(trip("ok", at(1, 1), at(4, 4)), 0.0)
    assert err.value.code is DispatchErrorCode.DUPLICATE_RIDE


def test_cancel_before_pickup_frees_the_seat_but_not_once_on_board(grid):
    dispatcher = Dispatcher(TravelTimes(grid), [Vehicle("a", 1, 0, at(0, 0))])
    first = dispatcher.submit(trip("1", at(0, 1), at(0, 9), 0.0, 60.0), 0.0)
    with pytest.raises(DispatchError):  # the only seat is taken for that time
        dispatcher.submit(trip("2", at(0, 2), at(0, 8), 0.0, 60.0), 0.0)
    dispatcher.cancel("1", 1.0)
    assert dispatcher.submit(trip("2", at(0, 2), at(0, 8), 0.0, 60.0), 1.0).vehicle_id == "a"
    on_board = dispatcher.assignment("2").pickup_s + DWELL_S + 1
    assert dispatcher.phase("2") == "assigned"
    dispatcher.advance(on_board)
    assert dispatcher.phase("2") == "on_board"
    with pytest.raises(DispatchError) as err:
        dispatcher.cancel("2", on_board)
    assert err.value.code is DispatchErrorCode.NOT_CANCELLABLE
    with pytest.raises(DispatchError) as err:
        dispatcher.cancel("1", on_board)  # cancelled twice: the second one finds nothing
    assert err.value.code is DispatchErrorCode.UNKNOWN_RIDE
    assert first.vehicle_id == "a"


def test_evacuation_trip_takes_the_place_of_an_ordinary_one(grid):
    dispatcher = Dispatcher(TravelTimes(grid), [Vehicle("a", 1, 0, at(0, 0))])
    dispatcher.submit(trip("shop", at(0, 1), at(0, 9), 0.0, 120.0), 0.0)
    evac = dispatcher.submit(trip("evac", at(0, 2), at(5, 5), 0.0, 120.0, evac=True), 0.0)
    assert evac.vehicle_id == "a"
    assert dispatcher.bumped == ["shop"]
    with pytest.raises(DispatchError):
        dispatcher.assignment("shop")
    ordered = dispatcher.submit_many([trip("x", at(1, 1), at(1, 8), 0.0, 3000.0), trip("y", at(2, 2), at(2, 8), 0.0, 3000.0, evac=True)], 0.0)
    assert list(ordered) == ["y", "x"]


def test_safe_shelter_is_suitable_outside_the_area_and_nearest(grid):
    times = TravelTimes(grid)
    def site(sid: str, r: int, c: int, hazards: frozenset) -> Shelter:
        return Shelter(sid, ShelterKind.EMERGENCY_SITE, sid, "", at(r, c).lat, at(r, c).lon, hazards)
    tsunami = frozenset({HazardType.TSUNAMI})
    shelters = [site("near_wrong_kind", 0, 2, frozenset({HazardType.FLOOD})), site("far", 9, 9, tsunami), site("mid", 5, 5, tsunami)]
    assert safe_shelter(times, at(0, 0), shelters, HazardType.TSUNAMI, None).id == "mid"
    with pytest.raises(DispatchError) as err:
        safe_shelter(times, at(0, 0), shelters, HazardType.LANDSLIDE, None)
    assert err.value.code is DispatchErrorCode.NO_SAFE_SHELTER


@pytest.fixture(scope="module")
def ube_graph(ube) -> RoadGraph:
    return RoadGraph.from_edges(read_road_edges(ube.roads_file))


def test_real_ube_network_books_and_keeps_every_constraint(ube_graph):
    rnd = random.Random(5)
    area = ServiceArea.around_network("352021", ube_graph)
    def point() -> LatLon:
        lat, lon = rnd.choice(ube_graph.geometry(rnd.randrange(ube_graph.edge_count)))
        return LatLon(lat, lon)
    vehicles = [Vehicle(f"v{k}", 6, 1, point()) for k in range(6)]
    dispatcher = Dispatcher(TravelTimes(ube_graph), vehicles, area)
    trips = {f"t{k}": trip(f"t{k}", point(), point(), rnd.uniform(0, 3600), 1800, n=rnd.choice((1, 2))) for k in range(60)}
    results = dispatcher.submit_many(trips.values(), 0.0)
    booked = {k: r for k, r in results.items() if isinstance(r, Assignment)}
    assert len(booked) >= 40
    check_plans(dispatcher, trips, booked)
    with pytest.raises(DispatchError) as err:
        dispatcher.submit(trip("sea", LatLon(33.80, 131.25), point()), 0.0)  # in the Seto Inland Sea
    assert err.value.code is DispatchErrorCode.PICKUP_OUTSIDE_AREA


def test_alert_travel_times_avoid_the_hazard_and_pick_a_safe_shelter(ube_store_file, tmp_path):
    shutil.copy(ube_store_file, tmp_path / "ube.sqlite")
    db = open_store(tmp_path / "ube.sqlite")
    loaded = EvacuationRouter.for_region(db, "352021")
    graph, layers = loaded.graph, HazardLayers.for_region(db, "352021")
    slow = hazard_slow_edges(graph, layers, HazardType.TSUNAMI)
    assert 0 < sum(slow) < graph.edge_count
    inside = next(e for e in range(graph.edge_count) if slow[e])
    pickup = LatLon(graph.lat[graph.edge_u[inside]], graph.lon[graph.edge_u[inside]])
    careful, plain = TravelTimes(graph, slow_edges=slow), TravelTimes(graph)
    shelter = safe_shelter(careful, pickup, loaded.shelters, HazardType.TSUNAMI, layers)
    assert shelter.suits(HazardType.TSUNAMI) and shelter.kind is ShelterKind.EMERGENCY_SITE
    assert layers.level_index(HazardType.TSUNAMI).level_at(shelter.lat, shelter.lon) == 0
    a, b = careful.places([pickup, LatLon(shelter.lat, shelter.lon)]), plain.places([pickup, LatLon(shelter.lat, shelter.lon)])
    assert careful.seconds(*a) > plain.seconds(*b)  # leaving the area costs time: it is crawled, not ignored
