"""Hazard layers of a region: list them, draw them, and answer "Must I evacuate?" locally.

Usage::

    layers = HazardLayers.for_region(db, "352021")   # derives Ube's scenario layers on first use
    for layer in layers.layers():                     # HazardLayer: hazard, is_scenario, description("ja")
        shapes = layers.shapes(layer.id)              # [AreaShape(level, name, outer=[(lat, lon)], holes=[...])]
    advice = layers.assess(LatLon(33.94, 131.25), HazardType.TSUNAMI, alert_level=4, early=False)
    advice.must_evacuate, advice.reason_key, advice.area_name, advice.level, advice.is_scenario

Official layers come from ``geo.hazard_import``. Where a region has none, scenario
layers are derived from the road network's elevations (land below N m flooded) and cached
in SQLite; they carry ``is_scenario=True`` and a description saying so, and are re-derived
when the roads are re-imported. For one hazard, official layers take precedence over
scenario ones ("active" layers). Alert levels are Japan's 警戒レベル 1–5: level 3 is
高齢者等避難 (people who need time leave, ``early=True``), level 4 避難指示 (everyone in the
area leaves), level 5 緊急安全確保 (secure safety where you are if it is too late to leave).
"""
from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from geo.hazard_import import DEPTH_RANK, save_layer
from geo.models import LatLon
from protocol.geojson import point_in_polygon
from protocol.hazards import HazardType

__all__ = [
    "SCENARIOS",
    "UNKNOWN_GROUND",
    "AreaHit",
    "AreaShape",
    "ElevationScenario",
    "EvacuationAdvice",
    "HazardLayer",
    "HazardLayers",
    "LevelIndex",
    "ensure_scenario_layers",
    "level_label_key",
    "point_in_polygon",
]

METRES_PER_DEG_LAT = 111_320.0


@dataclass(frozen=True, slots=True)
class ElevationScenario:
    """'Water reaches ``water_level_m`` above sea level': land lower than that is inside."""

    hazard: HazardType
    name: str
    water_level_m: float
    description_ja: str
    description_en: str


SCENARIOS: tuple[ElevationScenario, ...] = (
    ElevationScenario(
        HazardType.TSUNAMI,
        "scenario_tsunami_below_5m",
        5.0,
        "標高5m未満の土地と道路が津波で浸水すると仮定しています。道路網の標高データから作成。",
        "Land and roads below 5 m elevation are assumed flooded by a tsunami. Derived from the road network's elevations.",
    ),
    ElevationScenario(
        HazardType.STORM_SURGE,
        "scenario_storm_surge_below_4m",
        4.0,
        "標高4m未満の土地と道路が高潮で浸水すると仮定しています。道路網の標高データから作成。",
        "Land and roads below 4 m elevation are assumed flooded by a storm surge. Derived from the road network's elevations.",
    ),
)
SCENARIO_METHOD = "idw-contour-1"  # layers derived by an older method are derived again
SCENARIO_CELL_M = 30.0  # grid step of the interpolated ground the scenario is contoured on
SCENARIO_TILE_NODES = 10  # contours are cut into tiles of 10 × 30 m: small polygons, fast tests
IDW_RADIUS_M = 250.0  # ground height comes from measured road points within this distance
IDW_NEIGHBOURS = 8  # at most this many of them (inverse-distance weighted)
IDW_MIN_M = 10.0  # points closer than this weigh as if 10 m away (a point on a node does not
# take the whole weight: node heights are themselves interpolated from a DEM)
UNKNOWN_MARGIN_M = 2.0  # unknown ground is treated as at risk when farther points are below water + 2 m
UNKNOWN_GROUND = "ground_unknown"  # name of the areas where no point is within IDW_RADIUS_M
SCENARIO_LICENCE = "道路網の標高（© OpenStreetMap contributors, ODbL 1.0）から本アプリが作成した想定"



def level_label_key(scheme: str, level: int) -> str:
    return f"hazard.level.{scheme}.{level}"


@dataclass(frozen=True, slots=True)
class HazardLayer:
    id: int
    region: str
    hazard: HazardType
    name: str
    is_scenario: bool
    level_scheme: str  # geo.hazard_import.DEPTH_RANK or SEDIMENT_ZONE
    description_ja: str
    description_en: str
    source: str
    licence: str
    area_count: int
    params: dict[str, Any] = field(default_factory=dict)
    created_at: str | None = None  # when the layer was imported or derived (UTC, ISO 8601)

    def description(self, lang: str = "ja") -> str:
        return self.description_ja if lang.startswith("ja") else self.description_en


