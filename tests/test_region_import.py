"""Region import: both GSI formats, P20 capacity, roads, boundary; idempotent and atomic."""
from __future__ import annotations

import json
import shutil

import pytest

from geo import region_import
from geo.region_import import import_region, import_shelters
from geo.regionfiles import RegionFileError, read_shelters
from geo.regions import find_region
from offline.store import open_store
from protocol.hazards import HazardType, ShelterKind
from tests.conftest import FIXTURES, copy_region


def counts(db, region="352021"):
    return {
        "emergency_site": db.execute("SELECT count(*) FROM shelter WHERE region=? AND kind='emergency_site'", [region]).fetchone()[0],
        "designated_shelter": db.execute("SELECT count(*) FROM shelter WHERE region=? AND kind='designated_shelter'", [region]).fetchone()[0],
        "rtree": db.execute("SELECT count(*) FROM shelter_rtree").fetchone()[0],
        "roads": db.execute("SELECT count(*) FROM road_edge WHERE region=?", [region]).fetchone()[0],
    }


def test_ube_imports_every_dataset_with_source_and_licence(ube_db):
    assert counts(ube_db) == {"emergency_site": 108, "designated_shelter": 62, "rtree": 170, "roads": 30750}
    datasets = {r["dataset"]: r for r in ube_db["dataset"].rows}
    assert set(datasets) == {"emergency_site", "designated_shelter", "roads"}
    assert "OpenStreetMap" in datasets["roads"]["licence"]
    assert "国土地理院" in datasets["emergency_site"]["licence"] and "国土数値情報" in datasets["emergency_site"]["licence"]
    assert all(r["imported_at"].endswith("+00:00") for r in datasets.values())


def test_p20_capacity_is_matched_to_gsi_sites(ube_db):
    row = ube_db.execute("SELECT capacity FROM shelter WHERE kind='emergency_site' AND name='鵜の島ふれあいセンター'").fetchone()
    assert row == (100,)
    matched = ube_db.execute("SELECT count(*) FROM shelter WHERE capacity IS NOT NULL").fetchone()[0]
    assert 40 <= matched <= 100  # 42 P20 points; a facility can be both a site and a shelter


def test_hazard_flags_follow_the_file_and_shelters_stay_unassessed(ube_db, ube):
    raw = json.loads(ube.emergency_sites_file.read_text(encoding="utf-8"))
    expected = sum(1 for f in raw["features"] if f["properties"]["津波"] == "1")
    assert ube_db.execute("SELECT count(*) FROM shelter WHERE tsunami = 1").fetchone()[0] == expected
    assert ube_db.execute("SELECT count(*) FROM shelter WHERE kind='designated_shelter' AND tsunami IS NOT NULL").fetchone()[0] == 0


def test_reimport_replaces_and_never_duplicates(ube_db, ube):
    before = counts(ube_db)
    import_region(ube_db, ube)
    import_region(ube_db, ube)
    assert counts(ube_db) == before
    assert ube_db.execute("SELECT count(*) FROM dataset").fetchone()[0] == 3


def test_aizu_loads_shelters_and_boundary_without_roads(tmp_path, aizu):
    db = open_store(tmp_path / "m.sqlite")
    infos = import_region(db, aizu)
    assert {i.dataset: i.feature_count for i in infos} == {"emergency_site": 199, "designated_shelter": 102, "boundary": 1}
    assert db.execute("SELECT name FROM boundary").fetchone() == ("会津若松市",)
    assert db.execute("SELECT name FROM region_info").fetchone() == ("福島県会津若松市",)
    assert counts(db, "072028")["roads"] == 0


def test_gsi_csv_download_format_utf8_bom(tmp_path):
    sites = read_shelters(FIXTURES / "regions" / "gsi_sites_sample.csv")
    assert [s.kind for s in sites] == [ShelterKind.EMERGENCY_SITE] * 3
    assert sites[0].hazards == {HazardType.FLOOD, HazardType.EARTHQUAKE, HazardType.TSUNAMI, HazardType.INLAND_FLOOD}
    assert sites[1].note == "高台" and sites[0].same_address_as_other_kind
    shelters = read_shelters(FIXTURES / "regions" / "gsi_shelters_sample.csv")
    assert shelters[1].kind is ShelterKind.DESIGNATED_SHELTER and shelters[1].accepts == "高齢者"


