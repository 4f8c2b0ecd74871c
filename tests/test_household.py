"""Household profile (sealed at rest), walking speed, マイ・タイムライン plan and supplies checklist."""
from __future__ import annotations

import pytest

from app.household import (
    AgeBand,
    Contact,
    Household,
    HouseholdMember,
    HouseholdStore,
    Mobility,
    Pet,
    evacuation_plan,
    plan_text,
    stockpile_days,
    supplies,
    walking_speed_mps,
)
from app.i18n import Translator
from geo.models import LatLon, Shelter
from geo.routing import EvacuationRouter, RoadGraph
from offline.atrest import AtRestKeyError, new_key
from offline.store import open_store
from protocol.hazards import HazardType, ShelterKind

HOME = LatLon(33.95, 131.25)


@pytest.fixture()
def db(tmp_path):
    store = open_store(tmp_path / "hh.sqlite")
    yield store
    store.conn.close()


def family() -> Household:
    return Household(
        members=[
            HouseholdMember(AgeBand.ADULT, sex="female", allergies=["卵"], label="母"),
            HouseholdMember(AgeBand.INFANT),
            HouseholdMember(AgeBand.SENIOR, mobility=Mobility.WHEELCHAIR, medications=["降圧剤"], label="祖父"),
        ],
        pets=[Pet("dog")],
        contacts=[Contact("山田花子", "090-0000-0000", "姉")],
    )


def test_a_record_moved_to_another_household_does_not_open(db):
    store, first, second = HouseholdStore(db, key := new_key()), family(), family()
    store.save(first)
    store.save(second)
    db.execute("UPDATE household SET sealed = (SELECT sealed FROM household WHERE id = ?) WHERE id = ?", [first.id, second.id])
    with pytest.raises(AtRestKeyError):
        HouseholdStore(db, key).load(second.id)


def test_profile_round_trips_and_is_unreadable_at_rest(db, tmp_path):
    store, home = HouseholdStore(db, new_key()), family()
    home.shelters[HazardType.FLOOD] = ("A", "B")
    home.checked.add("water")
    store.save(home)
    assert store.load(home.id) == home and store.ids() == [home.id]
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw = (tmp_path / "hh.sqlite").read_bytes()
    for secret in ("降圧剤", "090-0000-0000", "wheelchair", "山田花子"):
        assert secret.encode() not in raw
    store.delete(home.id)
    assert store.load(home.id) is None


def test_wrong_key_is_a_clear_error(db):
    home = family()
    HouseholdStore(db, new_key()).save(home)
    with pytest.raises(AtRestKeyError, match="wrong key"):
        HouseholdStore(db, new_key()).load(home.id)
    with pytest.raises(AtRestKeyError, match="32 bytes"):
        HouseholdStore(db, b"short").save(home)


def test_walking_speed_is_the_slowest_members():
    assert walking_speed_mps(Household(members=[HouseholdMember(AgeBand.ADULT)])) == 1.0
    assert walking_speed_mps(family()) == 0.6  # wheelchair
    assert walking_speed_mps(family(), {"wheelchair": 0.4}) == 0.4
    assert walking_speed_mps(Household(members=[HouseholdMember(AgeBand.SENIOR)], walking_speed_override_mps=1.2)) == 1.2


def test_supplies_scale_with_people_days_and_needs():
    items = {i.key: i for i in supplies(family(), days=3)}
    assert items["water"].quantity == 3 * 3 * 3  # 3 L × 3 people × 3 days
    assert items["food"].quantity == 27 and items["portable_toilet"].quantity == 45
    assert items["diapers"].quantity == 24 and items["infant_formula"].quantity == 18
    assert items["medication"].quantity == 7  # one member, at least a week
    assert items["pet_food"].quantity == 3 and "allergy_safe_food" in items and "sanitary_products" in items
    single = {i.key for i in supplies(Household(members=[HouseholdMember(AgeBand.ADULT, sex="male")]), days=7)}
    assert not single & {"diapers", "medication", "pet_food", "sanitary_products", "mobility_aids"}
    assert next(i for i in supplies(Household(), days=7) if i.key == "water").quantity == 21
    with pytest.raises(ValueError):
        supplies(family(), days=0)


def test_ticks_show_in_the_checklist(db):
    home = family()
    home.checked.add("diapers")
    assert [i.key for i in supplies(home) if i.checked] == ["diapers"]


def test_city_sets_the_stockpile_days(db):
    assert stockpile_days(db, "352021") == 3
    db["setting"].upsert({"key": "supplies.days.352021", "value": "7"}, pk="key")
    assert stockpile_days(db, "352021") == 7


def _router() -> EvacuationRouter:
    # Two streets north of home; shelters at 300 m and 600 m.
    lat = [33.95 + k * 100 / 110_930 for k in range(7)]
    lon = [131.25] * 7
    eu = [k for k in range(6)] + [k + 1 for k in range(6)]
    ev = [k + 1 for k in range(6)] + [k for k in range(6)]
    graph = RoadGraph(lat, lon, eu, ev, [100.0] * 12)
    shelters = [
        Shelter("A", ShelterKind.EMERGENCY_SITE, "第一小学校", "", lat[3], lon[3], frozenset({HazardType.FLOOD})),
        Shelter("B", ShelterKind.EMERGENCY_SITE, "公民館", "", lat[6], lon[6], frozenset({HazardType.FLOOD})),
    ]
    return EvacuationRouter(graph, shelters)


def test_plan_leaves_early_for_elderly_and_uses_the_router():
    plan = evacuation_plan(family(), HazardType.FLOOD, _router(), HOME)
    assert plan.leave_at_alert == 3 and (3, "plan.alert3_leave") in plan.steps
    assert (plan.primary.id, plan.backup.id) == ("A", "B")
    assert plan.primary.walking_time_s == pytest.approx(300 / 0.6)
    adults = evacuation_plan(Household(members=[HouseholdMember(AgeBand.ADULT)]), HazardType.FLOOD, _router(), HOME)
    assert adults.leave_at_alert == 4 and (3, "plan.alert3_prepare") in adults.steps
    assert evacuation_plan(family(), HazardType.TSUNAMI, _router(), HOME).leave_at_alert is None


def test_chosen_shelters_win_and_missing_home_is_said():
    home = family()
    home.shelters[HazardType.FLOOD] = ("B", None)
    plan = evacuation_plan(home, HazardType.FLOOD, _router(), HOME)
    assert plan.primary.name == "公民館" and plan.backup is None
    home.shelters = {}
    assert evacuation_plan(home, HazardType.FLOOD, _router()).route_status_key == "plan.no_home"


@pytest.mark.parametrize("lang, words", [("ja", ["警戒レベル3", "第一小学校", "徒歩約8分", "おむつ", "山田花子"]),
                                         ("en", ["alert level 3", "第一小学校", "about 8 min", "Diapers"])])
def test_plan_text_in_both_languages(lang, words):
    text = plan_text(evacuation_plan(family(), HazardType.FLOOD, _router(), HOME), Translator(lang))
    for word in words:
        assert word in text
    assert "water" not in [line.strip() for line in text.splitlines()]  # the home stockpile is not in the go-bag
