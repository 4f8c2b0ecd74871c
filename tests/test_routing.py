"""Evacuation routing: small synthetic networks for behaviour and properties, the real Ube
network for exactness against networkx, Aizu-Wakamatsu for the no-roads fallback."""
from __future__ import annotations

import gc
import math
import random
import shutil

import networkx as nx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.routing import networkx_answer, networkx_full, networkx_graph, random_origins
from geo.hazard_import import DEPTH_RANK, AreaRecord, save_layer
from geo.hazards import HazardLayers
from geo.models import LatLon, Shelter
from geo.region_import import import_region
from geo.routing import (
    EvacuationRouter,
    RoadGraph,
    RouteStatus,
    distance_to_route_m,
    is_off_route,
)
from offline.store import open_store
from protocol.hazards import HazardType, ShelterKind

LAT0, LON0 = 33.95, 131.25
M_LAT, M_LON = 1 / 110_930, 1 / 92_420  # degrees per metre near 34°N
FLOOD = HazardType.FLOOD
REGION = "999999"


def at(x_m: float, y_m: float) -> LatLon:
    """A point x metres east and y metres north of the origin corner."""
    return LatLon(LAT0 + y_m * M_LAT, LON0 + x_m * M_LON)


def grid(cols: int, rows: int, spacing: float = 100.0, x0: float = 0.0, y0: float = 0.0) -> tuple[list, list, list, list, list]:
    lat, lon, eu, ev, length = [], [], [], [], []
    for r in range(rows):
        for c in range(cols):
            p = at(x0 + c * spacing, y0 + r * spacing)
            lat.append(p.lat)
            lon.append(p.lon)
    for r in range(rows):
        for c in range(cols):
            i = r * cols + c
            for j in ((i + 1) if c + 1 < cols else None, (i + cols) if r + 1 < rows else None):
                if j is not None:
                    eu += [i, j]
                    ev += [j, i]
                    length += [spacing, spacing]
    return lat, lon, eu, ev, length


def merge(*parts: tuple[list, list, list, list, list]) -> RoadGraph:
    lat, lon, eu, ev, length = [], [], [], [], []
    for plat, plon, peu, pev, plen in parts:
        offset = len(lat)
        lat += plat
        lon += plon
        eu += [u + offset for u in peu]
        ev += [v + offset for v in pev]
        length += plen
    return RoadGraph(lat, lon, eu, ev, length)


def shelter(sid: str, point: LatLon, hazards=(FLOOD,)) -> Shelter:
    return Shelter(sid, ShelterKind.EMERGENCY_SITE, f"shelter {sid}", "", point.lat, point.lon, frozenset(hazards))


def box(x0: float, y0: float, x1: float, y1: float) -> list:
    a, b = at(x0, y0), at(x1, y1)
    return [[(a.lon, a.lat), (b.lon, a.lat), (b.lon, b.lat), (a.lon, b.lat), (a.lon, a.lat)]]


@pytest.fixture()
def db(tmp_path):
    store = open_store(tmp_path / "r.sqlite")
    yield store
    store.conn.close()


def flood_layer(db, *boxes: tuple[int, tuple[float, float, float, float]]) -> HazardLayers:
    areas = [AreaRecord(level, f"area {k}", [box(*corners)]) for k, (level, corners) in enumerate(boxes)]
    save_layer(db, REGION, FLOOD, name="test", is_scenario=False, level_scheme=DEPTH_RANK, description_ja="試験",
               description_en="test", source="test", licence="test", areas=areas)
    return HazardLayers(db, REGION)


# --- basic routing ----------------------------------------------------------------------------


