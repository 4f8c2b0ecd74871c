"""Hazard layers: official-shape import, scenario derivation, drawing shapes and "Must I evacuate?"."""
from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest
import shapefile

from geo.ground import GroundModel, derive_scenario_areas
from geo.hazard_import import (
    DEPTH_RANK,
    SEDIMENT_ZONE,
    depth_rank,
    import_hazard_file,
    read_hazard_areas,
    save_layer,
)
from geo.hazards import (
    UNKNOWN_GROUND,
    HazardLayers,
    ensure_scenario_layers,
    point_in_polygon,
)
from geo.models import LatLon
from geo.regionfiles import RegionFileError
from offline.store import open_store
from protocol.hazards import HazardType

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "hazard"
REGION = "352021"


@pytest.fixture()
def db(tmp_path):
    store = open_store(tmp_path / "h.sqlite")
    yield store
    store.conn.close()


def test_depth_ranks_follow_the_ksj_bands():
    assert [depth_rank(d) for d in (0, 0.2, 0.5, 2.9, 3.0, 7, 15, 25)] == [0, 1, 2, 2, 3, 4, 5, 6]


def test_a31_ranks_names_and_holes_are_read():
    hazard, scheme, areas = read_hazard_areas(FIXTURES / "a31_flood.geojson")
    assert (hazard, scheme) == (HazardType.FLOOD, DEPTH_RANK)
    assert [a.level for a in areas] == [1, 2]
    assert areas[0].name == "厚東川" and len(areas[0].polygons[0]) == 2  # outer ring + hole


def test_a33_zones_and_a40_depth_texts_are_normalised():
    hazard, scheme, areas = read_hazard_areas(FIXTURES / "a33_landslide.geojson")
    assert (hazard, scheme, [a.level for a in areas]) == (HazardType.LANDSLIDE, SEDIMENT_ZONE, [1, 2])
    assert areas[1].name == "上町地区"
    hazard, _, areas = read_hazard_areas(FIXTURES / "a40_tsunami.geojson")
    assert hazard is HazardType.TSUNAMI and [a.level for a in areas] == [1, 4]  # 0.3–1.0 m → rank 1, 5–10 m → 4


def _write_geojson(path: Path, features: list) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    return path


SQUARE = [[[131.24, 33.94], [131.25, 33.94], [131.25, 33.95], [131.24, 33.95], [131.24, 33.94]]]


@pytest.mark.parametrize(
    "feature, problem",
    [
        ({"type": "Feature", "properties": {"A31_001": 9}, "geometry": {"type": "Polygon", "coordinates": SQUARE}}, "outside 1..6"),
        ({"type": "Feature", "properties": {"A31_001": 1}, "geometry": {"type": "Point", "coordinates": [131.2, 33.9]}}, "Polygon"),
        ({"type": "Feature", "properties": {"A31_001": 1}, "geometry": {"type": "Polygon", "coordinates": [[[500000, 3750000]] * 4]}},
         "outside Japan"),
        ({"type": "Feature", "properties": {"A31_001": None}, "geometry": {"type": "Polygon", "coordinates": SQUARE}}, "no level"),
    ],
)
def test_bad_features_are_named(tmp_path, feature, problem):
    path = _write_geojson(tmp_path / "bad.geojson", [feature])
    with pytest.raises(RegionFileError, match=problem) as caught:
        read_hazard_areas(path)
    assert caught.value.where == "feature 0"


def test_generic_file_needs_a_hazard(tmp_path):
    path = _write_geojson(tmp_path / "mine.geojson",
                          [{"type": "Feature", "properties": {"level": 2}, "geometry": {"type": "Polygon", "coordinates": SQUARE}}])
    with pytest.raises(RegionFileError, match="pass the hazard type"):
        read_hazard_areas(path)
    assert read_hazard_areas(path, HazardType.INLAND_FLOOD)[0] is HazardType.INLAND_FLOOD


