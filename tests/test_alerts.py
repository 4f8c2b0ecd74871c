"""Alert targeting (polygon / municipality), expiry, notification once, banner text."""
from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.family import (
    AlertDesk,
    InvalidAlert,
    Place,
    alert_entity,
    alert_from_entity,
    alerts_for,
    read_alerts,
)
from app.i18n import Translator
from offline.store import open_store

NOW = datetime(2026, 7, 1, 5, 0, tzinfo=UTC)
UBE = "352021"
# A rectangle around central Ube with a hole (a hill that is not flooded).
BOX = [[131.20, 33.93], [131.30, 33.93], [131.30, 33.98], [131.20, 33.98], [131.20, 33.93]]
HOLE = [[131.24, 33.95], [131.26, 33.95], [131.26, 33.96], [131.24, 33.96], [131.24, 33.95]]


def flood(local_id: str = "flood-1", *, polygon=None, codes=(), hours: float = 3, level: int = 4, issued=NOW):
    return alert_entity(local_id, UBE, hazard="flood", level=level, headline="厚東川が氾濫危険水位に達しました",
                        issued_at=issued, expires_at=issued + timedelta(hours=hours), polygon=polygon,
                        municipalities=codes)


def test_polygon_target_with_hole_and_municipality_target() -> None:
    poly = alert_from_entity(flood(polygon={"type": "Polygon", "coordinates": [BOX, HOLE]}))
    town = alert_from_entity(flood("town-1", codes=[UBE], level=3))
    inside, in_hole, outside = Place(33.94, 131.22), Place(33.955, 131.25), Place(34.10, 131.40)
    assert poly.covers(inside) and not poly.covers(in_hole) and not poly.covers(outside)
    assert town.covers(Place(34.10, 131.40, UBE)) and not town.covers(Place(33.94, 131.22, "072028"))
    assert not town.covers(inside)  # municipality unknown: only polygons can match
    assert [a.id for a in alerts_for([town, poly], [outside, inside], NOW)] == [poly.id]
    assert [a.id for a in alerts_for([town, poly], [inside, Place(0, 0, UBE)], NOW)] == [poly.id, town.id]  # level 4 first


def test_expired_and_future_alerts_stop_showing() -> None:
    alert = alert_from_entity(flood(codes=[UBE], hours=1))
    home = Place(33.95, 131.25, UBE)
    assert alerts_for([alert], [home], NOW + timedelta(minutes=59))
    assert alerts_for([alert], [home], NOW + timedelta(hours=1)) == []
    assert alerts_for([alert], [home], NOW - timedelta(seconds=1)) == []


