"""Disaster HQ queries: the platform shows staff only what residents shared with the city."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.family import SafetyStatus, counts_by_area, load_snapshot, status_entity
from app.family._model import Answer
from app.platform import PlatformClient, PlatformHttp
from cityos.testing import run_cityos
from protocol.entities import make_entity, rel
from tests.test_identity_cityos import login

T = "352021"
NORTH = [[(131.20, 33.96), (131.30, 33.96), (131.30, 34.00), (131.20, 34.00), (131.20, 33.96)]]
SOUTH = [[(131.20, 33.92), (131.30, 33.92), (131.30, 33.96), (131.20, 33.96), (131.20, 33.92)]]


def answer(person: str, status: str, minutes: int, lat: float | None = None, lon: float | None = None,
           by: str | None = None) -> Answer:
    return Answer(f"a-{person}-{minutes}", person, SafetyStatus(status), datetime(2026, 7, 1, 5, tzinfo=UTC) + timedelta(minutes=minutes),
                  by or person, None, lat, lon)


def test_counts_by_area_use_each_persons_latest_answer() -> None:
    answers = [answer("p1", "evacuating", 0, 33.97, 131.25), answer("p1", "atShelter", 20, 33.97, 131.25),
               answer("p2", "needHelp", 5, 33.93, 131.22), answer("p3", "safe", 6),
               answer("p4", "injured", 7, 34.5, 131.9), answer("p5", "safe", -60, 33.97, 131.25)]
    counts = counts_by_area(answers, {"north": [NORTH], "south": [SOUTH]}, since=datetime(2026, 7, 1, 5, tzinfo=UTC))
    nonzero = {area: {s: n for s, n in c.items() if n} for area, c in counts.items()}
    assert nonzero == {"north": {"atShelter": 1}, "south": {"needHelp": 1}, "unlocated": {"safe": 1}, "outside": {"injured": 1}}
    assert set(counts["north"]) == {s.value for s in SafetyStatus}  # every status present, zeros included


def test_hq_sees_only_what_residents_shared_with_the_city(tmp_path) -> None:
    with run_cityos(tmp_path, extra_args=["--rate-limit", "0"]) as server:
        r1 = login(server.base_url, "ube-resident-1")
        r2 = login(server.base_url, "ube-resident-2")
        sub1, sub2 = r1.userinfo()["sub"], r2.userinfo()["sub"]
        c1, c2 = PlatformClient(PlatformHttp(server.base_url, T, auth=r1.auth)), PlatformClient(PlatformHttp(server.base_url, T, auth=r2.auth))
        alert_at = datetime.now(UTC) - timedelta(minutes=1)
        # r1 is a 要支援者 who agreed to be listed, and answered with location shared with the city.
        for category in ("care_information", "safety_status", "location"):
            c1.grant_consent(category, "disaster_response", "city")
        c1.upsert([make_entity("CareInformation", sub1, T, person=rel(f"urn:ngsi-ld:Person:{sub1}"), supportNeeded=True,
                               name="宇部 一郎", address="宇部市琴芝町", needs=["wheelchair"])])
        # r2 is listed too but shares answers with family only: invisible to HQ, counted as unanswered.
        c2.grant_consent("care_information", "disaster_response", "city")
        c2.grant_consent("safety_status", "disaster_response", "family")
        c2.upsert([make_entity("CareInformation", sub2, T, person=rel(f"urn:ngsi-ld:Person:{sub2}"), supportNeeded=True,
                               name="宇部 花子", address="宇部市常盤町")])
        staff = PlatformClient(PlatformHttp(server.base_url, T, auth=login(server.base_url, "ube-city-1").auth))
        assert {p.person for p in load_snapshot(staff).unanswered(alert_at)} == {sub1, sub2}

        now = datetime.now(UTC)
        c1.upsert([status_entity(Answer("x1", sub1, SafetyStatus.AT_SHELTER, now, sub1, None, 33.97, 131.25), T)])
        c2.upsert([status_entity(Answer("x2", sub2, SafetyStatus.NEED_HELP, now, sub2), T)])
        snap = load_snapshot(staff)
        assert [a.person for a in snap.answers] == [sub1]
        assert [p.name for p in snap.unanswered(alert_at)] == ["宇部 花子"]
        assert snap.counts({"north": [NORTH]})["north"]["atShelter"] == 1
        points = snap.map_points(now=now + timedelta(minutes=3))
        assert [(p.person, p.status, p.age_s, p.proxy) for p in points] == [(sub1, SafetyStatus.AT_SHELTER, 180, False)]

        c1.revoke_consent("location", "disaster_response", "city")
        assert load_snapshot(staff).map_points() == []  # location gone from HQ's map with the consent
        assert load_snapshot(staff).counts({"north": [NORTH]})["unlocated"]["atShelter"] == 1
