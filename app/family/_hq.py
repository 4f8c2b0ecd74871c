"""Disaster HQ (災害対策本部) queries, for a ``city_staff`` login: counts by status per area,
要支援者 who have not answered, and answers for the map. The lead draws them.

The platform decides what staff may see: a resident's SafetyStatus only when they share
``safety_status`` with the city, a CareInformation (who needs support, 要支援者) only when
they share ``care_information`` with the city — that grant is their consent to be listed.
A location only comes with the ``location`` consent (the platform strips it otherwise).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.family._book import answer_from_entity
from app.family._errors import InvalidAnswer
from app.family._model import Answer, SafetyStatus, utc
from app.hazards import point_in_polygon
from app.platform import PlatformClient

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
