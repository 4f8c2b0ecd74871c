"""Who may read and write what: entity types, consent categories, roles and tenants.

Public types (shelters, hazards, alerts) are open to read and written by staff roles.
Personal types belong to the resident who first wrote them and are stored only under an
active consent in their category. Anything else is refused, so no personal data ever
lands here without a category that a resident can revoke.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, exists, or_, select

from cityos.accounts import CITY_STAFF, SHELTER_STAFF, STAFF_ROLES
from cityos.oidc import Caller
from cityos.problems import CONSENT_REQUIRED, Problem, bad_data, forbidden, unauthorized
from cityos.store import consent, entity


@dataclass(frozen=True, slots=True)
class Category:
    id: str
    label_ja: str
    label_en: str


CATEGORIES = {
    c.id: c
    for c in (
        Category("location", "位置情報", "Location"),
        Category("safety_status", "安否情報", "Safety status"),
        Category("evacuee_card", "避難者カード・受付", "Evacuee card and shelter check-in"),
        Category("health_activity", "健康活動（ポイント）", "Health activity (points)"),
        Category("care_information", "要配慮・介護情報", "Care information"),
        Category("ride_history", "乗車・予約履歴", "Ride history"),
    )
}
LOCATION = "location"
PURPOSES = ("disaster_response", "health_promotion", "transport", "care")
RECIPIENTS = ("city", "family", "caregiver", "transport_operator")
CITY_RECIPIENT = "city"

PUBLIC_WRITERS: dict[str, frozenset[str]] = {
    "EvacuationShelter": frozenset({SHELTER_STAFF, CITY_STAFF}),
    "HazardArea": frozenset({CITY_STAFF}),
    "Alert": frozenset({CITY_STAFF}),
}
PERSONAL_CATEGORY: dict[str, str] = {
    "SafetyStatus": "safety_status",
    "ShelterCheckIn": "evacuee_card",
    "EvacueeCard": "evacuee_card",
    "HealthPointEvent": "health_activity",
    "CareInformation": "care_information",
    "RideRequest": "ride_history",
}
# Staff register walk-in evacuees who have no account; those records are held by the city.
STAFF_HELD_TYPES = frozenset({"ShelterCheckIn", "EvacueeCard"})


def known_type(entity_type: str) -> bool:
    return entity_type in PUBLIC_WRITERS or entity_type in PERSONAL_CATEGORY


def require_known_type(entity_type: str) -> None:
    if not known_type(entity_type):
        known = ", ".join(sorted([*PUBLIC_WRITERS, *PERSONAL_CATEGORY]))
        raise bad_data(f"entity type {entity_type!r} is not served by this platform; known types: {known}")


def active_categories(conn: Connection, sub: str) -> set[str]:
    """Categories in which the resident has at least one active grant."""
    return set(conn.execute(select(consent.c.category).where(consent.c.sub == sub, consent.c.active.is_(True))).scalars())


@dataclass(frozen=True, slots=True)
class WriteDecision:
    owner_sub: str | None  # None: public, or held by the city
    category: str | None


def check_write(caller: Caller | None, entity_type: str, location: list[str], existing_owner: str | None, stored: bool,
                consented: set[str]) -> WriteDecision:
    """Allow the write or raise the 401/403 Problem that says why not.

    ``location``: the written attributes that hold location data (``entities.location_attributes``);
    ``consented``: the caller's categories with an active grant (looked up once per batch).
    """
    require_known_type(entity_type)
    if caller is None:
        raise unauthorized("writing needs a bearer token", error="invalid_request")
    if entity_type in PUBLIC_WRITERS:
        if not caller.roles & PUBLIC_WRITERS[entity_type]:
            raise forbidden(f"writing {entity_type} needs one of the roles {', '.join(sorted(PUBLIC_WRITERS[entity_type]))}")
        return WriteDecision(None, None)
    category = PERSONAL_CATEGORY[entity_type]
    staff_record = entity_type in STAFF_HELD_TYPES and SHELTER_STAFF in caller.roles
    if stored and existing_owner != caller.sub and not (staff_record and existing_owner is None):
        raise forbidden("this entity belongs to another account")
    if staff_record and (not stored or existing_owner is None):
        return WriteDecision(None, category)  # walk-in registered at the desk: held by the city
    if category not in consented:
        raise Problem(403, CONSENT_REQUIRED, f"no active consent for data category {category!r} (entity type {entity_type})")
    if location and LOCATION not in consented:
        raise Problem(403, CONSENT_REQUIRED,
                      f"no active consent for data category 'location' (attribute {location[0]!r} of {entity_type} holds location data)")
    return WriteDecision(caller.sub, category)


def readable(caller: Caller | None) -> ColumnElement[bool]:
    """SQL condition: live entities of the caller's municipality that the caller may read.

    Public types: anyone. Personal: the owner; staff see records held by the city and a
    resident's records when that resident shares the category with the city.
    """
    public = entity.c.category.is_(None)
    if caller is None:
        return public
    own = entity.c.owner_sub == caller.sub
    if not caller.roles & STAFF_ROLES:
        return or_(public, own)
    shared = exists().where(
        consent.c.sub == entity.c.owner_sub, consent.c.category == entity.c.category,
        consent.c.recipient == CITY_RECIPIENT, consent.c.active.is_(True),
    )
    return or_(public, own, entity.c.owner_sub.is_(None), shared)


def tombstone_visible(caller: Caller | None) -> ColumnElement[bool]:
    """SQL condition for deletions in the change feed: a tombstone holds no data, so everyone
    who may have held a copy (owner, the municipality's staff) is told to drop it."""
    public = entity.c.category.is_(None)
    if caller is None:
        return public
    own = entity.c.owner_sub == caller.sub
    if caller.roles & STAFF_ROLES:
        # Staff only hear of deletions they could have held a copy of: city-held records, and
        # residents' records of a category ever shared with the city (a revoked grant stays on file).
        ever_shared = exists().where(
            consent.c.sub == entity.c.owner_sub, consent.c.category == entity.c.category, consent.c.recipient == CITY_RECIPIENT,
        )
        return or_(public, own, entity.c.owner_sub.is_(None), ever_shared)
    return or_(public, own)


def resolve_tenant(caller: Caller | None, header_tenant: str | None, default: str) -> str:
    """The municipality a request acts in: the token's, and a header must agree with it."""
    if header_tenant is not None and not (len(header_tenant) == 6 and header_tenant.isdigit()):
        raise bad_data(f"NGSILD-Tenant must be a 6-digit municipality code, got {header_tenant!r}")
    if caller is None:
        return header_tenant or default
    if header_tenant and header_tenant != caller.municipality_code:
        raise forbidden(f"the token is for municipality {caller.municipality_code}, not {header_tenant}")
    return caller.municipality_code