def test_route_follows_streets_to_the_nearest_suitable_shelter():
    graph = merge(grid(3, 3))
    router = EvacuationRouter(graph,
                              [shelter("near", at(200, 200)), shelter("far", at(200, 500)), shelter("quake", at(0, 10), (HazardType.EARTHQUAKE,))])
    result = router.nearest(at(0, 10), FLOOD, walking_speed_mps=0.5)
    assert result.status is RouteStatus.OK and result.shelter.id == "near"
    assert result.distance_m == pytest.approx(390, abs=1)  # 90 m north, 200 m east… along the grid
    assert result.walking_time_s == pytest.approx(result.distance_m / 0.5)
    assert result.path[0] == (at(0, 10).lat, at(0, 10).lon) and result.path[-1] == (at(200, 200).lat, at(200, 200).lon)
    assert 0 < result.bearing_deg < 90  # north-east
    assert [a.shelter.id for a in result.alternatives] == ["far"]  # the earthquake-only site is not suitable
    assert result.message_key == "route.ok"


def test_a_shelter_on_the_same_street_is_reached_directly():
    router = EvacuationRouter(merge(grid(2, 1, spacing=300)), [shelter("s", at(250, 5))])
    result = router.nearest(at(50, -5), FLOOD)
    assert result.distance_m == pytest.approx(5 + 200 + 5, abs=0.5)
    assert len(result.path) == 4  # origin, on-street start, on-street end, shelter


def test_the_route_names_the_streets_it_follows_in_order():
    lat, lon, eu, ev, length = grid(5, 1)  # four 100 m blocks west to east, each street both ways
    names = [n for n in ("海岸通り", "", "海岸通り", "山手通り") for _ in (0, 1)]
    router = EvacuationRouter(RoadGraph(lat, lon, eu, ev, length, names=names), [shelter("s", at(400, 5))])
    result = router.nearest(at(0, -5), FLOOD)
    # An unnamed gap does not split a street; each is labelled on its (first) longest piece.
    assert [(s.name, round(s.length_m)) for s in result.streets] == [("海岸通り", 200), ("山手通り", 100)]
    assert result.streets[0].at == pytest.approx((at(50, 0).lat, at(50, 0).lon))
    assert EvacuationRouter(merge(grid(5, 1)), [shelter("s", at(400, 5))]).nearest(at(0, -5), FLOOD).streets == []  # no names, none made up


def test_blocked_edges_are_avoided_when_a_clean_route_exists(db):
    # 5 × 3 grid; deep water over the middle column except the top row: walk round by the top.
    layers = flood_layer(db, (2, (150, -50, 250, 150)))
    router = EvacuationRouter(merge(grid(5, 3)), [shelter("east", at(400, 0))], layers)
    result = router.nearest(at(0, 0), FLOOD)
    assert result.status is RouteStatus.OK and result.hazard_exposure_m == 0
    assert result.distance_m == pytest.approx(800, abs=1)
    assert max(lat for lat, _ in result.path) == pytest.approx(at(0, 200).lat)
    plain = EvacuationRouter(merge(grid(5, 3)), [shelter("east", at(400, 0))]).nearest(at(0, 0), FLOOD)
    assert plain.distance_m == pytest.approx(400, abs=1)


def test_with_no_clean_way_the_least_exposed_route_is_taken(db):
    layers = flood_layer(db, (3, (150, -50, 250, 250)))
    router = EvacuationRouter(merge(grid(5, 3)), [shelter("east", at(400, 0))], layers)
    result = router.nearest(at(0, 0), FLOOD)
    assert result.status is RouteStatus.ROUTE_THROUGH_HAZARD
    assert result.message_key == "route.route_through_hazard"
    assert result.hazard_exposure_m == pytest.approx(200, abs=1)  # two edges touch the area: the minimum
    assert result.distance_m == pytest.approx(400, abs=1)


