"""Read official hazard polygons (国土数値情報 A31 / A33 / A40 / A49 shapes) and store hazard layers.

Usage::

    from geo.hazard_import import import_hazard_file
    layer_id = import_hazard_file(db, "352021", Path("A31-12_35.geojson"))            # kind from the columns
    layer_id = import_hazard_file(db, "352021", Path("A33-20_35.zip"), hazard=HazardType.LANDSLIDE)

Accepted files: GeoJSON FeatureCollections and zipped shapefiles (pyshp) of Polygon /
MultiPolygon features in JGD2011/WGS84 longitude-latitude (the 国土数値情報 download CRS).
Levels are normalised to two schemes the app understands:

- ``depth_rank`` (flood, inland flood, tsunami, storm surge): 1 <0.5 m, 2 0.5–3 m, 3 3–5 m,
  4 5–10 m, 5 10–20 m, 6 ≥20 m. Read from a numeric rank column (A31_001, A31a_205, …) or
  from a depth text such as "0.5m以上3.0m未満" (A40_003, A49_003), whose lower bound decides.
- ``sediment_zone`` (landslide, A33): 1 土砂災害警戒区域 (yellow), 2 特別警戒区域 (red), from A33_002.

A self-made file may instead carry ``hazard`` and ``level`` (and ``name``) properties.
The whole file is parsed and checked before its transaction opens; a bad feature raises
``RegionFileError`` naming the file and the feature, and the store is left as it was.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import sqlite_utils

from geo.regionfiles import RegionFileError, _load_geojson, named_errors, read_zipped_shapefile
from geo.sql import utc_now
from protocol.hazards import HazardType

DEPTH_RANK = "depth_rank"
SEDIMENT_ZONE = "sediment_zone"
KSJ_LICENCE = "出典：国土数値情報（国土交通省）"

# Upper bounds (m) of depth ranks 1..5; rank 6 is everything deeper (国土数値情報 A31 第2版以降の区分).
DEPTH_RANK_BOUNDS = (0.5, 3.0, 5.0, 10.0, 20.0)

Ring = list[tuple[float, float]]  # (lon, lat), GeoJSON order
Polygon = list[Ring]  # outer ring first, then holes


@dataclass(slots=True)
class AreaRecord:
    level: int
    name: str
    polygons: list[Polygon]


@dataclass(frozen=True, slots=True)
class _Kind:
    hazard: HazardType
    scheme: str
    level_columns: tuple[str, ...]
    name_columns: tuple[str, ...]


# Column names by dataset; the first present column wins. Checked in this order.
_KINDS: dict[str, _Kind] = {
    "A33": _Kind(HazardType.LANDSLIDE, SEDIMENT_ZONE, ("A33_002",), ("A33_005", "A33_004")),
    "A40": _Kind(HazardType.TSUNAMI, DEPTH_RANK, ("A40_003",), ("A40_001",)),
    "A49": _Kind(HazardType.STORM_SURGE, DEPTH_RANK, ("A49_003", "A49_002"), ("A49_001",)),
    "A31": _Kind(HazardType.FLOOD, DEPTH_RANK, ("A31a_205", "A31b_205", "A31_001", "A31a_105"), ("A31a_101", "A31_002")),
}
_SCHEME_BY_HAZARD = {HazardType.LANDSLIDE: SEDIMENT_ZONE}


def depth_rank(depth_m: float) -> int:
    """Rank 1..6 of a water depth in metres (0 and below is rank 0: dry)."""
    if depth_m <= 0:
        return 0
    return 1 + sum(depth_m >= bound for bound in DEPTH_RANK_BOUNDS)


_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _level(path: Path, where: str, scheme: str, value: Any) -> int:
    """Normalise a rank code or a depth text to the scheme's level."""
    text = str(value).strip() if value is not None else ""
    if not text:
        raise RegionFileError(path, where, "no level/rank value")
    if scheme == DEPTH_RANK and ("m" in text or "ｍ" in text):
        depths = [float(x) for x in _NUMBER.findall(text)]
        if not depths:
            raise RegionFileError(path, where, f"cannot read a depth from {text!r}")
        if len(depths) == 1 and "未満" in text:  # "3m未満": only an upper bound, take the deepest rank below it
            return max(1, depth_rank(depths[0] - 1e-9))
        return max(1, depth_rank(min(depths) + 1e-9))
    try:
        level = int(float(text))
    except ValueError:
        raise RegionFileError(path, where, f"level/rank {text!r} is not a number") from None
    top = 6 if scheme == DEPTH_RANK else 2
    if not 1 <= level <= top:
        raise RegionFileError(path, where, f"level/rank {level} outside 1..{top} for {scheme}")
    return level


