"""The family book on this phone: groups, members, caregivers and safety answers, offline.

An answer is saved locally first (sealed), then travels: the resident's own answer as a
SafetyStatus entity through the outbox (only with the ``safety_status`` consent; its
location only with the ``location`` consent); a proxy answer for a 要支援者 waits in the
family table until ``FamilySync`` hands it to the platform, which checks that person's consent.
"""
from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlite_utils

from app.devicekeys import KeyStore, get_or_create
from app.family._model import MAX_MESSAGE, Answer, GroupMember, MemberStatus, SafetyStatus
from offline import family_store
from offline.outbox import Outbox
from protocol.entities import geo_point, iso_utc, make_entity, parse_time, prop, rel, utc
from protocol.family import ConsentMissing, InvalidAnswer, NotAllowed

AT_REST_KEY = "mamori.family.atrest"
SAFETY_CATEGORY = "safety_status"
LOCATION_CATEGORY = "location"


def person_urn(person: str) -> str:
    return f"urn:ngsi-ld:Person:{person}"


def status_entity_id(person: str) -> str:
    """One SafetyStatus per person on the platform: the latest answer replaces the previous."""
    return f"urn:ngsi-ld:SafetyStatus:{person}"


def _clean_text(text: str | None, what: str, limit: int) -> str | None:
    if text is None:
        return None
    if not isinstance(text, str):
        raise InvalidAnswer(f"{what} must be text")
    text = "".join(ch for ch in unicodedata.normalize("NFC", text) if unicodedata.category(ch)[0] != "C" or ch == " ").strip()
    if len(text) > limit:
        raise InvalidAnswer(f"{what} is {len(text)} characters; at most {limit}")
    return text or None


def _answer_values(a: Answer) -> dict[str, Any]:
    return {"status": a.status.value, "reported_by": a.reported_by, "message": a.message,
            "lat": a.lat, "lon": a.lon, "place": a.place,
            "resolved_at": iso_utc(a.resolved_at) if a.resolved_at else None, "resolved_by": a.resolved_by}


def _answer_from_row(row: dict[str, Any]) -> Answer:
    resolved = row.get("resolved_at")
    return Answer(row.get("answer_id") or row["id"], row["person"], SafetyStatus(row["status"]), parse_time(row["observed_at"]),
                  row["reported_by"], row.get("message"), row.get("lat"), row.get("lon"), row.get("place"),
                  parse_time(resolved) if resolved else None, row.get("resolved_by"))


def status_entity(answer: Answer, municipality_code: str) -> dict[str, Any]:
    """The platform's SafetyStatus for an answer (normalised NGSI-LD)."""
    attrs: dict[str, Any] = {
        "status": prop(answer.status.value, observed_at=answer.observed_at),
        "person": rel(person_urn(answer.person)),
        "reportedBy": rel(person_urn(answer.reported_by)),
        "proxy": prop(answer.is_proxy),
        "answerId": prop(answer.id),
        "message": answer.message,
        "place": answer.place,
    }
    if answer.has_location:
        attrs["location"] = geo_point(answer.lat, answer.lon)  # type: ignore[arg-type]
    return make_entity("SafetyStatus", answer.person, municipality_code, **attrs)


def answer_from_entity(entity: dict[str, Any]) -> Answer:
    """Read a SafetyStatus entity back (from the platform's family status or a staff query)."""
    def value(name: str) -> Any:
        attr = entity.get(name)
        return attr.get("value") if isinstance(attr, dict) else None

    def who(name: str) -> str:
        target = (entity.get(name) or {}).get("object", "")
        return target.rsplit(":", 1)[-1] if isinstance(target, str) else ""

    try:
        status_attr = entity["status"]
        person = who("person") or entity["id"].rsplit(":", 1)[-1]
        location = value("location")
        lon, lat = location["coordinates"][:2] if isinstance(location, dict) else (None, None)
        resolved = value("resolvedAt")
        return Answer(str(value("answerId") or entity["id"]), person, SafetyStatus(status_attr["value"]),
                      parse_time(status_attr["observedAt"]), who("reportedBy") or person, value("message"),
                      lat, lon, value("place"), parse_time(resolved) if resolved else None, who("resolvedBy") or None)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidAnswer(f"SafetyStatus {str(entity.get('id'))[:80]} is incomplete: {type(exc).__name__}") from None