def test_shallow_levels_are_penalised_not_blocked(db):
    # Level 1 costs ×2 (1 + level): the 400 m bottom row inside it costs 800, the clean 600 m detour wins.
    layers = flood_layer(db, (1, (50, -50, 350, 50)))
    router = EvacuationRouter(merge(grid(5, 2)), [shelter("east", at(400, 0))], layers)
    result = router.nearest(at(0, 0), FLOOD)
    assert result.hazard_exposure_m == 0 and result.distance_m == pytest.approx(600, abs=1)
    # Everything shallow: walking through is allowed, it is not a blocked route.
    layers = flood_layer(db, (1, (-50, -50, 450, 150)))
    result = EvacuationRouter(merge(grid(5, 2)), [shelter("east", at(400, 0))], layers).nearest(at(0, 0), FLOOD)
    assert result.status is RouteStatus.OK and result.distance_m == pytest.approx(400, abs=1)


def test_every_shelter_inside_the_hazard_is_reported(db):
    layers = flood_layer(db, (2, (350, -50, 450, 50)))
    router = EvacuationRouter(merge(grid(5, 1)), [shelter("wet", at(400, 0))], layers)
    result = router.nearest(at(0, 0), FLOOD)
    assert result.status is RouteStatus.ALL_SHELTERS_IN_HAZARD and result.shelter.id == "wet"


def test_no_suitable_shelter_gives_the_nearest_site_anyway():
    router = EvacuationRouter(merge(grid(3, 1)), [shelter("quake", at(200, 0), (HazardType.EARTHQUAKE,))])
    result = router.nearest(at(0, 0), FLOOD)
    assert result.status is RouteStatus.NO_SUITABLE_SHELTER and result.shelter.id == "quake" and not result.suitable


def test_a_cut_off_fragment_falls_back_to_the_connected_streets():
    # Main grid with the shelter; a two-node fragment 150 m to its west reaches nothing.
    main, island = grid(3, 3), grid(2, 1, spacing=50, x0=-250, y0=0)
    router = EvacuationRouter(merge(main, island), [shelter("s", at(200, 200))])
    result = router.nearest(at(-240, 5), FLOOD)
    assert result.status is RouteStatus.OK and result.access_m > 200 and not result.straight_line


def test_far_fragment_without_shelter_is_a_straight_line():
    main, island = grid(3, 3), grid(2, 2, spacing=50, x0=3000, y0=0)
    router = EvacuationRouter(merge(main, island), [shelter("s", at(200, 200))])
    result = router.nearest(at(3010, 5), FLOOD)
    assert result.status is RouteStatus.NO_REACHABLE_SHELTER and result.straight_line
    assert result.distance_m == pytest.approx(math.hypot(2810, 195), rel=0.01)


def test_outside_the_network_is_a_straight_line_with_bearing():
    router = EvacuationRouter(merge(grid(3, 3)), [shelter("s", at(200, 200))])
    result = router.nearest(at(200, -5000), FLOOD)
    assert result.status is RouteStatus.OUTSIDE_NETWORK and result.straight_line
    assert result.bearing_deg == pytest.approx(0, abs=0.5)


def test_no_road_network_falls_back_to_straight_lines():
    router = EvacuationRouter(None, [shelter("n", at(0, 1000)), shelter("e", at(2000, 0))])
    result = router.nearest(at(0, 0), FLOOD)
    assert result.status is RouteStatus.NO_ROAD_NETWORK and result.straight_line and result.shelter.id == "n"
    assert result.distance_m == pytest.approx(1000, rel=0.005) and result.bearing_deg == pytest.approx(0, abs=0.5)
    assert [(a.shelter.id, a.straight_line) for a in result.alternatives] == [("e", True)]
    assert router.to_shelter(at(0, 0), FLOOD, "e").bearing_deg == pytest.approx(90, abs=0.5)


def test_far_away_is_outside_the_region():
    router = EvacuationRouter(None, [shelter("n", at(0, 1000))])
    assert router.nearest(LatLon(35.68, 139.76), FLOOD).status is RouteStatus.OUTSIDE_REGION  # Tokyo, from Ube


