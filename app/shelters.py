"""Shelter look-ups for one region: filter, search, distance sort and nearest-N.

Nearest-N walks outward through the SQLite R*Tree (``shelter_rtree``) in growing
windows, so it reads a handful of rows however many shelters a city has;
``nearest_full_scan`` is the naive baseline the benchmark compares against.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import sqlite_utils
from geopy.distance import geodesic

from geo.models import LatLon, Shelter
from protocol.hazards import HazardType, ShelterKind

_COLUMNS = "rowid, id, kind, name, address, lat, lon, capacity, accepts, note, same_address_as_other_kind, source, " + ", ".join(
    h.value for h in HazardType
)
_M_PER_DEG_LAT = 111_320.0


@dataclass(frozen=True, slots=True)
class ShelterHit:
    shelter: Shelter
    distance_m: float | None  # None when no origin was given


def _distance(hit: ShelterHit) -> float:
    return math.inf if hit.distance_m is None else hit.distance_m


def distance_m(a: LatLon, b: LatLon) -> float:
    return geodesic((a.lat, a.lon), (b.lat, b.lon)).meters


def _shelter(row: tuple) -> Shelter:
    (_, id_, kind, name, address, lat, lon, capacity, accepts, note, same, source, *flags) = row
    return Shelter(
        id=id_,
        kind=ShelterKind(kind),
        name=name,
        address=address,
        lat=lat,
        lon=lon,
        hazards=frozenset(h for h, flag in zip(HazardType, flags, strict=True) if flag),
        capacity=capacity,
        accepts=accepts,
        note=note,
        same_address_as_other_kind=bool(same),
        source=source,
    )


class ShelterDirectory:
    def __init__(self, db: sqlite_utils.Database, region: str):
        self.db, self.region = db, region

    def _where(self, hazard: HazardType | None, kind: ShelterKind | None, text: str) -> tuple[str, list]:
        clauses, params = ["region = ?"], [self.region]
        if hazard is not None:
            clauses.append(f"{hazard.value} = 1")  # enum value, never user text
        if kind is not None:
            clauses.append("kind = ?")
            params.append(kind.value)
        for word in text.split():
            clauses.append("(name LIKE ? OR address LIKE ?)")
            params += [f"%{word}%", f"%{word}%"]
        return " AND ".join(clauses), params

    def search(
        self,
        text: str = "",
        hazard: HazardType | None = None,
        kind: ShelterKind | None = None,
        origin: LatLon | None = None,
    ) -> list[ShelterHit]:
        """Shelters matching every word of ``text`` in name or address; nearest first when ``origin`` is set."""
        where, params = self._where(hazard, kind, text)
        rows = self.db.execute(f"SELECT {_COLUMNS} FROM shelter WHERE {where} ORDER BY kind, name", params).fetchall()
        hits = [ShelterHit(s, distance_m(origin, LatLon(s.lat, s.lon)) if origin else None) for s in map(_shelter, rows)]
        if origin:
            hits.sort(key=_distance)
        return hits

    def count(self, hazard: HazardType | None = None, kind: ShelterKind | None = None) -> int:
        where, params = self._where(hazard, kind, "")
        return self.db.execute(f"SELECT count(*) FROM shelter WHERE {where}", params).fetchone()[0]

    def get(self, kind: ShelterKind, shelter_id: str) -> Shelter | None:
        row = self.db.execute(
            f"SELECT {_COLUMNS} FROM shelter WHERE region = ? AND kind = ? AND id = ?", [self.region, kind.value, shelter_id]
        ).fetchone()
        return _shelter(row) if row else None

    def same_place(self, shelter: Shelter) -> Shelter | None:
        """The record of the other kind for the same facility (GSI lists sites and shelters apart)."""
        other = ShelterKind.DESIGNATED_SHELTER if shelter.kind is ShelterKind.EMERGENCY_SITE else ShelterKind.EMERGENCY_SITE
        row = self.db.execute(
            f"SELECT {_COLUMNS} FROM shelter WHERE region = ? AND kind = ? AND name = ? AND (address = ? OR abs(lat - ?) + abs(lon - ?) < 0.0005)",
            [self.region, other.value, shelter.name, shelter.address, shelter.lat, shelter.lon],
        ).fetchone()
        return _shelter(row) if row else None

    def nearest(self, origin: LatLon, n: int = 10, hazard: HazardType | None = None) -> list[ShelterHit]:
        """The ``n`` nearest shelters (suitable for ``hazard`` if given), via the R*Tree."""
        where, params = self._where(hazard, None, "")
        total = self.count(hazard)
        want = min(n, total)
        if want == 0:
            return []
        half_m = 500.0
        while True:
            dlat = half_m / _M_PER_DEG_LAT
            dlon = half_m / (_M_PER_DEG_LAT * max(math.cos(math.radians(origin.lat)), 0.01))
            rows = self.db.execute(
                f"SELECT {_COLUMNS} FROM shelter WHERE rowid IN ("
                "SELECT rowid FROM shelter_rtree WHERE min_lat >= ? AND max_lat <= ? AND min_lon >= ? AND max_lon <= ?)"
                f" AND {where}",
                [origin.lat - dlat, origin.lat + dlat, origin.lon - dlon, origin.lon + dlon, *params],
            ).fetchall()
            hits = sorted(
                (ShelterHit(s, distance_m(origin, LatLon(s.lat, s.lon))) for s in map(_shelter, rows)),
                key=_distance,
            )
            # Anything within the window's inscribed circle is certainly among the nearest;
            # a hit beyond it might be beaten by a shelter just outside the window.
            if len(hits) == total or (len(hits) >= want and _distance(hits[want - 1]) <= half_m):
                return hits[:want]
            half_m *= 2

    def nearest_full_scan(self, origin: LatLon, n: int = 10, hazard: HazardType | None = None) -> list[ShelterHit]:
        """Baseline for the benchmark: distance to every shelter, then sort."""
        return self.search(hazard=hazard, origin=origin)[:n]

    def bounds(self) -> tuple[LatLon, LatLon] | None:
        row = self.db.execute("SELECT min(lat), min(lon), max(lat), max(lon) FROM shelter WHERE region = ?", [self.region]).fetchone()
        return (LatLon(row[0], row[1]), LatLon(row[2], row[3])) if row[0] is not None else None