class FamilyBook:
    def __init__(self, db: sqlite_utils.Database, keys: KeyStore, me: str, municipality_code: str,
                 consented: Callable[[str], bool], outbox: Outbox | None = None) -> None:
        self._db, self._key = db, get_or_create(keys, AT_REST_KEY, 32)
        self.me, self.municipality_code = me, municipality_code
        self._consented, self._outbox = consented, outbox

    # -- answering ------------------------------------------------------------------------
    def answer(self, status: SafetyStatus | str, *, message: str | None = None, lat: float | None = None,
               lon: float | None = None, place: str | None = None, person: str | None = None,
               now: datetime | None = None) -> Answer:
        """Record a one-tap answer (for me, or for ``person`` as their named caregiver)."""
        try:
            status = SafetyStatus(status)
        except ValueError:
            raise InvalidAnswer(f"unknown status {str(status)[:30]!r}") from None
        person = person or self.me
        if person != self.me and not self.may_answer_for(person):
            raise NotAllowed("you are not a named caregiver of this person")
        if (lat is None) != (lon is None):
            raise InvalidAnswer("a location needs both latitude and longitude")
        if lat is not None:
            if not self._consented(LOCATION_CATEGORY):
                raise ConsentMissing("sharing a location needs the location consent", "location")
            if not (-90 <= lat <= 90 and -180 <= lon <= 180):  # type: ignore[operator]
                raise InvalidAnswer(f"location ({lat}, {lon}) is outside latitude/longitude range")
        answer = Answer(uuid.uuid4().hex, person, status, utc(now), self.me, _clean_text(message, "message", MAX_MESSAGE),
                        lat, lon, _clean_text(place, "place", 60))
        with self._db.atomic():
            family_store.put_answer(self._db, self._key, answer.id, person, iso_utc(answer.observed_at), "mine",
                                    answer.is_proxy, _answer_values(answer))
            if not answer.is_proxy and self._outbox is not None and self._consented(SAFETY_CATEGORY):
                self._outbox.enqueue(SAFETY_CATEGORY, status_entity(answer, self.municipality_code), answer.id)
        return answer

    def pending_proxy_answers(self) -> list[Answer]:
        return [_answer_from_row(r) for r in family_store.answers(self._db, self._key, "pending = 1")]

    def mark_sent(self, answer_id: str) -> None:
        self._db.execute("UPDATE family_answer SET pending = 0 WHERE id = ?", [answer_id])

    def mark_refused(self, answer_id: str) -> None:
        """The platform refused a proxy answer for good (e.g. consent withdrawn): it stays on this phone only."""
        self._db.execute("UPDATE family_answer SET pending = 2 WHERE id = ?", [answer_id])

    def refused_proxy_answers(self) -> list[Answer]:
        """Proxy answers the platform would not take; the screen says so next to them."""
        return [_answer_from_row(r) for r in family_store.answers(self._db, self._key, "pending = 2")]

    # -- reading ----------------------------------------------------------------------------
    def latest(self, person: str) -> Answer | None:
        rows = family_store.answers(self._db, self._key, "person = ?", [person])
        return _answer_from_row(rows[-1]) if rows else None

    def history(self, person: str | None = None) -> list[Answer]:
        rows = (family_store.answers(self._db, self._key, "person = ?", [person]) if person
                else family_store.answers(self._db, self._key))
        return [_answer_from_row(r) for r in rows]

    def groups(self) -> list[dict[str, str]]:
        rows = self._db.execute("SELECT id, owner, sealed FROM family_group ORDER BY id").fetchall()
        return [{"id": i, "owner": o, **family_store.unseal(self._key, "family_group", i, s)} for i, o, s in rows]

    def members(self, group_id: str) -> list[GroupMember]:
        rows = self._db.execute("SELECT person, role, sealed FROM family_member WHERE group_id = ? ORDER BY role != 'owner', person",
                                [group_id]).fetchall()
        return [GroupMember(group_id, p, family_store.unseal(self._key, "family_member", f"{group_id}:{p}", s)["name"], r)
                for p, r, s in rows]

    def family_status(self, group_id: str, now: datetime | None = None) -> list[MemberStatus]:
        """Each member's latest own and proxy answers, the newer one's age, and whether they share."""
        moment = utc(now)
        shared = dict(self._db.execute("SELECT person, shared FROM family_member WHERE group_id = ?", [group_id]).fetchall())
        result = []
        for member in self.members(group_id):
            answers = self.history(member.person)
            own = next((a for a in reversed(answers) if not a.is_proxy), None)
            proxy = next((a for a in reversed(answers) if a.is_proxy), None)
            answer = answers[-1] if answers else None
            age = None if answer is None else max(0, int((moment - answer.observed_at).total_seconds()))
            flag = shared.get(member.person)
            result.append(MemberStatus(member, answer, age, own, proxy, None if flag is None else bool(flag)))
        return result

    def family_map(self, group_id: str, now: datetime | None = None) -> list[MemberStatus]:
        """Members whose latest answer carries a location: the family map's pins."""
        return [s for s in self.family_status(group_id, now) if s.answer is not None and s.answer.has_location]

    def caregivers_of(self, person: str) -> list[tuple[str, str]]:
        return [tuple(r) for r in self._db.execute(
            "SELECT caregiver, relation FROM family_caregiver WHERE person = ? ORDER BY caregiver", [person])]

    def may_answer_for(self, person: str) -> bool:
        return self._db.execute("SELECT 1 FROM family_caregiver WHERE person = ? AND caregiver = ?",
                                [person, self.me]).fetchone() is not None

    # -- applying what the platform says -----------------------------------------------------
    def replace_groups(self, groups: list[dict[str, Any]]) -> None:
        """The caller's groups as the platform lists them (``FamilyClient.groups()``)."""
        now = iso_utc(utc())
        with self._db.atomic():
            self._db.execute("DELETE FROM family_group")  # members cascade
            self._db.execute("DELETE FROM family_caregiver")
            for g in groups:
                self._db.execute("INSERT INTO family_group VALUES (?, ?, ?, ?)",
                                 [g["id"], g["owner"], family_store.seal(self._key, "family_group", g["id"], {"name": g["name"]}), now])
                for m in g["members"]:
                    row_id = f"{g['id']}:{m['person']}"
                    self._db.execute("INSERT INTO family_member (group_id, person, role, sealed) VALUES (?, ?, ?, ?)",
                                     [g["id"], m["person"], m["role"], family_store.seal(self._key, "family_member", row_id, {"name": m["name"]})])
                for c in g.get("caregivers", []):
                    self._db.execute("INSERT OR REPLACE INTO family_caregiver VALUES (?, ?, ?)",
                                     [c["person"], c["caregiver"], c["relation"]])

    def apply_member_status(self, row: dict[str, Any]) -> None:
        """One member's status as the platform's family API gives it: ``{person, shared, own, proxy}``
        (an older platform sends only ``status``). Own and proxy answers are kept apart."""
        person = row["person"]
        records = {"own": row.get("own"), "proxy": row.get("proxy")} if "own" in row else {"own": row.get("status")}
        with self._db.atomic():
            if "shared" in row:
                self._db.execute("UPDATE family_member SET shared = ? WHERE person = ?", [int(bool(row["shared"])), person])
            for kind in ("own", "proxy"):
                row_id = f"platform:{person}" + ("" if kind == "own" else ":proxy")
                self._db.execute("DELETE FROM family_answer WHERE id = ?", [row_id])
                entity = records.get(kind)
                if entity is not None:
                    a = answer_from_entity(entity)
                    family_store.put_answer(self._db, self._key, row_id, person, iso_utc(a.observed_at), "platform",
                                            False, {**_answer_values(a), "answer_id": a.id})
