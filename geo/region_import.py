"""Import a region folder into the local store: one transaction per dataset, idempotent.

Each file is parsed and validated completely before its transaction opens, so a malformed
file raises ``RegionFileError`` and leaves the previously imported data as it was.
Re-importing replaces a dataset's rows; it never duplicates them.
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import sqlite_utils

from geo.models import DatasetInfo, Shelter
from geo.regionfiles import (
    P20Site,
    RegionFileError,
    read_boundary,
    read_districts,
    read_p20_capacities,
    read_road_edges,
    read_shelters,
)
from geo.regions import Region
from geo.sql import utc_now
from protocol.hazards import HazardType, ShelterKind

GSI_LICENCE = "出典：国土地理院 指定緊急避難場所・指定避難所データ（国土地理院コンテンツ利用規約）"
P20_LICENCE = "出典：国土数値情報（避難施設データ）（国土交通省）"
OSM_LICENCE = "© OpenStreetMap contributors, ODbL 1.0"
N03_LICENCE = "出典：国土数値情報（行政区域データ N03）（国土交通省）"
DISTRICTS_LICENCE = "提供：市（地区の区域）"

# A P20 point and a GSI point are the same facility when this close (metres); the two
# datasets geocode the same building a few metres apart.
P20_MATCH_M = 60.0
# GSI's 共通ID starts with the municipality code without its check digit: E35202… is Ube (352021).
_GSI_ID_CODE = re.compile(r"^[A-Z]?(\d{5})")


def import_region(db: sqlite_utils.Database, region: Region, progress: Callable[[str], None] | None = None) -> list[DatasetInfo]:
    """Import every dataset the region folder has; return what was imported."""
    imported = []
    p20 = read_p20_capacities(region.p20_file) if region.p20_file else []
    for kind, path in ((ShelterKind.EMERGENCY_SITE, region.emergency_sites_file), (ShelterKind.DESIGNATED_SHELTER, region.designated_shelters_file)):
        if path:
            if progress:
                progress(path.name)
            imported.append(import_shelters(db, region.code, kind, path, p20, region.p20_file))
    if region.roads_file:
        if progress:
            progress(region.roads_file.name)
        imported.append(import_roads(db, region.code, region.roads_file))
    if region.boundary_file:
        imported.append(import_boundary(db, region.code, region.boundary_file))
    if region.districts_file:
        imported.append(import_districts(db, region.code, region.districts_file))
    return imported


def import_shelters(
    db: sqlite_utils.Database,
    region: str,
    kind: ShelterKind,
    path: Path,
    p20: Sequence[P20Site] = (),
    p20_path: Path | None = None,
) -> DatasetInfo:
    shelters = [s for s in read_shelters(path) if _of_municipality(s, region)]
    if not shelters:
        raise RegionFileError(path, "file", f"no shelters of municipality {region} (共通ID {region[:5]}…) in the file")
    wrong = [s for s in shelters if s.kind != kind]
    if wrong:
        raise RegionFileError(path, "file", f"holds {wrong[0].kind.value} rows where {kind.value} was expected")
    for shelter in shelters:
        shelter.capacity = _p20_capacity(shelter, p20)
    licence = GSI_LICENCE + (f" / {P20_LICENCE}" if p20 else "")
    sources = path.name + (f" + {p20_path.name}" if p20 and p20_path else "")
    info = DatasetInfo(region, kind.value, sources, licence, len(shelters), utc_now())
    with db.atomic():
        old = [row[0] for row in db.execute("SELECT rowid FROM shelter WHERE region = ? AND kind = ?", [region, kind.value])]
        db.execute(f"DELETE FROM shelter_rtree WHERE rowid IN ({','.join('?' * len(old))})", old)
        db.execute("DELETE FROM shelter WHERE region = ? AND kind = ?", [region, kind.value])
        db.table("shelter").insert_all(_shelter_row(region, s) for s in shelters)
        db.execute(
            "INSERT INTO shelter_rtree SELECT rowid, lat, lat, lon, lon FROM shelter WHERE region = ? AND kind = ?",
            [region, kind.value],
        )
        if shelters[0].municipality:
            db.table("region_info").upsert({"region": region, "name": shelters[0].municipality}, pk="region")
        _record(db, info)
    return info


def _of_municipality(shelter: Shelter, region: str) -> bool:
    """A prefectural or national GSI file holds other cities' sites too: keep this one's."""
    match = _GSI_ID_CODE.match(shelter.id)
    return match is None or match.group(1) == region[:5]


def _shelter_row(region: str, s: Shelter) -> dict:
    row = {
        "region": region,
        "id": s.id,
        "kind": s.kind.value,
        "name": s.name,
        "address": s.address,
        "lat": s.lat,
        "lon": s.lon,
        "capacity": s.capacity,
        "accepts": s.accepts,
        "note": s.note,
        "same_address_as_other_kind": int(s.same_address_as_other_kind),
        "source": s.source,
    }
    # GSI flags hazards only for emergency sites; NULL says "not assessed", not "unsafe".
    for hazard in HazardType:
        row[hazard.value] = int(hazard in s.hazards) if s.kind is ShelterKind.EMERGENCY_SITE else None
    return row


def _p20_capacity(shelter: Shelter, p20: Sequence[P20Site]) -> int | None:
    best, best_m = None, P20_MATCH_M
    for site in p20:
        metres = _approx_metres(shelter.lat, shelter.lon, site.lat, site.lon)
        if metres <= best_m or (site.name == shelter.name and metres <= 4 * P20_MATCH_M):
            best, best_m = site, min(metres, best_m)
    return best.capacity if best else None


def _approx_metres(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    # Equirectangular is exact to well under a metre at these distances, and cheap.
    x = math.radians(lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2))
    return 6_371_008.8 * math.hypot(x, math.radians(lat2 - lat1))


def import_roads(db: sqlite_utils.Database, region: str, path: Path) -> DatasetInfo:
    edges = list(read_road_edges(path))
    info = DatasetInfo(region, "roads", path.name, OSM_LICENCE, len(edges), utc_now())
    with db.atomic():
        db.execute("DELETE FROM road_edge WHERE region = ?", [region])
        db.table("road_edge").insert_all(
            (
                {
                    "region": region,
                    "u": e.u,
                    "v": e.v,
                    "key": e.key,
                    "length_m": e.length_m,
                    "highway": e.highway,
                    "name": e.name,
                    "elev_u": e.elev_u,
                    "elev_v": e.elev_v,
                    "coords": json.dumps(e.coords, separators=(",", ":")),
                }
                for e in edges
            ),
            batch_size=2000,
        )
        _record(db, info)
    return info


def import_boundary(db: sqlite_utils.Database, region: str, path: Path) -> DatasetInfo:
    name, geometry = read_boundary(path)
    info = DatasetInfo(region, "boundary", path.name, N03_LICENCE, 1, utc_now())
    with db.atomic():
        db.table("boundary").upsert({"region": region, "name": name, "geometry": json.dumps(geometry)}, pk="region")
        _record(db, info)
    return info


def import_districts(db: sqlite_utils.Database, region: str, path: Path) -> DatasetInfo:
    districts = read_districts(path)
    info = DatasetInfo(region, "districts", path.name, DISTRICTS_LICENCE, len(districts), utc_now())
    with db.atomic():
        db.execute("DELETE FROM district WHERE region = ?", [region])
        db.table("district").insert_all({"region": region, "name": name, "polygons": json.dumps(polygons, separators=(",", ":"))}
                                        for name, polygons in districts.items())
        _record(db, info)
    return info


def districts(db: sqlite_utils.Database, region: str) -> dict[str, list]:
    """{name: polygons (outer ring then holes, [lon, lat])} of the region's imported districts."""
    return {name: json.loads(polygons)
            for name, polygons in db.execute("SELECT name, polygons FROM district WHERE region = ? ORDER BY name", [region])}


def _record(db: sqlite_utils.Database, info: DatasetInfo) -> None:
    db.table("dataset").upsert(
        {
            "region": info.region,
            "dataset": info.dataset,
            "source_file": info.source_file,
            "licence": info.licence,
            "feature_count": info.feature_count,
            "imported_at": info.imported_at,
        },
        pk=("region", "dataset"),
    )


def datasets(db: sqlite_utils.Database, region: str) -> list[DatasetInfo]:
    return [DatasetInfo(**row) for row in db["dataset"].rows_where("region = ?", [region], order_by="dataset")]
