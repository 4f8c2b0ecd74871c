"""Household profile, personal evacuation plan (マイ・タイムライン) and supplies checklist.

Usage::

    store = HouseholdStore(db, key)                 # key: 32 bytes kept outside SQLite (app.devicekeys)
    family = Household(members=[HouseholdMember(AgeBand.SENIOR, mobility=Mobility.WHEELCHAIR)])
    store.save(family)
    plan = evacuation_plan(family, HazardType.FLOOD, router, home=prefs.home)  # home: app.preferences
    print(plan_text(plan, Translator("ja")))                  # any language of app.i18n
    items = supplies(family, days=stockpile_days(db, "352021"))
    family.checked.add("water"); store.save(family)           # tick-off state

Personal data is kept to what the plan needs and never stored readable: the whole record is
one JSON blob per household sealed with ``offline.atrest`` (table ``household``); the key stays
outside SQLite. A wrong key or damaged record raises ``offline.atrest.AtRestKeyError``.
The home position is not part of the record: it is the sealed home of ``app.preferences``.

Alert levels follow Japan's 警戒レベル: a household with elderly members, mobility needs or
infants (people who need time, 高齢者等) leaves at level 3, everyone else at level 4.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

import sqlite_utils

from app.i18n import Translator
from geo.models import LatLon
from geo.routing import EvacuationRouter, RouteStatus
from geo.sql import utc_now
from offline.atrest import decrypt_at_rest, encrypt_at_rest
from protocol.hazards import HazardType

__all__ = [
    "AgeBand",
    "Contact",
    "EvacuationPlan",
    "Household",
    "HouseholdMember",
    "HouseholdStore",
    "Mobility",
    "Pet",
    "SupplyItem",
    "evacuation_plan",
    "plan_text",
    "stockpile_days",
    "supplies",
    "walking_speed_mps",
]

DEFAULT_STOCKPILE_DAYS = 3
WATER_L_PER_PERSON_DAY = 3.0
MEDICATION_MIN_DAYS = 7  # a week of regular medicine, whatever the food stockpile


class AgeBand(str, Enum):
    INFANT = "infant"  # 0–2
    CHILD = "child"  # 3–12
    ADULT = "adult"  # 13–64
    SENIOR = "senior"  # 65+


class Mobility(str, Enum):
    NONE = "none"
    SLOW = "slow"  # walks with difficulty, cane
    WHEELCHAIR = "wheelchair"
    ASSISTED = "assisted"  # must be helped or carried


# Walking speed of the slowest member decides the household's speed (m/s); configurable.
WALKING_SPEEDS_MPS: dict[str, float] = {
    "default": 1.0,
    AgeBand.SENIOR.value: 0.8,
    AgeBand.INFANT.value: 0.8,  # an adult carrying a small child
    Mobility.SLOW.value: 0.5,
    Mobility.WHEELCHAIR.value: 0.6,
    Mobility.ASSISTED.value: 0.5,
}


@dataclass(slots=True)
class HouseholdMember:
    age_band: AgeBand
    sex: str | None = None  # "female" / "male" / None; used only for the supplies list
    mobility: Mobility = Mobility.NONE
    medications: list[str] = field(default_factory=list)
    allergies: list[str] = field(default_factory=list)
    label: str = ""  # how the household calls them in the plan ("祖母"); optional


@dataclass(slots=True)
class Pet:
    kind: str  # "dog", "cat", "dog_or_cat" (as the household screen asks), "other"
    count: int = 1


@dataclass(slots=True)
class Contact:
    name: str
    phone: str
    relation: str = ""


@dataclass(slots=True)
class Household:
    members: list[HouseholdMember] = field(default_factory=list)
    pets: list[Pet] = field(default_factory=list)
    contacts: list[Contact] = field(default_factory=list)
    shelters: dict[HazardType, tuple[str | None, str | None]] = field(default_factory=dict)  # chosen (primary, backup) ids
    checked: set[str] = field(default_factory=set)  # supply keys ticked off
    walking_speed_override_mps: float | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def needs_early_evacuation(self) -> bool:
        """高齢者等避難 applies: elderly members, mobility needs, or infants."""
        return any(m.age_band in (AgeBand.SENIOR, AgeBand.INFANT) or m.mobility is not Mobility.NONE for m in self.members)

    @property
    def people(self) -> int:
        """Members to provide for; a household with no members entered is the resident alone."""
        return max(1, len(self.members))


def walking_speed_mps(household: Household, speeds: dict[str, float] | None = None) -> float:
    """The household's walking speed: its own override, else the slowest member's."""
    if household.walking_speed_override_mps:
        return household.walking_speed_override_mps
    table = {**WALKING_SPEEDS_MPS, **(speeds or {})}
    found = [table["default"]]
    for member in household.members:
        found += [table.get(member.age_band.value, table["default"]), table.get(member.mobility.value, table["default"])]
    return min(found)


# --- sealed storage ---------------------------------------------------------------------------


def _aad(household_id: str) -> bytes:
    return f"household:{household_id}".encode()


class HouseholdStore:
    def __init__(self, db: sqlite_utils.Database, key: bytes) -> None:
        self.db, self._key = db, key

    def save(self, household: Household) -> None:
        plain = json.dumps(_to_json(household), ensure_ascii=False, separators=(",", ":")).encode()
        sealed = encrypt_at_rest(self._key, plain, _aad(household.id))
        with self.db.atomic():
            self.db.table("household").upsert({"id": household.id, "sealed": sealed, "updated_at": utc_now()}, pk="id")

    def load(self, household_id: str) -> Household | None:
        row = self.db.execute("SELECT sealed FROM household WHERE id = ?", [household_id]).fetchone()
        if row is None:
            return None
        return _from_json(json.loads(decrypt_at_rest(self._key, row[0], _aad(household_id))))

    def ids(self) -> list[str]:
        return [row[0] for row in self.db.execute("SELECT id FROM household ORDER BY updated_at")]

    def delete(self, household_id: str) -> None:
        with self.db.atomic():
            self.db.execute("DELETE FROM household WHERE id = ?", [household_id])


def _to_json(h: Household) -> dict[str, Any]:
    return {
        "id": h.id,
        "members": [{**asdict(m), "age_band": m.age_band.value, "mobility": m.mobility.value} for m in h.members],
        "pets": [asdict(p) for p in h.pets],
        "contacts": [asdict(c) for c in h.contacts],
        "shelters": {hazard.value: list(ids) for hazard, ids in h.shelters.items()},
        "checked": sorted(h.checked),
        "walking_speed_override_mps": h.walking_speed_override_mps,
    }


def _from_json(data: dict[str, Any]) -> Household:
    return Household(
        members=[HouseholdMember(**{**m, "age_band": AgeBand(m["age_band"]), "mobility": Mobility(m["mobility"])}) for m in data["members"]],
        pets=[Pet(**p) for p in data["pets"]],
        contacts=[Contact(**c) for c in data["contacts"]],
        shelters={HazardType(k): (v[0], v[1]) for k, v in data["shelters"].items()},
        checked=set(data["checked"]),
        walking_speed_override_mps=data["walking_speed_override_mps"],
        id=data["id"],
    )


# --- supplies ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SupplyItem:
    key: str  # stable id and message key suffix: assets/i18n key f"supply.{key}"
    quantity: float
    unit: str  # message key suffix: assets/i18n key f"unit.{unit}"
    carry: bool  # belongs in the go-bag (持ち出し) rather than the home stockpile
    checked: bool = False


def stockpile_days(db: sqlite_utils.Database, region: str) -> int:
    """Days of stockpile the city asks for (setting ``supplies.days.<region>``), default 3."""
    row = db.execute("SELECT value FROM setting WHERE key = ?", [f"supplies.days.{region}"]).fetchone()
    try:
        return max(1, int(row[0])) if row else DEFAULT_STOCKPILE_DAYS
    except ValueError:
        return DEFAULT_STOCKPILE_DAYS


def supplies(household: Household, days: int = DEFAULT_STOCKPILE_DAYS) -> list[SupplyItem]:
    """The checklist for this household with quantities for ``days`` days."""
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    n, members = household.people, household.members
    infants = sum(m.age_band is AgeBand.INFANT for m in members)
    on_medication = sum(bool(m.medications) for m in members)
    allergic = sum(bool(m.allergies) for m in members)
    women = sum(m.sex == "female" and m.age_band in (AgeBand.ADULT, AgeBand.SENIOR) for m in members)
    seniors = sum(m.age_band is AgeBand.SENIOR for m in members)
    dogs_cats = sum(p.count for p in household.pets)
    rows: list[tuple[str, float, str, bool, bool]] = [
        ("water", WATER_L_PER_PERSON_DAY * n * days, "litre", False, True),
        ("food", 3 * n * days, "meal", False, True),
        ("portable_toilet", 5 * n * days, "use", False, True),  # 内閣府: about five uses per person a day
        ("drinking_water_bottle", n, "bottle_500ml", True, True),
        ("emergency_food", n, "day_pack", True, True),
        ("flashlight", 1, "piece", True, True),
        ("radio", 1, "piece", True, True),
        ("phone_charger", 1, "piece", True, True),
        ("first_aid_kit", 1, "set", True, True),
        ("masks", n * days, "piece", True, True),
        ("cash_and_id_copies", 1, "set", True, True),
        ("infant_formula", 6 * infants * days, "feed", True, infants > 0),
        ("diapers", 8 * infants * days, "piece", True, infants > 0),
        ("medication", on_medication * max(days, MEDICATION_MIN_DAYS), "person_day", True, on_medication > 0),
        ("medicine_notebook", on_medication, "piece", True, on_medication > 0),  # お薬手帳
        ("allergy_safe_food", 3 * allergic * days, "meal", True, allergic > 0),
        ("sanitary_products", women * days * 5, "piece", True, women > 0),
        ("glasses_hearing_aid_spares", seniors, "set", True, seniors > 0),
        ("mobility_aids", 1, "set", True, any(m.mobility is not Mobility.NONE for m in members)),
        ("pet_food", dogs_cats * days, "day", True, dogs_cats > 0),
        ("pet_water", 0.5 * dogs_cats * days, "litre", True, dogs_cats > 0),
        ("pet_carrier_leash", dogs_cats, "set", True, dogs_cats > 0),
    ]
    return [SupplyItem(key, qty, unit, carry, key in household.checked) for key, qty, unit, carry, wanted in rows if wanted]


# --- the plan ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlanShelter:
    id: str
    name: str
    walking_time_s: float | None  # None when chosen by hand without a route


@dataclass(frozen=True, slots=True)
class EvacuationPlan:
    hazard: HazardType
    leave_at_alert: int | None  # None for tsunami: leave at once on a warning or strong shaking
    steps: list[tuple[int, str]]  # (alert level 1..5, message key)
    primary: PlanShelter | None
    backup: PlanShelter | None
    contacts: list[Contact]
    carry: list[SupplyItem]
    walking_speed_mps: float
    route_status_key: str | None = None  # why the shelters are not a normal route (a routing message key)


def evacuation_plan(
    household: Household,
    hazard: HazardType,
    router: EvacuationRouter | None = None,
    home: LatLon | None = None,
    days: int = DEFAULT_STOCKPILE_DAYS,
) -> EvacuationPlan:
    """The household's マイ・タイムライン for ``hazard``: chosen shelters when set, else the
    router's nearest suitable shelter from ``home`` (the sealed home of ``app.preferences``)
    and its first alternative as backup."""
    early = household.needs_early_evacuation
    speed = walking_speed_mps(household)
    if hazard is HazardType.TSUNAMI:
        leave, steps = None, [(0, "plan.tsunami_leave_now")]
    else:
        leave = 3 if early else 4
        steps = [
            (1, "plan.alert1"),
            (2, "plan.alert2"),
            (3, "plan.alert3_leave" if early else "plan.alert3_prepare"),
            (4, "plan.alert4_leave"),
            (5, "plan.alert5_secure"),
        ]
    primary, backup, status_key = _plan_shelters(household, hazard, router, home, speed)
    carry = [item for item in supplies(household, days) if item.carry]
    return EvacuationPlan(hazard, leave, steps, primary, backup, list(household.contacts), carry, speed, status_key)


def _plan_shelters(
    household: Household, hazard: HazardType, router: EvacuationRouter | None, home: LatLon | None, speed: float
) -> tuple[PlanShelter | None, PlanShelter | None, str | None]:
    chosen = household.shelters.get(hazard)
    if router is None:
        return (PlanShelter(chosen[0], chosen[0], None) if chosen and chosen[0] else None,
                PlanShelter(chosen[1], chosen[1], None) if chosen and chosen[1] else None, None)
    if chosen and home:
        picked: list[PlanShelter | None] = []
        for shelter_id in chosen:
            result = router.to_shelter(home, hazard, shelter_id, speed) if shelter_id else None
            found = result.shelter if result else None
            picked.append(PlanShelter(found.id, found.name, result.walking_time_s) if result and found else None)
        return picked[0], picked[1], None
    if home is None:
        return None, None, "plan.no_home"
    result = router.nearest(home, hazard, speed, alternatives=1)
    if result.shelter is None:
        return None, None, result.message_key
    primary = PlanShelter(result.shelter.id, result.shelter.name, result.walking_time_s)
    alt = result.alternatives[0] if result.alternatives else None
    backup = PlanShelter(alt.shelter.id, alt.shelter.name, alt.walking_time_s) if alt else None
    return primary, backup, None if result.status is RouteStatus.OK else result.message_key




def plan_text(plan: EvacuationPlan, t: Translator) -> str:
    """The plan as plain text to print or share, in the translator's language."""
    lines = [t("plan.title"), f"{t('plan.hazard')}: {t(f'hazard.{plan.hazard.value}')}"]
    lines.append(t("plan.leave_at", level=plan.leave_at_alert) if plan.leave_at_alert else t("plan.leave_now"))
    lines += [f"  {level}: {t(key)}" if level else f"  {t(key)}" for level, key in plan.steps]
    for label, shelter in ((t("plan.primary"), plan.primary), (t("plan.backup"), plan.backup)):
        if shelter is None:
            lines.append(f"{label}: {t('plan.none')}")
        else:
            walk = f" ({t('plan.walk', minutes=max(1, round(shelter.walking_time_s / 60)))})" if shelter.walking_time_s else ""
            lines.append(f"{label}: {shelter.name}{walk}")
    if plan.route_status_key and t.has(plan.route_status_key):
        lines.append(t(plan.route_status_key))
    lines.append(f"{t('plan.contacts')}:")
    lines += [f"  {c.name} ({c.relation}) {c.phone}".replace(" ()", "") for c in plan.contacts] or [f"  {t('plan.none')}"]
    lines.append(f"{t('plan.carry')}:")
    lines += [f"  [{'x' if i.checked else ' '}] {t(f'supply.{i.key}')} {_qty(i.quantity)} {t(f'unit.{i.unit}')}" for i in plan.carry]
    return "\n".join(lines) + "\n"


def _qty(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"
