"""Issue a disaster alert from the city's side (災害対策本部), e.g. a test alert for a drill.

    python -m cityos.alerts --test --hazard flood --level 3 --minutes 30
    python -m cityos.alerts --hazard flood --level 4 --polygon area.geojson --headline "厚東川 氾濫危険"
    python -m cityos.alerts --db postgresql://… --municipality 072028 --hazard earthquake --level 5

It writes an ``Alert`` entity (the shape ``protocol.family.alert_entity`` defines) into the
platform's database, as the running server would, so the change feed hands it to every app at
its next pull. Without ``--polygon`` the alert targets the whole municipality. The same can be
done over HTTP with a ``city_staff`` token: ``POST /ngsi-ld/v1/entityOperations/upsert`` with
the Alert entity (``DELETE /ngsi-ld/v1/entities/{id}`` withdraws it). Prints the alert id.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cityos.entities import get_row, put_entity
from cityos.settings import Settings
from cityos.store import Store
from protocol.family import FamilyError, alert_entity


def _polygon(text: str) -> dict[str, Any]:
    """A GeoJSON Polygon/MultiPolygon, Feature or FeatureCollection (first feature), from a file or inline."""
    path = Path(text)
    raw = path.read_text(encoding="utf-8") if path.is_file() else text
    data = json.loads(raw)
    if data.get("type") == "FeatureCollection":
        data = data["features"][0]
    if data.get("type") == "Feature":
        data = data["geometry"]
    return data


def issue(db_url: str, municipality: str, *, hazard: str, level: int, minutes: int, headline: str,
          polygon: dict[str, Any] | None, is_test: bool, now: datetime | None = None) -> str:
    """Store the alert; return its entity id."""
    now = now or datetime.now(UTC)
    entity = alert_entity(("test-" if is_test else "") + uuid.uuid4().hex[:16], municipality, hazard=hazard, level=level,
                          headline=headline, issued_at=now, expires_at=now + timedelta(minutes=minutes),
                          polygon=polygon, municipalities=[] if polygon else [municipality], is_test=is_test)
    store = Store(db_url)
    try:
        with store.write() as conn:
            put_entity(conn, municipality, entity, None, None, get_row(conn, municipality, entity["id"]))
    finally:
        store.close()
    return entity["id"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cityos.alerts", description="Issue a disaster alert (see docs/cityos.md)")
    parser.add_argument("--db", default=os.environ.get("CITYOS_DB_URL", Settings().db_url))
    parser.add_argument("--municipality", default=os.environ.get("CITYOS_REGIONS", "352021").split(",")[0])
    parser.add_argument("--hazard", default="flood",
                        help="flood, landslide, storm_surge, earthquake, tsunami, fire, inland_flood, volcano, heavy_rain")
    parser.add_argument("--level", type=int, default=3, help="警戒レベル 1-5")
    parser.add_argument("--minutes", type=int, default=60, help="how long the alert stays active")
    parser.add_argument("--polygon", help="target area: GeoJSON file or text; default: the whole municipality")
    parser.add_argument("--headline", default="")
    parser.add_argument("--test", action="store_true", help="mark as a test/drill alert (shown as 訓練)")
    args = parser.parse_args(argv)
    try:
        polygon = _polygon(args.polygon) if args.polygon else None
        headline = args.headline or ("これは訓練です / This is a test" if args.test else "")
        alert_id = issue(args.db, args.municipality, hazard=args.hazard, level=args.level, minutes=args.minutes,
                         headline=headline, polygon=polygon, is_test=args.test)
    except (FamilyError, ValueError, KeyError, OSError) as exc:
        print(f"cityos.alerts: alert not issued: {exc}", file=sys.stderr)
        return 2
    print(alert_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
