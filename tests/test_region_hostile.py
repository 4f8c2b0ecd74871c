"""Hostile region files (issue 15): every malformed file is a RegionFileError naming it, the
previous data stays, memory stays bounded, the app still starts, and a national file
imports only the region's own sites."""
from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import shapefile

from app.config import parse_args
from geo.region_import import import_region, import_roads, import_shelters
from geo.regionfiles import RegionFileError, read_p20_capacities, read_shelters
from main import build_app
from offline.store import open_store
from protocol.hazards import ShelterKind
from tests.conftest import copy_region
from tests.region_fuzz import zip_bomb

ROOT = Path(__file__).resolve().parent.parent
FUZZ_FILES_PER_KIND = 170  # six kinds: 1,020 files


def _p20_zip(capacity: float) -> bytes:
    shp, shx, dbf = io.BytesIO(), io.BytesIO(), io.BytesIO()
    with shapefile.Writer(shp=shp, shx=shx, dbf=dbf, shapeType=shapefile.POINT, encoding="utf-8") as writer:
        writer.field("P20_002", "C", 40)
        writer.field("P20_003", "C", 40)
        writer.field("P20_005", "F", 20, 2)
        writer.point(131.25, 33.95)
        writer.record("小学校", "宇部市", capacity)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in (("P20.shp", shp), ("P20.shx", shx), ("P20.dbf", dbf)):
            archive.writestr(name, data.getvalue())
        archive.writestr("P20.cpg", b"UTF-8")
    return out.getvalue()


@pytest.mark.parametrize("capacity", [float("inf"), float("nan"), 1e300])
def test_p20_capacity_beyond_reason_is_no_capacity(tmp_path, capacity):
    path = tmp_path / "shelters_p20_ksj.zip"
    path.write_bytes(_p20_zip(capacity))
    assert [site.capacity for site in read_p20_capacities(path)] == [None]


def test_zip_bomb_is_refused_without_decompressing_it(tmp_path):
    path = tmp_path / "shelters_p20_ksj.zip"
    path.write_bytes(zip_bomb(256))
    with pytest.raises(RegionFileError, match=r"shelters_p20_ksj.zip: P20.shp: decompresses to more than 32 MB"):
        read_p20_capacities(path)


def test_member_with_a_bad_crc_is_the_files_error(tmp_path):
    raw = bytearray(_p20_zip(100))
    raw[raw.find(b"UTF-8")] ^= 0x20  # stored .cpg member: its CRC no longer matches
    path = tmp_path / "p20.zip"
    path.write_bytes(bytes(raw))
    with pytest.raises(RegionFileError, match=r"p20.zip: file: cannot be read .BadZipFile"):
        read_p20_capacities(path)


@pytest.mark.parametrize("text, problem", [
    ('{"type": "FeatureCollection", "features": ' + "[" * 100_000 + "]" * 100_000 + "}", "nests too deeply"),
    ('{"type": "FeatureCollection", "features": [], "n": ' + "9" * 5000 + "}", "more than 40 characters"),
    ('{"type": "FeatureCollection", "features": [], "n": NaN}', "NaN is not a number"),
])
def test_hostile_json_is_the_files_error(tmp_path, text, problem):
    path = tmp_path / "gsi_emergency_sites.geojson"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RegionFileError, match=f"gsi_emergency_sites.geojson: file: .*{problem}"):
        read_shelters(path)


def test_csv_field_larger_than_csvs_limit_is_the_files_error(tmp_path):
    path = tmp_path / "sites.csv"
    path.write_text("共通ID,施設・場所名,緯度,経度\nE3520200000001,\"" + "x" * 200_000 + "\",33.9,131.2\n", encoding="utf-8")
    with pytest.raises(RegionFileError, match=r"sites.csv: file: cannot be read .Error: field larger than field limit"):
        read_shelters(path)


def test_one_element_road_position_is_named(ube, tmp_path):
    roads = json.loads(ube.roads_file.read_text(encoding="utf-8"))
    roads["features"] = roads["features"][:5]
    roads["features"][3]["geometry"]["coordinates"][1] = [131.2]
    path = tmp_path / "roads_walk.geojson"
    path.write_text(json.dumps(roads), encoding="utf-8")
    with pytest.raises(RegionFileError, match=r"roads_walk.geojson: feature 3: position must be \[longitude, latitude\]"):
        import_roads(open_store(tmp_path / "m.sqlite"), "352021", path)


def test_national_gsi_file_imports_only_the_regions_sites(ube, aizu, tmp_path):
    ube_sites = json.loads(ube.emergency_sites_file.read_text(encoding="utf-8"))
    aizu_sites = json.loads(aizu.emergency_sites_file.read_text(encoding="utf-8"))
    national = {**ube_sites, "features": aizu_sites["features"] + ube_sites["features"]}
    path = tmp_path / "gsi_emergency_sites.geojson"
    path.write_text(json.dumps(national, ensure_ascii=False), encoding="utf-8")
    db = open_store(tmp_path / "m.sqlite")
    info = import_shelters(db, "352021", ShelterKind.EMERGENCY_SITE, path)
    assert info.feature_count == len(ube_sites["features"])
    ids = [row[0] for row in db.execute("SELECT id FROM shelter WHERE region = '352021'")]
    assert ids and all(i.startswith("E35202") for i in ids)
    with pytest.raises(RegionFileError, match="no shelters of municipality 131016"):
        import_shelters(db, "131016", ShelterKind.EMERGENCY_SITE, path)


def test_a_designated_file_where_sites_belong_is_the_files_error(ube, tmp_path):
    with pytest.raises(RegionFileError, match=r"gsi_designated_shelters.geojson: file: holds designated_shelter rows"):
        import_shelters(open_store(tmp_path / "m.sqlite"), "352021", ShelterKind.EMERGENCY_SITE, ube.designated_shelters_file)


def test_app_starts_on_previous_data_after_a_bad_region_file(ube, tmp_path, caplog):
    region = copy_region(ube, tmp_path, skip=("roads_walk.geojson",))
    store = tmp_path / "mamori.sqlite"
    import_region(open_store(store), region)
    region.p20_file.write_bytes(zip_bomb(128))
    config = parse_args(["--data-dir", str(tmp_path), "--region", "352021", "--store", str(store), "--reimport"])
    with caplog.at_level(logging.ERROR, logger="mamori"):
        app = build_app(config)
    assert "region import failed, keeping previous data: shelters_p20_ksj.zip" in caplog.text
    assert app.db.execute("SELECT count(*) FROM shelter WHERE region = '352021'").fetchone()[0] == 170


def test_fuzzed_region_files_give_only_named_errors_keep_data_and_bounded_memory(data_dir, tmp_path):
    """≥ 1,000 malformed files of every kind, imported over good data in a fresh process."""
    run = subprocess.run([sys.executable, "-m", "tests.region_fuzz", str(data_dir), str(tmp_path / "fuzz"), str(FUZZ_FILES_PER_KIND)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    print("region fuzz:", report)
    assert report["tried"] == 6 * FUZZ_FILES_PER_KIND >= 1000
    assert report["failure_count"] == 0, report["failures"]
    assert report["outcomes"]["region_file_error"] > report["tried"] // 2  # the mutations do break files
    assert report["peak_mb"] < 300