@dataclass(frozen=True, slots=True)
class AreaShape:
    """One polygon ready for drawing: rings of (lat, lon)."""

    level: int
    name: str
    outer: list[tuple[float, float]]
    holes: list[list[tuple[float, float]]]


@dataclass(frozen=True, slots=True)
class AreaHit:
    level: int
    name: str
    layer: HazardLayer


@dataclass(frozen=True, slots=True)
class EvacuationAdvice:
    must_evacuate: bool
    reason_key: str  # a message key (assets/i18n/myhazard.*.json)
    hazard: HazardType
    area_name: str | None = None
    level: int | None = None  # hazard level inside the area (depth rank / sediment zone)
    level_key: str | None = None  # label of that level, a message key (assets/i18n/myhazard.*.json)
    alert_level: int | None = None
    is_scenario: bool = False
    layer_name: str | None = None
    known: bool = True  # False: no data for this hazard or place (a neutral answer, never "outside")


@dataclass(slots=True)
class _Area:
    level: int
    name: str
    layer: HazardLayer
    bbox: tuple[float, float, float, float]  # min_lon, min_lat, max_lon, max_lat
    polygons: list[list[list[tuple[float, float]]]]

    is_box: bool = False  # one axis-aligned rectangle (scenario cells): the bbox test is the answer

    def contains(self, lon: float, lat: float) -> bool:
        x0, y0, x1, y1 = self.bbox
        if not (x0 <= lon <= x1 and y0 <= lat <= y1):
            return False
        return self.is_box or any(point_in_polygon(lon, lat, polygon) for polygon in self.polygons)


class LevelIndex:
    """In-memory grid over area bounding boxes: the highest level at a point, fast enough to
    classify every road edge of a city when a route is prepared."""

    CELL_DEG = 0.002  # ≈ 200 m

    def __init__(self, areas: list[_Area]) -> None:
        self._cells: dict[tuple[int, int], list[_Area]] = defaultdict(list)
        for area in sorted(areas, key=lambda a: -a.level):  # highest level first in every cell
            x0, y0, x1, y1 = area.bbox
            for i in range(self._cell(y0), self._cell(y1) + 1):
                for j in range(self._cell(x0), self._cell(x1) + 1):
                    self._cells[(i, j)].append(area)
        self.empty = not areas

    @classmethod
    def _cell(cls, value: float) -> int:
        return math.floor(value / cls.CELL_DEG)

    def level_at(self, lat: float, lon: float) -> int:
        """0 outside every area."""
        for area in self._cells.get((math.floor(lat / self.CELL_DEG), math.floor(lon / self.CELL_DEG)), ()):
            if area.contains(lon, lat):
                return area.level
        return 0


