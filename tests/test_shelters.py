"""Shelter queries: filters, search, distance sort, and nearest-N through the R*Tree."""
from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from app.shelters import ShelterDirectory
from geo.models import LatLon
from protocol.hazards import HazardType, ShelterKind


def test_filter_by_each_hazard_matches_the_file(ube_db, ube):
    raw = json.loads(ube.emergency_sites_file.read_text(encoding="utf-8"))["features"]
    d = ShelterDirectory(ube_db, "352021")
    for hazard in HazardType:
        expected = sum(1 for f in raw if f["properties"][hazard.gsi_column] == "1")
        assert d.count(hazard) == expected == len(d.search(hazard=hazard))


def test_search_by_name_and_address_words(ube_db):
    d = ShelterDirectory(ube_db, "352021")
    hits = d.search("鵜の島")
    assert hits and all("鵜の島" in h.shelter.name or "鵜の島" in h.shelter.address for h in hits)
    assert d.search("宇部市 鵜の島町") and not d.search("存在しない施設名")
    assert {h.shelter.kind for h in d.search(kind=ShelterKind.DESIGNATED_SHELTER)} == {ShelterKind.DESIGNATED_SHELTER}


def test_distance_sort_is_ascending(ube_db):
    hits = ShelterDirectory(ube_db, "352021").search(origin=LatLon(33.95, 131.25))
    distances = [h.distance_m for h in hits]
    assert distances == sorted(distances) and len(distances) == 170


def test_user_text_cannot_inject_sql(ube_db):
    assert ShelterDirectory(ube_db, "352021").search("%' OR 1=1 --") == []


@settings(max_examples=60, deadline=None)
@given(
    lat=st.floats(33.80, 34.10),
    lon=st.floats(131.10, 131.45),
    n=st.integers(1, 25),
    hazard=st.sampled_from([None, *HazardType]),
)
def test_nearest_equals_full_scan(ube_store_file, lat, lon, n, hazard):
    from offline.store import open_store

    db = open_store(ube_store_file)
    d = ShelterDirectory(db, "352021")
    origin = LatLon(lat, lon)
    fast = [(h.shelter.id, round(h.distance_m, 3)) for h in d.nearest(origin, n, hazard)]
    slow = [(h.shelter.id, round(h.distance_m, 3)) for h in d.nearest_full_scan(origin, n, hazard)]
    assert [x[1] for x in fast] == [x[1] for x in slow]
    db.conn.close()


def test_nearest_reads_the_spatial_index_not_every_row(ube_db):
    plan = " ".join(
        str(r)
        for r in ube_db.execute(
            "EXPLAIN QUERY PLAN SELECT rowid FROM shelter WHERE rowid IN "
            "(SELECT rowid FROM shelter_rtree WHERE min_lat >= 1 AND max_lat <= 2 AND min_lon >= 1 AND max_lon <= 2)"
        )
    )
    assert "VIRTUAL TABLE INDEX" in plan and "shelter_rtree" in plan


def test_nearest_with_no_suitable_shelter_is_empty(tmp_path, aizu):
    from geo.region_import import import_region
    from offline.store import open_store

    db = open_store(tmp_path / "m.sqlite")
    import_region(db, aizu)
    d = ShelterDirectory(db, "072028")
    assert d.count(HazardType.STORM_SURGE) == 0
    assert d.nearest(LatLon(37.49, 139.93), 5, HazardType.STORM_SURGE) == []
    assert len(d.nearest(LatLon(37.49, 139.93), 5)) == 5