def test_zipped_shapefile_is_read(tmp_path):
    shp, shx, dbf = io.BytesIO(), io.BytesIO(), io.BytesIO()
    with shapefile.Writer(shp=shp, shx=shx, dbf=dbf, shapeType=shapefile.POLYGON, encoding="cp932") as writer:
        writer.field("A33_001", "N")
        writer.field("A33_002", "N")
        writer.field("A33_005", "C", size=40)
        writer.poly([[tuple(p) for p in SQUARE[0]][::-1]])  # shapefile outer rings run clockwise
        writer.record(1, 2, "下町地区")
    path = tmp_path / "A33-20_35.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for ext, buf in (("shp", shp), ("shx", shx), ("dbf", dbf)):
            archive.writestr(f"A33-20_35.{ext}", buf.getvalue())
    hazard, scheme, areas = read_hazard_areas(path)
    assert (hazard, scheme, areas[0].level, areas[0].name) == (HazardType.LANDSLIDE, SEDIMENT_ZONE, 2, "下町地区")


def test_import_fills_the_rtree_and_replaces_on_reimport(db):
    import_hazard_file(db, REGION, FIXTURES / "a31_flood.geojson")
    assert db["hazard_area"].count == 2
    assert db.execute("SELECT count(*) FROM hazard_area_rtree").fetchone()[0] == 2
    import_hazard_file(db, REGION, FIXTURES / "a31_flood.geojson")
    assert db["hazard_area"].count == 2 and db["hazard_layer"].count == 1
    credits = [(r["dataset"], r["licence"]) for r in db["dataset"].rows]
    assert credits == [("hazard:flood:a31_flood", "出典：国土数値情報（国土交通省）")]
    assert db.execute("SELECT count(*) FROM hazard_area_rtree").fetchone()[0] == 2


def test_a_bad_file_leaves_the_previous_layer(db, tmp_path):
    import_hazard_file(db, REGION, FIXTURES / "a31_flood.geojson")
    bad = tmp_path / "a31_flood.geojson"
    bad.write_text('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"A31_001": 1}, "geometry": null}]}')
    with pytest.raises(RegionFileError):
        import_hazard_file(db, REGION, bad)
    assert db["hazard_area"].count == 2


def test_point_in_polygon_respects_holes():
    outer = [(0, 0), (10, 0), (10, 10), (0, 10), (0, 0)]
    hole = [(4, 4), (6, 4), (6, 6), (4, 6), (4, 4)]
    assert point_in_polygon(2, 2, [outer, hole])
    assert not point_in_polygon(5, 5, [outer, hole])
    assert not point_in_polygon(11, 5, [outer, hole])


def test_assess_inside_outside_hole_and_deepest_level(db):
    import_hazard_file(db, REGION, FIXTURES / "a31_flood.geojson")
    layers = HazardLayers(db, REGION)
    deep = layers.assess(LatLon(33.947, 131.247), HazardType.FLOOD)
    assert (deep.must_evacuate, deep.level, deep.area_name, deep.is_scenario) == (True, 2, "厚東川", False)
    assert deep.level_key == "hazard.level.depth_rank.2"
    assert layers.assess(LatLon(33.9565, 131.2565), HazardType.FLOOD).reason_key == "assess.outside_area"  # in the hole
    assert layers.assess(LatLon(33.99, 131.30), HazardType.FLOOD).must_evacuate is False
    no_map = layers.assess(LatLon(33.947, 131.247), HazardType.VOLCANO)
    assert (no_map.reason_key, no_map.known, no_map.must_evacuate) == ("assess.no_map", False, False)


