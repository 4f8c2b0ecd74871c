"""Hazard layers: official-shape import, scenario derivation, drawing shapes and "Must I evacuate?"."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
import shapefile

from geo.hazard_import import (
    DEPTH_RANK,
    SEDIMENT_ZONE,
    depth_rank,
    import_hazard_file,
    read_hazard_areas,
)
from geo.hazards import (
    HazardLayers,
    derive_scenario_areas,
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
    assert layers.assess(LatLon(33.947, 131.247), HazardType.VOLCANO).reason_key == "assess.no_map"


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


def test_scenario_cells_rank_depth_below_the_water_level():
    # Two cells: one at 1 m (depth 4 m under a 5 m scenario → rank 3), one at 30 m (dry).
    samples = [(33.9500, 131.2500, 1.0), (33.9501, 131.2501, 1.0), (33.9600, 131.2600, 30.0)]
    areas = derive_scenario_areas(samples, 5.0)
    assert [a.level for a in areas] == [3]
    ring = areas[0].polygons[0][0]
    assert point_in_polygon(131.2500, 33.9500, [ring]) and not point_in_polygon(131.26, 33.96, [ring])


def test_same_level_neighbour_cells_merge_into_one_rectangle():
    step = 100 / 92_300  # about one 100 m cell of longitude at 34°N
    samples = [(33.95, 131.25 + k * step, 2.0) for k in range(5)]
    assert len(derive_scenario_areas(samples, 5.0)) == 1


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


def test_official_layer_takes_precedence_over_the_scenario(ube_db, tmp_path):
    layers = HazardLayers.for_region(ube_db, REGION)
    import_hazard_file(ube_db, REGION, FIXTURES / "a40_tsunami.geojson")
    active = layers.active_layers(HazardType.TSUNAMI)
    assert [layer.is_scenario for layer in active] == [False]
    assert len(layers.layers(HazardType.TSUNAMI)) == 2