def read_hazard_areas(path: str | Path, hazard: HazardType | None = None) -> tuple[HazardType, str, list[AreaRecord]]:
    """Parse a hazard file: (hazard, level scheme, areas). ``hazard`` overrides the detected one."""
    path = Path(path)
    with named_errors(path):
        return _hazard_areas(path, hazard)


def _hazard_areas(path: Path, hazard: HazardType | None) -> tuple[HazardType, str, list[AreaRecord]]:
    features = list(_features(path))
    if not features:
        raise RegionFileError(path, "file", "no hazard polygons in file")
    columns = set().union(*(props for _, props, _ in features))
    kind = _detect(path, columns, hazard)
    areas = []
    for where, props, rings in features:
        level_value = next((props[c] for c in (("level", *kind.level_columns)) if props.get(c) not in (None, "")), None)
        name = next((str(props[c]).strip() for c in (("name", *kind.name_columns)) if props.get(c)), "")
        areas.append(AreaRecord(_level(path, where, kind.scheme, level_value), name, rings))
    return kind.hazard, kind.scheme, areas


def _detect(path: Path, columns: set[str], hazard: HazardType | None) -> _Kind:
    for code, kind in _KINDS.items():
        if any(c.startswith(code) for c in columns):
            if hazard is not None and hazard is not kind.hazard:
                # e.g. A31-shaped inland-flood (内水) maps: keep the columns, take the caller's hazard.
                return _Kind(hazard, _SCHEME_BY_HAZARD.get(hazard, kind.scheme), kind.level_columns, kind.name_columns)
            return kind
    if "level" not in columns:
        raise RegionFileError(path, "file", "not A31/A33/A40/A49 data and no 'level' property")
    if hazard is None:
        raise RegionFileError(path, "file", "generic hazard file: pass the hazard type")
    return _Kind(hazard, _SCHEME_BY_HAZARD.get(hazard, DEPTH_RANK), (), ())


def _features(path: Path) -> Iterable[tuple[str, dict[str, Any], list[Polygon]]]:
    if path.suffix.lower() == ".zip":
        yield from _shapefile_features(path)
        return
    for index, feature in enumerate(_load_geojson(path)):
        where = f"feature {index}"
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        props = feature.get("properties") if isinstance(feature, dict) else None
        if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
            raise RegionFileError(path, where, "geometry must be Polygon or MultiPolygon")
        coords = geometry.get("coordinates")
        polygons = [coords] if geometry["type"] == "Polygon" else coords
        yield where, props if isinstance(props, dict) else {}, [_polygon(path, where, p) for p in polygons or []]