@pytest.mark.parametrize(
    "alert, early, must, reason",
    [
        (None, False, True, "assess.in_area"),
        (2, True, False, "assess.alert_prepare"),
        (3, False, False, "assess.alert3_prepare"),
        (3, True, True, "assess.alert3_early"),
        (4, False, True, "assess.alert4_evacuate"),
        (5, False, True, "assess.alert5_secure_safety"),
    ],
)
def test_alert_levels_decide_who_leaves(db, alert, early, must, reason):
    import_hazard_file(db, REGION, FIXTURES / "a33_landslide.geojson")
    advice = HazardLayers(db, REGION).assess(LatLon(33.973, 131.273), HazardType.LANDSLIDE, alert_level=alert, early=early)
    assert (advice.must_evacuate, advice.reason_key, advice.level) == (must, reason, 2)


def test_tsunami_alert_means_leave_now_and_bad_alert_is_refused(db):
    import_hazard_file(db, REGION, FIXTURES / "a40_tsunami.geojson")
    layers = HazardLayers(db, REGION)
    assert layers.assess(LatLon(33.935, 131.22), HazardType.TSUNAMI, alert_level=2).reason_key == "assess.tsunami_leave_now"
    with pytest.raises(ValueError, match=r"1\.\.5"):
        layers.assess(LatLon(33.935, 131.22), HazardType.TSUNAMI, alert_level=7)


def test_shapes_are_lat_lon_rings_with_holes(db):
    layer_id = import_hazard_file(db, REGION, FIXTURES / "a31_flood.geojson")
    shapes = HazardLayers(db, REGION).shapes(layer_id)
    shallow = next(s for s in shapes if s.level == 1)
    assert shallow.outer[0] == (33.940, 131.240) and len(shallow.holes) == 1


M_LAT = 1 / 111_320  # degrees of latitude per metre
M_LON = 1 / (111_320 * math.cos(math.radians(33.95)))


def _row(lat: float, lon0: float, metres: range, elev: float) -> list[tuple[float, float, float]]:
    return [(lat, lon0 + m * M_LON, elev) for m in metres]


def test_ground_between_road_points_is_interpolated_within_the_radius_else_unknown():
    samples = _row(33.95, 131.25, range(0, 1001, 100), 3.0) + _row(33.95 + 200 * M_LAT, 131.25, range(0, 1001, 100), 7.0)
    model = GroundModel(samples)
    heights, known, _ = model.heights(np.array([33.95 + 100 * M_LAT, 33.95 + 600 * M_LAT]), np.array([131.25 + 450 * M_LON] * 2))
    assert known.tolist() == [True, False]
    assert 4.0 < heights[0] < 6.0  # halfway between the 3 m and the 7 m rows


def test_scenario_contours_rank_depth_and_leave_no_holes_between_road_points():
    # Low ground (1 m) on the west, hills (30 m) on the east; road points 150 m apart, so most
    # 100 m cells hold no point (the old grid left those cells "outside").
    samples = [(33.95 + i * 150 * M_LAT, 131.25 + j * 150 * M_LON, 1.0 if j < 6 else 30.0) for i in range(8) for j in range(12)]
    areas = derive_scenario_areas(GroundModel(samples), 5.0)
    known = [a for a in areas if a.name != UNKNOWN_GROUND]

    def level_at(lat: float, lon: float) -> int:
        return max((a.level for a in known if any(point_in_polygon(lon, lat, p) for p in a.polygons)), default=0)

    between = (33.95 + 525 * M_LAT, 131.25 + 375 * M_LON)  # 106 m from the nearest road point
    assert level_at(*between) == 3  # depth 4 m under a 5 m scenario: rank 3 (3–5 m)
    assert level_at(33.95 + 525 * M_LAT, 131.25 + 1500 * M_LON) == 0  # on the hills
    # Smooth shapes, not cells: most rings have other than 4 distinct corners.
    assert sum(len({p for p in ring}) != 4 for a in known for p in a.polygons for ring in p) > len(known) / 2