def test_gsi_csv_in_shift_jis(tmp_path):
    text = (FIXTURES / "regions" / "gsi_sites_sample.csv").read_text(encoding="utf-8-sig")
    sjis = tmp_path / "sites_sjis.csv"
    sjis.write_bytes(text.encode("cp932"))
    assert [s.name for s in read_shelters(sjis)] == ["みなと第一小学校", "高台公園", "川べり広場"]


def test_csv_region_folder_imports(tmp_path):
    folder = tmp_path / "regions" / "minato-999999"
    folder.mkdir(parents=True)
    shutil.copy(FIXTURES / "regions" / "gsi_sites_sample.csv", folder / "gsi_emergency_sites.csv")
    shutil.copy(FIXTURES / "regions" / "gsi_shelters_sample.csv", folder / "gsi_designated_shelters.csv")
    db = open_store(tmp_path / "m.sqlite")
    infos = import_region(db, find_region(tmp_path, "999999"))
    assert [(i.dataset, i.feature_count) for i in infos] == [("emergency_site", 3), ("designated_shelter", 2)]


@pytest.mark.parametrize(
    "damage, where",
    [
        (lambda d: d.__setitem__("features",
                                 [*d["features"][:3],
                                  {"type": "Feature", "geometry": {"type": "Point", "coordinates": ["x", 33.9]},
                                   "properties": d["features"][3]["properties"]}]), "feature 3"),
        (lambda d: d["features"][5]["properties"].pop("共通ID"), "feature 5"),
        (lambda d: d["features"][7]["properties"].__setitem__("津波", "yes"), "feature 7"),
        (lambda d: d["features"][2].__setitem__("geometry", {"type": "Point", "coordinates": [33.9, 131.2]}), "feature 2"),
        (lambda d: d["features"][9].__setitem__("geometry", None), "feature 9"),
    ],
)
def test_malformed_feature_is_named_and_previous_data_kept(ube_db, ube, tmp_path, damage, where):
    region = copy_region(ube, tmp_path, skip=("roads_walk.geojson",))
    data = json.loads(region.emergency_sites_file.read_text(encoding="utf-8"))
    damage(data)
    region.emergency_sites_file.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    before = counts(ube_db)
    with pytest.raises(RegionFileError) as err:
        import_region(ube_db, region)
    assert err.value.path.name == "gsi_emergency_sites.geojson" and err.value.where == where
    assert str(err.value).startswith(f"gsi_emergency_sites.geojson: {where}: ")
    assert counts(ube_db) == before


def test_broken_json_names_the_line(tmp_path):
    bad = tmp_path / "gsi_emergency_sites.geojson"
    bad.write_text('{"type": "FeatureCollection",\n "features": [\n {"type": "Feature",, }]}', encoding="utf-8")
    with pytest.raises(RegionFileError, match=r"gsi_emergency_sites.geojson: line 3 column \d+: invalid JSON"):
        read_shelters(bad)


def test_broken_csv_row_names_the_line(tmp_path):
    bad = tmp_path / "sites.csv"
    text = (FIXTURES / "regions" / "gsi_sites_sample.csv").read_text(encoding="utf-8-sig")
    bad.write_text(text.replace("33.96,131.26", "北緯33.96,131.26"), encoding="utf-8")
    with pytest.raises(RegionFileError, match=r"sites\.csv: line 3: coordinates are not numbers"):
        read_shelters(bad)


def test_damaged_p20_zip_is_reported(ube, tmp_path):
    region = copy_region(ube, tmp_path, skip=("roads_walk.geojson",))
    region.p20_file.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(RegionFileError, match=r"shelters_p20_ksj\.zip: file: not a readable zip"):
        import_region(open_store(tmp_path / "m.sqlite"), region)


def test_failure_inside_the_transaction_rolls_back(ube_db, ube, monkeypatch):
    before = counts(ube_db)

    def explode(db, info):
        raise OSError("disk full while recording")

    monkeypatch.setattr(region_import, "_record", explode)
    with pytest.raises(OSError):
        import_shelters(ube_db, "352021", ShelterKind.EMERGENCY_SITE, ube.emergency_sites_file)
    assert counts(ube_db) == before


def test_migrations_apply_once(tmp_path):
    path = tmp_path / "m.sqlite"
    open_store(path).conn.close()
    from offline.store import migrate

    db = open_store(path)
    assert migrate(db) == []
    assert db.execute("SELECT count(*) FROM _migrations").fetchone()[0] >= 1