def _shapefile_features(path: Path) -> Iterable[tuple[str, dict[str, Any], list[Polygon]]]:
    for where, record, shape in read_zipped_shapefile(path):
        geometry = shape.__geo_interface__
        if geometry.get("type") not in ("Polygon", "MultiPolygon"):
            raise RegionFileError(path, where, "shape must be a polygon")
        polygons = [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
        yield where, record, [_polygon(path, where, p) for p in polygons]


def _polygon(path: Path, where: str, rings: Any) -> Polygon:
    if not isinstance(rings, (list, tuple)) or not rings:
        raise RegionFileError(path, where, "polygon without rings")
    out = []
    for ring in rings:
        try:
            points = [(float(p[0]), float(p[1])) for p in ring]
        except (TypeError, ValueError, IndexError):
            raise RegionFileError(path, where, "ring positions must be [longitude, latitude]") from None
        if len(points) < 4:
            raise RegionFileError(path, where, "ring needs at least 4 positions")
        lon, lat = points[0]
        if not (122 <= lon <= 154 and 20 <= lat <= 46):
            raise RegionFileError(path, where, f"coordinates outside Japan: lon={lon} lat={lat} (projected CRS?)")
        out.append(points)
    return out


def import_hazard_file(db: sqlite_utils.Database, region: str, path: str | Path, hazard: HazardType | None = None) -> int:
    """Import one official hazard file as a layer of ``region``; return the layer id."""
    path = Path(path)
    detected, scheme, areas = read_hazard_areas(path, hazard)
    with db.atomic():
        layer_id = save_layer(
            db,
            region,
            detected,
            name=path.stem,
            is_scenario=False,
            level_scheme=scheme,
            description_ja="国や県・市が公表した想定区域です。",
            description_en="Hazard areas published by the national, prefectural or city government.",
            source=path.name,
            licence=KSJ_LICENCE,
            areas=areas,
        )
        # Listed with the region's other datasets, so the credits screen shows its source.
        db.table("dataset").upsert(
            {
                "region": region,
                "dataset": f"hazard:{detected.value}:{path.stem}",
                "source_file": path.name,
                "licence": KSJ_LICENCE,
                "feature_count": len(areas),
                "imported_at": utc_now(),
            },
            pk=("region", "dataset"),
        )
    return layer_id


def save_layer(
    db: sqlite_utils.Database,
    region: str,
    hazard: HazardType,
    *,
    name: str,
    is_scenario: bool,
    level_scheme: str,
    description_ja: str,
    description_en: str,
    source: str,
    licence: str,
    areas: list[AreaRecord],
    params: dict[str, Any] | None = None,
) -> int:
    """Create or replace the layer ``(region, hazard, name)`` with its areas, in one transaction."""
    with db.atomic():
        old = db.execute("SELECT id FROM hazard_layer WHERE region = ? AND hazard = ? AND name = ?", [region, hazard.value, name]).fetchone()
        if old:
            db.execute("DELETE FROM hazard_area_rtree WHERE rowid IN (SELECT rowid FROM hazard_area WHERE layer_id = ?)", [old[0]])
            db.execute("DELETE FROM hazard_area WHERE layer_id = ?", [old[0]])
            db.execute("DELETE FROM hazard_layer WHERE id = ?", [old[0]])
        layer_id = db.table("hazard_layer").insert(
            {
                "region": region,
                "hazard": hazard.value,
                "name": name,
                "is_scenario": int(is_scenario),
                "level_scheme": level_scheme,
                "description_ja": description_ja,
                "description_en": description_en,
                "source": source,
                "licence": licence,
                "params": json.dumps(params or {}, ensure_ascii=False),
                "area_count": len(areas),
                "created_at": utc_now(),
            }
        ).last_pk
        for area in areas:
            rowid = db.table("hazard_area").insert(
                {"layer_id": layer_id, "level": area.level, "name": area.name, "polygons": json.dumps(area.polygons, separators=(",", ":"))}
            ).last_pk
            lons = [p[0] for polygon in area.polygons for p in polygon[0]]
            lats = [p[1] for polygon in area.polygons for p in polygon[0]]
            db.execute("INSERT INTO hazard_area_rtree VALUES (?, ?, ?, ?, ?)", [rowid, min(lats), max(lats), min(lons), max(lons)])
    return cast(int, layer_id)
