"""The disaster HQ against the real platform: names and SOS of residents who share with the
city (and nobody else), search by name, resolving, catchment counts, the shelter board, and
issuing / updating / ending alerts that residents' apps read."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from app.consent import DataCategory
from app.family import (
    ConsentMissing,
    InvalidAnswer,
    NotAllowed,
    SupportRegister,
    SupportRegistration,
    UnknownGroup,
    counts_by_area,
    end_alert,
    hq_people,
    issue_alert,
    load_snapshot,
    needs_words,
    read_alerts,
    shelter_board,
)
from tests.test_family_cityos import Phone, cityos  # noqa: F401 - the module's platform fixture


@pytest.fixture()
def people(cityos, tmp_path) -> Iterator[tuple[Phone, Phone, Phone]]:  # noqa: F811
    phones = tuple(Phone(tmp_path / f"{n}.db", cityos.base_url, user)
                   for n, user in (("a", "ube-resident-1"), ("b", "ube-resident-2"), ("hq", "ube-city-1")))
    yield phones  # type: ignore[misc]
    for phone in phones:
        phone.close()


def test_hq_sees_names_and_sos_only_of_residents_who_share_with_the_city(people) -> None:
    a, b, hq = people
    a.consents.grant(DataCategory.SAFETY_STATUS)
    a.consents.grant(DataCategory.LOCATION)
    a.book.answer("needHelp", message="水が来ています", lat=33.9516, lon=131.2467)
    a.push()
    b.consents.revoke(DataCategory.SAFETY_STATUS)  # B shares nothing with the city
    b.push()
    with pytest.raises(NotAllowed):
        a.family.client.hq_people()  # residents cannot read the HQ list
    listed = hq_people(hq.family.client.hq_people())
    assert b.me not in [p.person for p in listed]
    mine = next(p for p in listed if p.person == a.me)
    assert (mine.name, mine.sos.message, (mine.sos.lat, mine.sos.lon)) == ("宇部 一郎", "水が来ています", (33.9516, 131.2467))
    assert [p.person for p in hq_people(hq.family.client.hq_people(name="一郎", sos_only=True))] == [a.me]
    assert hq_people(hq.family.client.hq_people(name="存在しない名前")) == []
    assert hq.family.client.resolve_sos(a.me) == 1
    assert a.me not in [p.person for p in hq_people(hq.family.client.hq_people(sos_only=True))]

    # Answers per area (an area: name → polygons, outer ring then holes, (lon, lat)).
    answers = [p.latest for p in listed if p.latest]
    square = [[(131.2, 33.9), (131.3, 33.9), (131.3, 34.0), (131.2, 34.0), (131.2, 33.9)]]
    counts = counts_by_area(answers, {"琴芝小学校": [square]})
    assert counts["琴芝小学校"]["needHelp"] >= 1


def test_hq_issues_updates_and_ends_an_alert_that_residents_read(people) -> None:
    a, _, hq = people
    alert_id = issue_alert(hq.client, "352021", hazard="flood", level=3, headline="厚東川 水位上昇", minutes=60)
    issue_alert(hq.client, "352021", hazard="flood", level=4, headline="厚東川 氾濫危険", minutes=60,
                alert_id=alert_id.rsplit(":", 1)[-1])
    a.engine.pull("alerts")
    alert = next(x for x in read_alerts(a.engine.entities("alerts")) if x.id == alert_id)
    assert (alert.level, alert.headline, alert.active(datetime.now(UTC))) == (4, "厚東川 氾濫危険", True)
    end_alert(hq.client, "352021", alert)
    a.engine.pull("alerts")
    ended = next(x for x in read_alerts(a.engine.entities("alerts")) if x.id == alert_id)
    assert not ended.active(datetime.now(UTC))


def test_shelter_board_orders_fullest_first_and_keeps_self_reports_apart() -> None:
    def shelter(i: str, status: str, occupancy: int, capacity: int | None, extra: int = 0) -> dict:
        e = {"id": f"urn:ngsi-ld:EvacuationShelter:{i}", "status": {"type": "Property", "value": status},
             "occupancy": {"type": "Property", "value": occupancy}, "selfReported": {"type": "Property", "value": extra}}
        return {**e, "capacity": {"type": "Property", "value": capacity}} if capacity else e

    rows = shelter_board([shelter("a", "open", 10, 100, 4), shelter("b", "full", 50, 50), shelter("c", "closed", 0, 30),
                          {"id": "urn:ngsi-ld:EvacuationShelter:d"}])
    assert [(r.shelter_id, r.load_pct, r.self_reported) for r in rows] == [("b", 100, 0), ("a", 10, 4), ("c", 0, 0)]


def test_a_resident_registers_as_needing_support_and_revoking_removes_it(people) -> None:
    a, b, hq = people
    register = SupportRegister(a.consents, a.outbox, a.me, "352021", a.consents.ledger.is_granted)
    reg = SupportRegistration("宇部 一郎", "宇部市琴芝町1丁目", ("wheelchair", "oxygen"), caregiver=b.me)
    with pytest.raises(ConsentMissing):
        register.register(reg)  # the screen asks for the consent first
    a.consents.grant(DataCategory.CARE_INFORMATION)
    register.register(reg)
    with pytest.raises(InvalidAnswer):
        register.register(SupportRegistration("宇部 一郎", "", ("rocket",)))
    a.push()
    listed = {p.person: p for p in load_snapshot(hq.client).people}
    assert (listed[a.me].name, listed[a.me].needs) == ("宇部 一郎", ("wheelchair", "oxygen"))
    words = {"family.need.wheelchair": "車いす", "family.need.oxygen": "在宅酸素"}
    assert needs_words(listed[a.me].needs, words.__getitem__) == "車いす、在宅酸素"
    register.withdraw()
    a.push()
    assert a.me not in {p.person for p in load_snapshot(hq.client).people}


def test_hq_asks_a_listed_person_to_answer_and_the_app_learns_it(people) -> None:
    a, b, hq = people
    with pytest.raises(UnknownGroup):
        hq.family.client.remind(b.me)  # B is not listed as needing support
    a.consents.grant(DataCategory.CARE_INFORMATION)
    SupportRegister(a.consents, a.outbox, a.me, "352021", a.consents.ledger.is_granted).register(
        SupportRegistration("宇部 一郎", "", ("dialysis",)))
    a.push()
    with pytest.raises(NotAllowed):
        b.family.client.remind(a.me)  # only the HQ
    hq.family.client.remind(a.me)
    assert a.family.client.reminded_at() is not None and b.family.client.reminded_at() is None
