"""Disaster HQ (災害対策本部) queries, for a ``city_staff`` login: counts by status per area,
要支援者 who have not answered, and answers for the map. The lead draws them.

The platform decides what staff may see: a resident's SafetyStatus only when they share
``safety_status`` with the city, a CareInformation (who needs support, 要支援者) only when
they share ``care_information`` with the city — that grant is their consent to be listed.
A location only comes with the ``location`` consent (the platform strips it otherwise).
"""
from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.family._book import answer_from_entity
from app.family._model import Answer, SafetyStatus, open_sos
from app.family._remote import FamilyClient
from app.platform import PlatformClient, PlatformHttp
from protocol.entities import utc
from protocol.family import Alert, InvalidAlert, InvalidAnswer, alert_entity
from protocol.geojson import point_in_polygon

UNLOCATED = "unlocated"  # answers with no location (no consent, or none given)
OUTSIDE = "outside"  # located, but in none of the areas
Rings = list[list[tuple[float, float]]]


@dataclass(frozen=True, slots=True)
class SupportPerson:
    """A 要支援者 listed for disaster response (from their CareInformation)."""

    person: str
    name: str
    address: str
    needs: tuple[str, ...]
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True, slots=True)
class MapPoint:
    person: str
    lat: float
    lon: float
    status: SafetyStatus
    age_s: int
    proxy: bool


def answers_from(entities: Iterable[Mapping[str, Any]]) -> list[Answer]:
    """Readable SafetyStatus answers; incomplete entities are left out."""
    result = []
    for entity in entities:
        try:
            result.append(answer_from_entity(dict(entity)))
        except InvalidAnswer:
            continue
    return result


def support_people(entities: Iterable[Mapping[str, Any]]) -> list[SupportPerson]:
    """CareInformation entities marked ``supportNeeded`` → the listed 要支援者."""
    def value(e: Mapping[str, Any], name: str, default: Any = None) -> Any:
        attr = e.get(name)
        return attr.get("value", default) if isinstance(attr, dict) else default

    people = []
    for e in entities:
        if value(e, "supportNeeded") is not True:
            continue
        target = (e.get("person") or {}).get("object") or str(e.get("id", ""))
        loc = value(e, "location")
        lon, lat = (loc["coordinates"][:2] if isinstance(loc, dict) and isinstance(loc.get("coordinates"), list) else (None, None))
        needs = value(e, "needs", [])
        people.append(SupportPerson(str(target).rsplit(":", 1)[-1], str(value(e, "name", "")), str(value(e, "address", "")),
                                    tuple(str(n) for n in needs) if isinstance(needs, list) else (), lat, lon))
    return people


def _area_of(answer: Answer, areas: Mapping[str, list[Rings]]) -> str:
    if not answer.has_location:
        return UNLOCATED
    for name, polygons in areas.items():
        if any(point_in_polygon(answer.lon, answer.lat, rings) for rings in polygons):  # type: ignore[arg-type]
            return name
    return OUTSIDE


def latest_per_person(answers: Iterable[Answer], since: datetime | None = None) -> dict[str, Answer]:
    latest: dict[str, Answer] = {}
    for a in answers:
        if since is not None and a.observed_at < utc(since):
            continue
        if a.person not in latest or a.observed_at > latest[a.person].observed_at:
            latest[a.person] = a
    return latest


def counts_by_area(answers: Iterable[Answer], areas: Mapping[str, list[Rings]], since: datetime | None = None) -> dict[str, dict[str, int]]:
    """{area name: {status: count}} over each person's latest answer since ``since``; plus the
    ``unlocated`` and ``outside`` buckets when they are not empty. Areas: name → polygons
    (each outer ring then holes, (lon, lat)), e.g. school districts; the first match wins."""
    counts: dict[str, Counter[str]] = {name: Counter() for name in areas}
    for answer in latest_per_person(answers, since).values():
        counts.setdefault(_area_of(answer, areas), Counter())[answer.status.value] += 1
    return {name: {s.value: c[s.value] for s in SafetyStatus} for name, c in counts.items()}


def unanswered(people: Iterable[SupportPerson], answers: Iterable[Answer], since: datetime) -> list[SupportPerson]:
    """Listed 要支援者 with no answer (their own or a caregiver's) since ``since`` (e.g. the alert)."""
    answered = set(latest_per_person(answers, since))
    return [p for p in people if p.person not in answered]


def map_points(answers: Iterable[Answer], now: datetime | None = None, since: datetime | None = None) -> list[MapPoint]:
    moment = utc(now)
    return [MapPoint(a.person, a.lat, a.lon, a.status, max(0, int((moment - a.observed_at).total_seconds())), a.is_proxy)  # type: ignore[arg-type]
            for a in latest_per_person(answers, since).values() if a.has_location]


@dataclass(frozen=True, slots=True)
class HqSnapshot:
    answers: list[Answer]
    people: list[SupportPerson]

    def counts(self, areas: Mapping[str, list[Rings]], since: datetime | None = None) -> dict[str, dict[str, int]]:
        return counts_by_area(self.answers, areas, since)

    def unanswered(self, since: datetime) -> list[SupportPerson]:
        return unanswered(self.people, self.answers, since)

    def map_points(self, now: datetime | None = None, since: datetime | None = None) -> list[MapPoint]:
        return map_points(self.answers, now, since)


