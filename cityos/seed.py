"""Seed EvacuationShelter entities from a region's GSI files (read with geo.regionfiles)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import select

from cityos.store import Store, current_tx, entity, reserve_seqs, touch_public, utc_now
from geo.models import Shelter
from geo.regionfiles import RegionFileError, read_shelters
from geo.regions import RegionNotFound, find_region

log = logging.getLogger("cityos")
GSI_SOURCE = "国土地理院 指定緊急避難場所・指定避難所データ"


def shelter_entity(shelter: Shelter, municipality_code: str) -> dict[str, Any]:
    def prop(value: Any) -> dict[str, Any]:
        return {"type": "Property", "value": value}

    return {
        "id": f"urn:ngsi-ld:EvacuationShelter:{shelter.id}",
        "type": "EvacuationShelter",
        "name": prop(shelter.name),
        "address": prop(shelter.address),
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [shelter.lon, shelter.lat]}},
        "shelterKind": prop(shelter.kind.value),
        "hazardSuitability": prop(sorted(h.value for h in shelter.hazards)),
        "status": prop("closed"),
        "occupancy": prop(0),
        "municipalityCode": prop(municipality_code),
        "source": prop(f"{GSI_SOURCE} ({shelter.source})"),
    }


def seed_shelters(store: Store, data_dir: Path | None, code: str) -> int:
    """Add the region's shelters that are not stored yet; existing ones (staff updates) stay.

    Returns how many were added. A missing data folder is logged, not fatal: the platform
    still serves everything else.
    """
    try:
        region = find_region(data_dir, code)
    except RegionNotFound as exc:
        log.warning("no shelters seeded for %s: %s", code, exc)
        return 0
    shelters: dict[str, Shelter] = {}
    for path in (region.emergency_sites_file, region.designated_shelters_file):
        if path is None:
            continue
        try:
            for shelter in read_shelters(path):
                shelters.setdefault(shelter.id, shelter)  # same 共通ID in both files: first (emergency site) wins
        except RegionFileError as exc:
            log.error("shelter file skipped: %s", exc)
    with store.write() as conn:
        existing = set(conn.execute(select(entity.c.id).where(entity.c.tenant == code, entity.c.type == "EvacuationShelter")).scalars())
        bodies = [shelter_entity(s, code) for s in shelters.values()]
        bodies = [b for b in bodies if b["id"] not in existing]
        if bodies:
            now, tx = utc_now(), current_tx(conn)
            rows = [
                {"tenant": code, "id": b["id"], "type": b["type"], "owner_sub": None, "category": None, "body": b, "deleted": False,
                 "created_at": now, "modified_at": now, "seq": seq, "tx": tx, "lat": b["location"]["value"]["coordinates"][1],
                 "lon": b["location"]["value"]["coordinates"][0]}
                for b, seq in zip(bodies, reserve_seqs(conn, len(bodies)), strict=True)
            ]
            conn.execute(entity.insert(), rows)
            touch_public(conn, code)
    return len(bodies)