def test_a_small_area_across_the_middle_of_a_long_street_is_seen(db):
    # One 1 km street and a 1 km detour; 60 m of deep water 300 m along the street (not at its middle).
    layers = flood_layer(db, (2, (270, -20, 330, 20)))
    lat, lon, eu, ev, length = grid(2, 2, spacing=1000)
    router = EvacuationRouter(RoadGraph(lat, lon, eu, ev, length), [shelter("s", at(1000, 0))], layers)
    result = router.nearest(at(0, 0), FLOOD)
    assert result.hazard_exposure_m == 0 and result.distance_m == pytest.approx(3000, abs=1)


def test_no_shelter_and_unknown_shelter_and_bad_speed():
    router = EvacuationRouter(merge(grid(2, 2)), [])
    assert router.nearest(at(0, 0), FLOOD).status is RouteStatus.NO_SHELTER
    assert router.to_shelter(at(0, 0), FLOOD, "nope").status is RouteStatus.UNKNOWN_SHELTER
    with pytest.raises(ValueError, match="walking_speed_mps"):
        router.nearest(at(0, 0), FLOOD, walking_speed_mps=0)


def test_to_a_chosen_shelter_and_its_suitability():
    shelters = [shelter("near", at(100, 0)), shelter("quake", at(300, 200), (HazardType.EARTHQUAKE,))]
    router = EvacuationRouter(merge(grid(4, 3)), shelters)
    result = router.to_shelter(at(0, 0), FLOOD, "quake")
    assert result.shelter.id == "quake" and not result.suitable
    assert result.distance_m == pytest.approx(500, abs=1)


def test_building_the_indexes_leaves_the_cycle_collector_as_it_was():
    # Paused while the network's small objects are built, which are then kept out of its reach.
    try:
        for enabled in (True, False):
            (gc.enable if enabled else gc.disable)()
            router = EvacuationRouter(merge(grid(3, 3)), [shelter("s", at(100, 100))])
            router.warm_up()
            ground = router.graph.edge_ground_m()  # built by warm_up
            assert gc.isenabled() is enabled
            assert gc.is_tracked(ground) and not any(o is ground for o in gc.get_objects())  # frozen
    finally:
        gc.enable()


def test_off_route_detection():
    path = [(at(0, 0).lat, at(0, 0).lon), (at(100, 0).lat, at(100, 0).lon)]
    assert distance_to_route_m(at(50, 20), path) == pytest.approx(20, abs=0.2)
    assert not is_off_route(at(50, 20), path) and is_off_route(at(50, 45), path)
    assert is_off_route(at(150, 0), path, threshold_m=40)


# --- properties on small random networks ------------------------------------------------------