def test_unknown_ground_near_the_water_level_counts_as_at_risk(db):
    low = [(33.95 + i * 50 * M_LAT, 131.25 + j * 50 * M_LON, 3.0) for i in range(5) for j in range(5)]
    high = [(33.95 + i * 50 * M_LAT, 131.30 + j * 50 * M_LON, 40.0) for i in range(5) for j in range(5)]
    model = GroundModel(low + high)
    save_layer(db, REGION, HazardType.TSUNAMI, name="s", is_scenario=True, level_scheme=DEPTH_RANK, description_ja="",
               description_en="", source="", licence="", areas=derive_scenario_areas(model, 5.0),
               params={"coverage": [131.24, 33.94, 131.32, 33.97]})
    layers = HazardLayers(db, REGION)
    beside_low = layers.assess(LatLon(33.95 + 100 * M_LAT, 131.25 + 600 * M_LON), HazardType.TSUNAMI)  # 400 m from low road points
    assert (beside_low.must_evacuate, beside_low.known, beside_low.reason_key) == (True, False, "assess.ground_unknown_low")
    beside_high = layers.assess(LatLon(33.95 + 100 * M_LAT, 131.30 - 400 * M_LON), HazardType.TSUNAMI)
    assert (beside_high.must_evacuate, beside_high.known, beside_high.reason_key) == (False, False, "assess.ground_unknown")
    on_low = layers.assess(LatLon(33.95 + 100 * M_LAT, 131.25 + 100 * M_LON), HazardType.TSUNAMI)
    assert (on_low.must_evacuate, on_low.known, on_low.level) == (True, True, 2)
    far = layers.assess(LatLon(34.5, 131.9), HazardType.TSUNAMI)
    assert (far.must_evacuate, far.known, far.reason_key) == (False, False, "assess.no_data_here")
    none = layers.assess(LatLon(33.95, 131.25), HazardType.FLOOD)
    assert (none.must_evacuate, none.known, none.reason_key) == (False, False, "assess.no_map")


def test_ube_scenarios_are_derived_once_labelled_and_rederived_after_roads_change(ube_db):
    layers = HazardLayers.for_region(ube_db, REGION)
    scenario = layers.layers(HazardType.TSUNAMI)
    assert len(scenario) == 1 and scenario[0].is_scenario
    # The screens label every scenario layer "not an official hazard map" (tests/test_views.py);
    # the description says what was assumed.
    assert scenario[0].is_scenario and "5 m elevation" in scenario[0].description("en") and "標高5m未満" in scenario[0].description("ja")
    assert scenario[0].area_count > 100
    assert ensure_scenario_layers(ube_db, REGION) == []  # cached
    ube_db.execute("UPDATE dataset SET imported_at = '2099-01-01T00:00:00+00:00' WHERE region = ? AND dataset = 'roads'", [REGION])
    assert len(ensure_scenario_layers(ube_db, REGION)) == 2
    # 宇部 port area is reclaimed land a few metres above sea level: inside the tsunami scenario.
    advice = layers.assess(LatLon(33.9395, 131.2470), HazardType.TSUNAMI)
    assert advice.is_scenario and advice.must_evacuate
    high = layers.assess(LatLon(33.99, 131.27), HazardType.TSUNAMI)  # hills north of the centre
    assert (high.must_evacuate, high.reason_key, high.is_scenario) == (False, "assess.outside_area", True)
    # Issue 12: a coastal home between roads at 2.8–3.9 m was "outside" (a cell with no road point).
    for hazard in (HazardType.TSUNAMI, HazardType.STORM_SURGE):
        coastal = layers.assess(LatLon(33.9420, 131.2480), hazard)
        assert coastal.must_evacuate and coastal.known and coastal.level >= 1, hazard


def test_official_layer_takes_precedence_over_the_scenario(ube_db, tmp_path):
    layers = HazardLayers.for_region(ube_db, REGION)
    import_hazard_file(ube_db, REGION, FIXTURES / "a40_tsunami.geojson")
    active = layers.active_layers(HazardType.TSUNAMI)
    assert [layer.is_scenario for layer in active] == [False]
    assert len(layers.layers(HazardType.TSUNAMI)) == 2