def test_unreadable_alerts_are_skipped_whole() -> None:
    good = flood(codes=[UBE])
    broken = [
        {**good, "level": {"type": "Property", "value": 6}},
        {**good, "targetMunicipalities": {"type": "Property", "value": ["35202"]}},
        {k: v for k, v in good.items() if k != "targetMunicipalities"},
        {**good, "expiresAt": {"type": "Property", "value": "soon"}},
        {**good, "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [131.2, 33.9]}}},
        {"id": "urn:ngsi-ld:Alert:old", "type": "Alert", "category": {"type": "Property", "value": "flood"}},
    ]
    for entity in broken:
        with pytest.raises(InvalidAlert):
            alert_from_entity(entity)
    assert [a.id for a in read_alerts([*broken, good])] == [good["id"]]
    with pytest.raises(InvalidAlert):
        flood(codes=[UBE], hours=-1)  # the publisher cannot make an unreadable alert either


def test_notified_once_banner_and_answer(tmp_path) -> None:
    db = open_store(tmp_path / "a.db")
    desk = AlertDesk(db, Translator("ja"))
    alerts = read_alerts([flood(codes=[UBE]), flood("far", polygon={"type": "Polygon", "coordinates": [BOX]})])
    shown: list[tuple[str, str]] = []

    class Recorder:
        def notify(self, title: str, message: str, app_name: str, timeout: int) -> None:
            shown.append((title, message))

    home = Place(34.2, 131.5, UBE)
    assert [a.id for a in desk.notify_new(alerts, [home], Recorder(), NOW)] == ["urn:ngsi-ld:Alert:flood-1"]
    assert desk.notify_new(alerts, [home], Recorder(), NOW) == []  # told once
    assert shown == [("警戒レベル4 避難指示 全員避難", "厚東川が氾濫危険水位に達しました")]
    banner = desk.banners(alerts, [home], NOW)[0]
    assert banner.ask_for_answer
    desk.mark_answered(banner.alert.id, NOW)
    assert not desk.banners(alerts, [home], NOW)[0].ask_for_answer

    class Broken:
        def notify(self, **kwargs) -> None:
            raise NotImplementedError("no notification backend")

    assert desk.notify_new(alerts, [Place(33.94, 131.22)], Broken(), NOW)  # banner still shows; no crash


# --- properties of the point-in-area logic (geo.hazards.point_in_polygon, reused) ---------------

coord = st.floats(min_value=-170, max_value=170, allow_nan=False)
lat_c = st.floats(min_value=-80, max_value=80, allow_nan=False)
size = st.floats(min_value=0.001, max_value=5)
frac = st.floats(min_value=0.01, max_value=0.99)


def rect(x: float, y: float, w: float, h: float) -> list[list[float]]:
    return [[x, y], [x + w, y], [x + w, y + h], [x, y + h], [x, y]]


def area_alert(rings, codes=()):
    return alert_from_entity(alert_entity("p", UBE, hazard="flood", level=3, headline="", issued_at=NOW,
                                          expires_at=NOW + timedelta(hours=1),
                                          polygon={"type": "Polygon", "coordinates": rings}, municipalities=codes))


@settings(max_examples=150, deadline=None)
@given(coord, lat_c, size, size, frac, frac)
def test_points_strictly_inside_a_rectangle_are_covered(x, y, w, h, fx, fy) -> None:
    alert = area_alert([rect(x, y, w, h)])
    assert alert.covers(Place(y + fy * h, x + fx * w))
    assert not alert.covers(Place(y + h + 0.5, x + fx * w)) and not alert.covers(Place(y + fy * h, x - 0.5))


@settings(max_examples=150, deadline=None)
@given(coord, lat_c, size, frac, frac, st.booleans())
def test_a_hole_is_not_covered_and_orientation_does_not_matter(x, y, s, fx, fy, reverse) -> None:
    outer, hole = rect(x, y, s, s), rect(x + s / 4, y + s / 4, s / 2, s / 2)
    if reverse:
        outer, hole = outer[::-1], hole[::-1]
    alert = area_alert([outer, hole])
    in_hole = Place(y + s / 4 + fy * s / 2, x + s / 4 + fx * s / 2)
    in_ring = Place(y + fy * s / 8, x + fx * s)  # the band below the hole
    assert not alert.covers(in_hole) and alert.covers(in_ring)


@settings(max_examples=100, deadline=None)
@given(coord, lat_c, size, st.integers(min_value=3, max_value=24), st.floats(min_value=0, max_value=0.9),
       st.floats(min_value=0, max_value=2 * math.pi))
def test_convex_polygon_contains_points_near_its_centre_only(cx, cy, r, n, fr, angle) -> None:
    ring = [[cx + r * math.cos(2 * math.pi * i / n), cy + r * math.sin(2 * math.pi * i / n)] for i in range(n)]
    alert = area_alert([[*ring, ring[0]]])
    inner = r * math.cos(math.pi / n) * fr  # inside the inscribed circle
    assert alert.covers(Place(cy + inner * math.sin(angle), cx + inner * math.cos(angle)))
    assert not alert.covers(Place(cy + 1.01 * r * math.sin(angle), cx + 1.01 * r * math.cos(angle)))


@settings(max_examples=100, deadline=None)
@given(coord, lat_c, st.sampled_from(["352021", "072028", "131016"]))
def test_municipality_target_matches_exactly_the_listed_codes(lon, lat, code) -> None:
    alert = area_alert([rect(0.0, 0.0, 0.001, 0.001)], codes=["352021"])
    assert alert.covers(Place(lat + 1, lon, code)) == (code == "352021")