def _clean_way_exists(router: EvacuationRouter, point: LatLon) -> bool:
    """networkx on the unblocked edges only, with the same start and arrival options."""
    prep, g = router._prepared[FLOOD], router.graph
    clean = nx.DiGraph((g.edge_u[e], g.edge_v[e]) for e in range(g.edge_count) if not prep.blocked[e])
    starts = router._starts(point, prep) or []
    clean.add_edges_from(("O", s[0]) for s in starts if not prep.blocked[s[3]])
    clean.add_edges_from((a[0], "T") for t in prep.targets for a in t.attach if not prep.blocked[a[3]])
    direct = any(a[3] == s[3] and a[4] >= s[4] and not prep.blocked[s[3]] for s in starts for t in prep.targets for a in t.attach)
    return direct or (clean.has_node("O") and clean.has_node("T") and nx.has_path(clean, "O", "T"))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cols=st.integers(3, 6),
    rows=st.integers(2, 5),
    blocks=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 4), st.integers(1, 2), st.integers(1, 2)), max_size=4),
    origin=st.tuples(st.floats(0, 500), st.floats(0, 400)),
    seed=st.integers(0, 10_000),
)
def test_property_a_route_never_uses_a_blocked_edge_when_a_clean_one_exists(db, cols, rows, blocks, origin, seed):
    rnd = random.Random(seed)
    lat, lon, eu, ev, length = grid(cols, rows)
    length = [ln * rnd.uniform(1.0, 1.5) for ln in length]
    graph = RoadGraph(lat, lon, eu, ev, length)
    boxes = [(2, (c * 100 - 40, r * 100 - 40, (c + w) * 100 - 60, (r + h) * 100 - 60)) for c, r, w, h in blocks]
    layers = flood_layer(db, *boxes) if boxes else None
    shelters = [shelter(f"s{k}", at(rnd.randrange(cols) * 100, rnd.randrange(rows) * 100)) for k in range(2)]
    router = EvacuationRouter(graph, shelters, layers)
    point = at(min(origin[0], (cols - 1) * 100), min(origin[1], (rows - 1) * 100))
    result = router.nearest(point, FLOOD)
    assert result.status in (RouteStatus.OK, RouteStatus.ROUTE_THROUGH_HAZARD, RouteStatus.ALL_SHELTERS_IN_HAZARD)
    if result.status is not RouteStatus.ALL_SHELTERS_IN_HAZARD and _clean_way_exists(router, point):
        assert result.hazard_exposure_m == 0
    cost, _ = networkx_answer(router, networkx_graph(router, FLOOD), FLOOD, point)
    assert result.cost == pytest.approx(cost, rel=1e-9, abs=1e-6)


# --- the real networks ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ube_router(ube_store_file, tmp_path_factory):
    path = tmp_path_factory.mktemp("ube_routing") / "mamori.sqlite"
    shutil.copy(ube_store_file, path)
    db = open_store(path)
    router = EvacuationRouter.for_region(db, "352021")
    yield router
    db.conn.close()


@pytest.mark.parametrize("hazard", [HazardType.TSUNAMI, HazardType.STORM_SURGE, HazardType.EARTHQUAKE])
def test_ube_routes_equal_networkx_on_a_sample(ube_router, hazard):
    ube_router.prepare(hazard)
    graph = networkx_graph(ube_router, hazard)
    for point in random_origins(ube_router.graph, 25, seed=hash(hazard.value) % 1000):
        result = ube_router.nearest(point, hazard)
        cost, length = networkx_answer(ube_router, graph, hazard, point)
        assert result.cost == pytest.approx(cost, rel=1e-9)
        assert result.distance_m == pytest.approx(length, rel=1e-3)
        ranking = networkx_full(ube_router, graph, hazard, point, 1 + len(result.alternatives))
        assert [a.shelter.id for a in result.alternatives] == [sid for _, sid in ranking[1:]] or len({round(c, 6) for c, _ in ranking}) < len(ranking)


def test_ube_tsunami_route_prefers_leaving_low_ground(ube_router):
    low = LatLon(33.9395, 131.2470)  # port area, a few metres above sea level
    result = ube_router.nearest(low, HazardType.TSUNAMI, walking_speed_mps=0.6)
    assert result.status is RouteStatus.OK and HazardType.TSUNAMI in result.shelter.hazards
    assert result.walking_time_s == pytest.approx(result.distance_m / 0.6)
    assert len(result.alternatives) == 3 and all(a.distance_m > 0 for a in result.alternatives)
    assert not is_off_route(LatLon(*result.path[len(result.path) // 2]), result.path)


def test_aizu_has_no_roads_so_routes_are_straight_lines(aizu, tmp_path):
    db = open_store(tmp_path / "aizu.sqlite")
    import_region(db, aizu)
    router = EvacuationRouter.for_region(db, aizu.code)
    result = router.nearest(LatLon(37.4948, 139.9298), HazardType.FLOOD)  # near 会津若松 city hall
    assert result.status is RouteStatus.NO_ROAD_NETWORK and result.straight_line and result.shelter is not None
    assert result.distance_m < 3000 and len(result.alternatives) == 3
    db.conn.close()