class HazardLayers:
    """The hazard layers of one region, read from (and for scenarios written to) the store."""

    def __init__(self, db: sqlite_utils.Database, region: str) -> None:
        self.db, self.region = db, region

    @classmethod
    def for_region(cls, db: sqlite_utils.Database, region: str) -> HazardLayers:
        ensure_scenario_layers(db, region)
        return cls(db, region)

    def layers(self, hazard: HazardType | None = None) -> list[HazardLayer]:
        where, args = "region = ?", [self.region]
        if hazard is not None:
            where, args = where + " AND hazard = ?", [*args, hazard.value]
        rows = self.db["hazard_layer"].rows_where(where, args, order_by="hazard, is_scenario, name")
        return [_layer(row) for row in rows]

    def active_layers(self, hazard: HazardType) -> list[HazardLayer]:
        """Official layers of ``hazard`` when the region has any, else its scenario layers."""
        layers = self.layers(hazard)
        official = [layer for layer in layers if not layer.is_scenario]
        return official or layers

    def shapes(self, layer_id: int) -> list[AreaShape]:
        shapes = []
        for row in self.db.execute("SELECT level, name, polygons FROM hazard_area WHERE layer_id = ? ORDER BY level", [layer_id]):
            for polygon in json.loads(row[2]):
                rings = [[(lat, lon) for lon, lat in ring] for ring in polygon]
                shapes.append(AreaShape(row[0], row[1], rings[0], rings[1:]))
        return shapes

    def level_index(self, hazard: HazardType, layers: list[HazardLayer] | None = None) -> LevelIndex:
        layers = self.active_layers(hazard) if layers is None else layers
        by_id = {layer.id: layer for layer in layers}
        areas = []
        if by_id:
            marks = ",".join("?" * len(by_id))
            sql = f"SELECT layer_id, level, name, polygons FROM hazard_area WHERE layer_id IN ({marks})"
            for layer_id, level, name, polygons in self.db.execute(sql, list(by_id)):
                areas.append(_area(by_id[layer_id], level, name, polygons))
        return LevelIndex(areas)

    def hit(self, point: LatLon, hazard: HazardType) -> AreaHit | None:
        """The highest-level active area of ``hazard`` at ``point``, found through the R*Tree."""
        by_id = {layer.id: layer for layer in self.active_layers(hazard)}
        if not by_id:
            return None
        marks = ",".join("?" * len(by_id))
        sql = (
            "SELECT a.layer_id, a.level, a.name, a.polygons FROM hazard_area_rtree r JOIN hazard_area a ON a.rowid = r.rowid"
            " WHERE r.min_lat <= ? AND r.max_lat >= ? AND r.min_lon <= ? AND r.max_lon >= ?"
            f" AND a.layer_id IN ({marks}) ORDER BY a.level DESC"
        )
        for layer_id, level, name, polygons in self.db.execute(sql, [point.lat, point.lat, point.lon, point.lon, *by_id]):
            area = _area(by_id[layer_id], level, name, polygons)
            if area.contains(point.lon, point.lat):
                return AreaHit(level, name, area.layer)
        return None

    def assess(self, point: LatLon, hazard: HazardType, alert_level: int | None = None, early: bool = False) -> EvacuationAdvice:
        """Must someone at ``point`` evacuate for ``hazard``? ``early``: the household needs time
        (elderly members, mobility needs, infants), so it leaves at alert level 3."""
        if alert_level is not None and not 1 <= alert_level <= 5:
            raise ValueError(f"alert_level must be 1..5 (警戒レベル), got {alert_level}")
        active = self.active_layers(hazard)
        if not active:
            return EvacuationAdvice(False, "assess.no_map", hazard, alert_level=alert_level, known=False)
        scenario = all(layer.is_scenario for layer in active)
        found = self.hit(point, hazard)
        if found is None and scenario and not any(_covers(layer, point) for layer in active):
            return EvacuationAdvice(False, "assess.no_data_here", hazard, alert_level=alert_level, is_scenario=True, known=False)
        if found is None or (found.name == UNKNOWN_GROUND and found.level == 0):
            # Outside a scenario is no official all-clear either: the label stays. Unknown ground
            # well above the water level (judged from farther points) is still unknown.
            if found is not None:
                return EvacuationAdvice(False, "assess.ground_unknown", hazard, alert_level=alert_level, is_scenario=True, known=False)
            return EvacuationAdvice(False, "assess.outside_area", hazard, alert_level=alert_level, is_scenario=scenario)
        must, reason = _decide(hazard, alert_level, early)
        unknown = found.name == UNKNOWN_GROUND
        return EvacuationAdvice(
            must,
            "assess.ground_unknown_low" if unknown and alert_level is None else reason,
            hazard,
            area_name=None if unknown else found.name or None,
            level=found.level,
            level_key=None if unknown else level_label_key(found.layer.level_scheme, found.level),
            alert_level=alert_level,
            is_scenario=found.layer.is_scenario,
            layer_name=found.layer.name,
            known=not unknown,
        )


def _covers(layer: HazardLayer, point: LatLon) -> bool:
    box = layer.params.get("coverage")
    return not box or (box[0] <= point.lon <= box[2] and box[1] <= point.lat <= box[3])


def _decide(hazard: HazardType, alert_level: int | None, early: bool) -> tuple[bool, str]:
    if alert_level is None:
        return True, "assess.in_area"
    if hazard is HazardType.TSUNAMI:  # a tsunami warning means leave now, whatever the level
        return True, "assess.tsunami_leave_now"
    if alert_level >= 5:
        return True, "assess.alert5_secure_safety"
    if alert_level == 4:
        return True, "assess.alert4_evacuate"
    if alert_level == 3:
        return (True, "assess.alert3_early") if early else (False, "assess.alert3_prepare")
    return False, "assess.alert_prepare"


