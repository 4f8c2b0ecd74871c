"""Region records shared by every layer. Plain dataclasses: no Flet, no SQLite."""
from __future__ import annotations

from dataclasses import dataclass, field

from protocol.hazards import HazardType, ShelterKind


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
