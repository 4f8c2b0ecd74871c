"""Domain records shared by every layer. Plain dataclasses: no Flet, no SQLite."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class HazardType(str, Enum):
    """The eight hazard types of Japan's designated emergency evacuation sites (災害対策基本法).

    The value is the stable key used in the database, translation files and URLs;
    ``gsi_column`` is the column heading in GSI's published GeoJSON/CSV.
    """

    FLOOD = "flood"
    LANDSLIDE = "landslide"
    STORM_SURGE = "storm_surge"
    EARTHQUAKE = "earthquake"
    TSUNAMI = "tsunami"
    FIRE = "fire"
    INLAND_FLOOD = "inland_flood"
    VOLCANO = "volcano"

    @property
    def gsi_column(self) -> str:
        return _GSI_COLUMNS[self]


_GSI_COLUMNS = {
    HazardType.FLOOD: "洪水",
    HazardType.LANDSLIDE: "崖崩れ、土石流及び地滑り",
    HazardType.STORM_SURGE: "高潮",
    HazardType.EARTHQUAKE: "地震",
    HazardType.TSUNAMI: "津波",
    HazardType.FIRE: "大規模な火事",
    HazardType.INLAND_FLOOD: "内水氾濫",
    HazardType.VOLCANO: "火山現象",
}


class ShelterKind(str, Enum):
    EMERGENCY_SITE = "emergency_site"  # 指定緊急避難場所: safe place to flee to, per hazard
    DESIGNATED_SHELTER = "designated_shelter"  # 指定避難所: place to stay


@dataclass(frozen=True, slots=True)
class LatLon:
    lat: float
    lon: float


@dataclass(slots=True)
class Shelter:
    """One GSI site. ``hazards`` is empty for designated shelters, which GSI does not flag."""

    id: str  # GSI 共通ID, national and stable
    kind: ShelterKind
    name: str
    address: str
    lat: float
    lon: float
    hazards: frozenset[HazardType] = frozenset()
    capacity: int | None = None  # 収容人数 from 国土数値情報 P20, when known
    accepts: str | None = None  # 受入対象者, when the shelter takes only some groups
    note: str = ""
    same_address_as_other_kind: bool = False
    source: str = ""
    municipality: str = ""  # 都道府県名及び市町村名, e.g. 山口県宇部市

    def suits(self, hazard: HazardType) -> bool:
        return hazard in self.hazards


@dataclass(slots=True)
class DatasetInfo:
    """What was imported, from where, under which licence, and when."""

    region: str
    dataset: str
    source_file: str
    licence: str
    feature_count: int
    imported_at: str  # ISO 8601, UTC


@dataclass(slots=True)
class RoadEdge:
    """One directed edge of the walking network (osmnx-style)."""

    u: int
    v: int
    key: int
    length_m: float
    highway: str
    name: str
    elev_u: float | None
    elev_v: float | None
    coords: list[tuple[float, float]] = field(default_factory=list)  # (lon, lat)