def load_snapshot(client: PlatformClient) -> HqSnapshot:
    """Everything HQ may see now, in one pass (a staff token is needed; the platform filters)."""
    return HqSnapshot(answers_from(client.iter_entities("SafetyStatus")),
                      support_people(client.iter_entities("CareInformation")))


# ---- people with names, SOS, shelters, alerts -------------------------------------

@dataclass(frozen=True, slots=True)
class HqPerson:
    """A resident who shares answers with the city: name and the latest own and proxy answers."""

    person: str
    name: str
    own: Answer | None
    proxy: Answer | None

    @property
    def sos(self) -> Answer | None:
        return open_sos(self.own, self.proxy)

    @property
    def latest(self) -> Answer | None:
        return max((a for a in (self.own, self.proxy) if a), key=lambda a: a.observed_at, default=None)


def hq_people(rows: Iterable[Mapping[str, Any]]) -> list[HqPerson]:
    """``GET /cityos/v1/family/hq/people`` rows; an unreadable record is left out, never half-shown."""
    def read(entity: Any) -> Answer | None:
        try:
            return answer_from_entity(dict(entity)) if entity else None
        except InvalidAnswer:
            return None

    return [HqPerson(str(r["person"]), str(r.get("name") or ""), read(r.get("own")), read(r.get("proxy"))) for r in rows]


@dataclass(frozen=True, slots=True)
class ShelterRow:
    """One line of the HQ's shelter board (from the platform's EvacuationShelter entities)."""

    shelter_id: str
    status: str  # open | full | closed
    occupancy: int  # desk-confirmed people
    self_reported: int  # people only checked in by their own phone
    capacity: int | None
    in_car_households: int = 0  # staying in cars (車中泊), as their check-in said
    in_car_persons: int = 0

    @property
    def load_pct(self) -> int | None:
        return round(100 * self.occupancy / self.capacity) if self.capacity else None


def shelter_board(entities: Iterable[Mapping[str, Any]]) -> list[ShelterRow]:
    """Shelters the platform has a status for, fullest first."""
    def value(e: Mapping[str, Any], name: str) -> Any:
        attr = e.get(name)
        return attr.get("value") if isinstance(attr, dict) else None

    def whole(x: Any) -> int | None:
        return x if isinstance(x, int) and not isinstance(x, bool) and x >= 0 else None

    rows = [ShelterRow(str(e.get("id", "")).rsplit(":", 1)[-1], str(value(e, "status")), whole(value(e, "occupancy")) or 0,
                       whole(value(e, "selfReported")) or 0, whole(value(e, "capacity")) or None,
                       whole(value(e, "inCarHouseholds")) or 0, whole(value(e, "inCarPersons")) or 0)
            for e in entities if value(e, "status")]
    return sorted(rows, key=lambda r: (r.status == "closed", -(r.load_pct or 0), -r.occupancy, r.shelter_id))


def issue_alert(client: PlatformClient, municipality_code: str, *, hazard: str, level: int, headline: str, minutes: int,
                polygon: dict[str, Any] | None = None, alert_id: str | None = None, now: datetime | None = None) -> str:
    """Publish (or, with ``alert_id``, update) an alert for the whole municipality or a polygon."""
    moment = utc(now)
    entity = alert_entity(alert_id or uuid.uuid4().hex[:16], municipality_code, hazard=hazard, level=level, headline=headline,
                          issued_at=moment, expires_at=moment + timedelta(minutes=minutes), polygon=polygon,
                          municipalities=[] if polygon else [municipality_code])
    _publish(client, entity)
    return entity["id"]


def end_alert(client: PlatformClient, municipality_code: str, alert: Alert, now: datetime | None = None) -> None:
    """End an alert now: it expires (apps drop the banner) and stays in the record."""
    moment = utc(now)
    polygon = None
    if alert.polygons:
        polygon = {"type": "MultiPolygon", "coordinates": [[[list(p) for p in ring] for ring in poly] for poly in alert.polygons]}
    entity = alert_entity(alert.id.rsplit(":", 1)[-1], municipality_code, hazard=alert.hazard, level=alert.level,
                          headline=alert.headline, issued_at=min(alert.issued_at, moment - timedelta(seconds=1)),
                          expires_at=moment, polygon=polygon,
                          municipalities=sorted(alert.municipalities), is_test=alert.is_test)
    _publish(client, entity)


def _publish(client: PlatformClient, entity: dict[str, Any]) -> None:
    refused = client.upsert([entity]).failed
    if refused:
        raise InvalidAlert(f"the platform refused alert {entity['id']}: {next(iter(refused.values()))[:200]}")


class HqDesk:
    """What the HQ screen does over the platform link (city_staff only; the platform checks the
    role and each resident's consent): network calls, run them off the UI thread."""

    def __init__(self, http: PlatformHttp, municipality_code: str) -> None:
        self._client, self._family = PlatformClient(http), FamilyClient(http)
        self.municipality_code = municipality_code

    def snapshot(self) -> HqSnapshot:
        return load_snapshot(self._client)

    def people(self, name: str | None = None) -> list[HqPerson]:
        """Residents who share their answers with the city, with names and open SOS (by name)."""
        return hq_people(self._family.hq_people(name=name))

    def resolve_sos(self, person: str) -> None:
        self._family.resolve_sos(person)

    def remind(self, person: str) -> None:
        self._family.remind(person)

    def issue_alert(self, **alert: Any) -> str:
        return issue_alert(self._client, self.municipality_code, **alert)

    def end_alert(self, alert: Alert) -> None:
        end_alert(self._client, self.municipality_code, alert)