def _layer(row: dict[str, Any]) -> HazardLayer:
    return HazardLayer(
        id=row["id"],
        region=row["region"],
        hazard=HazardType(row["hazard"]),
        name=row["name"],
        is_scenario=bool(row["is_scenario"]),
        level_scheme=row["level_scheme"],
        description_ja=row["description_ja"],
        description_en=row["description_en"],
        source=row["source"],
        licence=row["licence"],
        area_count=row["area_count"],
        params=json.loads(row["params"]),
        created_at=row.get("created_at"),
    )


def _area(layer: HazardLayer, level: int, name: str, polygons_json: str) -> _Area:
    polygons = [[[(p[0], p[1]) for p in ring] for ring in polygon] for polygon in json.loads(polygons_json)]
    lons = [p[0] for polygon in polygons for p in polygon[0]]
    lats = [p[1] for polygon in polygons for p in polygon[0]]
    box = len(polygons) == 1 and len(polygons[0]) == 1 and _is_box(polygons[0][0])
    return _Area(level, name, layer, (min(lons), min(lats), max(lons), max(lats)), polygons, box)


def _is_box(ring: list[tuple[float, float]]) -> bool:
    corners = set(ring)
    xs, ys = {p[0] for p in corners}, {p[1] for p in corners}
    return len(corners) == 4 and len(xs) == 2 and len(ys) == 2


# --- scenario layers derived from road elevations -------------------------------------------


def ensure_scenario_layers(db: sqlite_utils.Database, region: str) -> list[int]:
    """Derive (or re-derive after a roads re-import) the elevation scenarios; return new layer ids."""
    roads = db.execute("SELECT imported_at FROM dataset WHERE region = ? AND dataset = 'roads'", [region]).fetchone()
    if roads is None:
        return []
    stamp = roads[0]
    existing = {
        row[0]: (json.loads(row[1]).get("roads_imported_at"), json.loads(row[1]).get("method"))
        for row in db.execute("SELECT name, params FROM hazard_layer WHERE region = ? AND is_scenario = 1", [region])
    }
    stale = [s for s in SCENARIOS if existing.get(s.name) != (stamp, SCENARIO_METHOD)]
    if not stale:
        return []
    samples = _elevation_samples(db, region)
    coverage = _coverage(samples)
    from geo.ground import GroundModel, derive_scenario_areas  # numpy, scipy, contourpy: only to derive

    ground = GroundModel(samples) if samples else None
    created = []
    for scenario in stale:
        areas = derive_scenario_areas(ground, scenario.water_level_m) if ground else []
        created.append(
            save_layer(
                db,
                region,
                scenario.hazard,
                name=scenario.name,
                is_scenario=True,
                level_scheme=DEPTH_RANK,
                description_ja=scenario.description_ja,
                description_en=scenario.description_en,
                source="road_edge.elev_u/elev_v",
                licence=SCENARIO_LICENCE,
                areas=areas,
                params={"water_level_m": scenario.water_level_m, "cell_m": SCENARIO_CELL_M, "idw_radius_m": IDW_RADIUS_M,
                        "unknown_margin_m": UNKNOWN_MARGIN_M, "coverage": coverage, "roads_imported_at": stamp, "method": SCENARIO_METHOD},
            )
        )
    return created


def _coverage(samples: list[tuple[float, float, float]]) -> list[float]:
    """[min_lon, min_lat, max_lon, max_lat] of the grid: the points plus IDW_RADIUS_M."""
    if not samples:
        return []
    lats, lons = [s[0] for s in samples], [s[1] for s in samples]
    pad_lat = IDW_RADIUS_M / METRES_PER_DEG_LAT
    pad_lon = IDW_RADIUS_M / (METRES_PER_DEG_LAT * math.cos(math.radians(sum(lats) / len(lats))))
    return [min(lons) - pad_lon, min(lats) - pad_lat, max(lons) + pad_lon, max(lats) + pad_lat]


def _elevation_samples(db: sqlite_utils.Database, region: str) -> list[tuple[float, float, float]]:
    """(lat, lon, elevation) once per road node that has an elevation."""
    seen: dict[int, tuple[float, float, float]] = {}
    sql = "SELECT u, v, elev_u, elev_v, coords FROM road_edge WHERE region = ? AND (elev_u IS NOT NULL OR elev_v IS NOT NULL)"
    for u, v, elev_u, elev_v, coords in db.execute(sql, [region]):
        points = json.loads(coords)
        for node, elev, (lon, lat) in ((u, elev_u, points[0]), (v, elev_v, points[-1])):
            if elev is not None and node not in seen:
                seen[node] = (lat, lon, elev)
    return list(seen.values())
