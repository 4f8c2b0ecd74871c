"""Shelter check-in on the platform (避難所受付): keys, desk events and published occupancy.

* Residents register their phone's Ed25519 public key (bound to their ``sub``); the QR the
  phone shows is signed with it. Revoking deletes it, and desks learn that on their next sync.
* The platform makes, per municipality, the shelter seal key pair (X25519: residents seal
  their card to it) and the poster key (Ed25519: signs the QR at each shelter entrance), on
  first need, and keeps them in its database.
* ``shelter_staff`` desks fetch the seal private key and the device public keys once, then
  check people in with no network. When the network returns they post their events
  (idempotent by key) and get every event of the municipality back, so a household checked in
  at two shelters is resolved on every desk (latest check-in wins, both flagged).
* Residents who checked themselves in by the poster at a shelter entrance post those events
  too (``POST /events``), only with an active ``evacuee_card`` consent. Each carries the poster
  it was made with; the platform checks that poster's signature and validity at the event's
  time, so occupancy cannot be claimed for a shelter nobody scanned. Revoking the consent
  deletes the resident's own events and recounts (desk records are the city's register).
* Shelter-life survey answers arrive anonymous (no account, no household) with the same
  consent, are checked against the questions, and are summed per shelter for the desks.
* Self check-ins are bounded: at most ``MAX_SELF_HOUSEHOLD`` people per household and
  ``MAX_SELF_HOUSEHOLDS`` households per account; larger households check in at the desk.
* After each batch the platform recomputes who is where and publishes each touched shelter's
  status (open / full / closed), ``occupancy`` (households a desk confirmed) and, apart from it,
  ``selfReported`` (people only checked in by their own phone) on its EvacuationShelter entity,
  through the same entity store and change feed the NGSI-LD API serves, with the households
  staying in cars (車中泊: ``inCarHouseholds``, ``inCarPersons``, as their latest check-in there
  said). Only desk-confirmed
  people make a shelter "full", so residents cannot make it look full; HQ sees both numbers.

Key custody: handing the seal private key to desk devices is what lets a desk unseal cards
offline. A reference platform keeps the key in its database and gives it to any authenticated
``shelter_staff`` account, which is acceptable here because every party is on one machine and
the demo keys protect demo data. A real deployment would keep the key in an HSM/KMS and give
each enrolled desk device the key wrapped to that device's own hardware-backed key (or one
short-lived seal key per shelter), rotate it after the disaster, and log every release.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
    select,
    tuple_,
    update,
)
from starlette.concurrency import run_in_threadpool

from cityos.core import header_tenant, int_param, platform_of, read_json
from cityos.entities import get_row, put_entity
from cityos.oidc import Caller
from cityos.policy import active_categories, resolve_tenant
from cityos.problems import (
    CONSENT_REQUIRED,
    Problem,
    bad_data,
    forbidden,
    not_found,
    problem_responses,
    unauthorized,
)
from cityos.store import current_tx, metadata, next_seq, settled_horizon, settled_prefix, utc_now
from protocol.checkin import (
    STAFF_ROLE,
    SURVEY,
    CheckinError,
    InvalidSurveyAnswer,
    QuestionKind,
    RemoteEvent,
    WireError,
    b64u,
    device_kid,
    event_from_json,
    event_to_json,
    iso_utc,
    make_poster_token,
    normal_time,
    poster_kid,
    raw_public,
    seal_kid,
    unb64u,
    valid_id,
    validate_answers,
    verify_poster,
)

MAX_BATCH = 500
PAGE = 1000
POSTER_DAYS, MAX_POSTER_DAYS = 30, 366
CLOCK_AHEAD_S = 300  # an event later than this is from a desk with a wrong clock: it would win forever
CONFLICT = "urn:cityos:problem:conflict"
SHELTER_PREFIX = "urn:ngsi-ld:EvacuationShelter:"
SEAL, POSTER = "seal", "poster"
CONSENT_CATEGORY = "evacuee_card"  # residents' own check-ins are sent only with it

checkin_key = Table(
    "checkin_key", metadata,
    Column("tenant", String(6), primary_key=True),
    Column("purpose", String(8), primary_key=True),  # seal (X25519) | poster (Ed25519)
    Column("kid", String(16), primary_key=True),
    Column("private_raw", String(64), nullable=False),  # hex; see "Key custody" above
    Column("created_at", String(32), nullable=False),
)
checkin_device = Table(
    "checkin_device", metadata,
    Column("tenant", String(6), primary_key=True),
    Column("kid", String(16), primary_key=True),
    Column("sub", String(64), nullable=False),
    Column("public_key", String(64)),  # base64url; NULL once revoked (a tombstone for desks)
    Column("seq", BigInteger, nullable=False),
    Column("tx", BigInteger, nullable=False, server_default="0"),  # writing transaction (PostgreSQL): the commit-safe cursor
    Column("updated_at", String(32), nullable=False),
    Index("checkin_device_seq", "tenant", "seq"),
    Index("checkin_device_tx", "tenant", "tx", "seq"),
)
checkin_event = Table(
    "checkin_event", metadata,
    Column("n", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(6), nullable=False),
    Column("key", String(64), nullable=False),
    Column("action", String(10), nullable=False),
    Column("ref", String(64), nullable=False),
    Column("household_size", Integer, nullable=False),
    Column("shelter_id", String(64), nullable=False),
    Column("at", String(40), nullable=False),
    Column("sender_sub", String(64), nullable=False),
    Column("origin", String(4), nullable=False),  # desk | self (the resident's own, by a poster)
    Column("received_at", String(32), nullable=False),
    Column("in_car", Boolean, nullable=False, server_default=false()),  # the household stays in a car (車中泊)
    Column("tx", BigInteger, nullable=False, server_default="0"),  # writing transaction (PostgreSQL): the commit-safe cursor
    UniqueConstraint("tenant", "key", name="checkin_event_key"),
    Index("checkin_event_ref", "tenant", "ref"),
    Index("checkin_event_tx", "tenant", "tx", "n"),
)
checkin_survey = Table(
    "checkin_survey", metadata,
    Column("n", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(6), nullable=False),
    Column("key", String(64), nullable=False),
    Column("shelter_id", String(64), nullable=False),
    Column("language", String(8), nullable=False),
    Column("answers", Text, nullable=False),  # JSON, as validated; who answered is not kept
    Column("answered_at", String(40), nullable=False),
    UniqueConstraint("tenant", "key", name="checkin_survey_key"),
    Index("checkin_survey_shelter", "tenant", "shelter_id"),
)
checkin_presence = Table(
    "checkin_presence", metadata,
    Column("tenant", String(6), primary_key=True),
    Column("ref", String(64), primary_key=True),
    Column("shelter_id", String(64)),  # NULL: checked out everywhere
    Column("household_size", Integer, nullable=False),
    Column("flagged", Boolean, nullable=False),  # was open at two shelters at once
    Index("checkin_presence_shelter", "tenant", "shelter_id"),
)
checkin_shelter = Table(
    "checkin_shelter", metadata,
    Column("tenant", String(6), primary_key=True),
    Column("shelter_id", String(64), primary_key=True),
    Column("capacity", Integer),
    Column("closed", Boolean, nullable=False),
)


# --- keys -----------------------------------------------------------------------------------------

def _new_key(purpose: str) -> tuple[str, bytes]:
    if purpose == SEAL:
        seal = X25519PrivateKey.generate()
        return seal_kid(seal.public_key()).hex(), seal.private_bytes_raw()
    poster = Ed25519PrivateKey.generate()
    return poster_kid(poster.public_key()).hex(), poster.private_bytes_raw()


def key_rows(conn: Connection, tenant: str, purpose: str) -> Sequence[Any]:
    """The tenant's keys for ``purpose``, newest first; one is made and stored on first need."""
    query = select(checkin_key).where(checkin_key.c.tenant == tenant, checkin_key.c.purpose == purpose)
    rows = conn.execute(query.order_by(checkin_key.c.created_at.desc())).all()
    if rows:
        return rows
    kid, raw = _new_key(purpose)
    conn.execute(checkin_key.insert().values(tenant=tenant, purpose=purpose, kid=kid, private_raw=raw.hex(),
                                             created_at=utc_now()))
    return conn.execute(query).all()


def _seal_private(row: Any) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(bytes.fromhex(row.private_raw))


def _poster_private(row: Any) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(row.private_raw))


def public_keys(conn: Connection, tenant: str) -> dict[str, Any]:
    seal = _seal_private(key_rows(conn, tenant, SEAL)[0]).public_key()
    posters = [_poster_private(r).public_key() for r in key_rows(conn, tenant, POSTER)]
    return {"municipalityCode": tenant, "sealKey": {"kid": seal_kid(seal).hex(), "publicKey": b64u(raw_public(seal))},
            "posterKeys": [{"kid": poster_kid(p).hex(), "publicKey": b64u(raw_public(p))} for p in posters]}


def desk_keys(conn: Connection, tenant: str) -> dict[str, Any]:
    seals = [_seal_private(r) for r in key_rows(conn, tenant, SEAL)]
    return {"municipalityCode": tenant,
            "sealKeys": [{"kid": seal_kid(k.public_key()).hex(), "publicKey": b64u(raw_public(k.public_key())),
                          "privateKey": b64u(k.private_bytes_raw())} for k in seals]}


def sign_poster(conn: Connection, tenant: str, shelter_id: str, name: str, valid_from: int, valid_until: int) -> str:
    key = _poster_private(key_rows(conn, tenant, POSTER)[0])
    return make_poster_token(key, shelter_id, tenant, name, valid_from, valid_until)


# --- device keys ------------------------------------------------------------------------------------

def register_device(conn: Connection, caller: Caller, kid: str, public: Any) -> bool:
    """Store the caller's device key; True when it is new. 409 if the id belongs to someone else."""
    try:
        key = Ed25519PublicKey.from_public_bytes(unb64u(public))
    except WireError as err:
        raise bad_data(f"publicKey: {err}") from None
    if device_kid(key).hex() != kid:
        raise bad_data("the key id in the path is not the id of this public key (first 8 bytes of its SHA-256)")
    tenant = caller.municipality_code
    row = conn.execute(select(checkin_device).where(checkin_device.c.tenant == tenant, checkin_device.c.kid == kid)).first()
    if row is not None and row.sub != caller.sub:
        raise Problem(409, CONFLICT, "this device key is registered to another account")
    if row is not None and row.public_key == b64u(raw_public(key)):
        return False  # a retried registration changes nothing (and does not wake every desk)
    values = {"sub": caller.sub, "public_key": b64u(raw_public(key)), "seq": next_seq(conn), "tx": current_tx(conn), "updated_at": utc_now()}
    if row is None:
        conn.execute(checkin_device.insert().values(tenant=tenant, kid=kid, **values))
    else:
        conn.execute(update(checkin_device).where(checkin_device.c.tenant == tenant, checkin_device.c.kid == kid).values(**values))
    return row is None or row.public_key is None


def revoke_device(conn: Connection, caller: Caller, kid: str) -> None:
    done = conn.execute(update(checkin_device).where(
        checkin_device.c.tenant == caller.municipality_code, checkin_device.c.kid == kid,
        checkin_device.c.sub == caller.sub, checkin_device.c.public_key.is_not(None),
    ).values(public_key=None, seq=next_seq(conn), tx=current_tx(conn), updated_at=utc_now())).rowcount
    if not done:
        raise not_found("no device key with this id is registered to your account")


Cursor = tuple[int, int]  # (tx, seq or n) of the last row handed out


def parse_cursor(value: str | None, name: str) -> Cursor:
    """A desk feed's cursor: ``seq`` (rows before transaction ids, and SQLite) or ``tx:seq``."""
    if value is None or value == "":
        return (0, 0)
    parts = value.split(":")
    if len(parts) > 2 or not all(p.isascii() and p.isdigit() and len(p) <= 19 and int(p) <= 2**62 for p in parts):
        raise bad_data(f"{name} must be a cursor from a previous answer, got {value[:40]!r}")
    return (int(parts[0]), int(parts[1])) if len(parts) == 2 else (0, int(parts[0]))


def format_cursor(cursor: Cursor) -> str:
    return f"{cursor[0]}:{cursor[1]}" if cursor[0] else str(cursor[1])


def device_page(conn: Connection, tenant: str, since: Cursor, limit: int) -> dict[str, Any]:
    """Device keys registered or revoked after the cursor, in commit-safe order: on PostgreSQL
    several workers write at once, and a registration that commits late must not be passed by
    a cursor (cityos/changes.py explains the ``(tx, seq)`` order)."""
    horizon, own = settled_horizon(conn)
    rows = conn.execute(select(checkin_device.c.kid, checkin_device.c.public_key, checkin_device.c.seq, checkin_device.c.tx,
                               horizon.label("horizon"), own.label("own")).where(
        checkin_device.c.tenant == tenant, tuple_(checkin_device.c.tx, checkin_device.c.seq) > tuple_(*since))
        .order_by(checkin_device.c.tx, checkin_device.c.seq).limit(limit + 1)).all()
    settled = settled_prefix(rows)
    page = settled[:limit]
    return {"keys": [{"kid": r.kid, "publicKey": r.public_key} for r in page],
            "cursor": format_cursor((page[-1].tx, page[-1].seq) if page else since), "hasMore": len(settled) > limit}


# --- desk events, presence and occupancy --------------------------------------------------------------

def _resolve(events: Sequence[Any]) -> tuple[str | None, int, bool]:
    """Where a household is after all its events in time order: latest check-in wins; a check-in
    while still open at another shelter flags the household for staff."""
    place, size, flagged = None, 0, False
    for e in sorted(events, key=lambda e: (e.at, e.n)):
        if e.action == "check_in":
            flagged = flagged or (place is not None and place != e.shelter_id)
            place, size = e.shelter_id, e.household_size
        elif e.shelter_id == place:
            place = None
    return place, size, flagged


def _relocate(conn: Connection, tenant: str, ref: str) -> set[str]:
    """Recompute one household's presence; returns the shelters whose count may have changed."""
    events = conn.execute(select(checkin_event).where(checkin_event.c.tenant == tenant, checkin_event.c.ref == ref)).all()
    place, size, flagged = _resolve(events)
    key = (checkin_presence.c.tenant == tenant, checkin_presence.c.ref == ref)
    before = conn.execute(select(checkin_presence.c.shelter_id).where(*key)).first()
    values = {"shelter_id": place, "household_size": size, "flagged": flagged}
    if before is None:
        conn.execute(checkin_presence.insert().values(tenant=tenant, ref=ref, **values))
    else:
        conn.execute(update(checkin_presence).where(*key).values(**values))
    return {s for s in (place, before.shelter_id if before else None) if s}


def record_events(conn: Connection, caller: Caller, events: list[Any], now: float,
                  origin: str = "desk") -> tuple[list[str], dict[str, str], set[str]]:
    """Store new events (a known key is accepted again, unchanged). (accepted, rejected, touched shelters).
    ``origin`` "self": the caller's own check-ins, each proven by the entrance poster it carries."""
    tenant, accepted, rejected, refs = caller.municipality_code, [], {}, set()
    posters = _PosterKeys(conn, tenant) if origin == "self" else None
    tx = current_tx(conn) if events else 0
    for body in events:
        try:
            event = event_from_json(body)
        except WireError as err:
            rejected[str(body.get("id") if isinstance(body, dict) else "")[:64]] = str(err)
            continue
        reason = _refusal(event, tenant, now) or (posters and _self_refusal(conn, caller, event, body, posters))
        if reason:
            rejected[event.idempotency_key] = reason
            continue
        if not _known(conn, tenant, event.idempotency_key):
            conn.execute(checkin_event.insert().values(
                tenant=tenant, key=event.idempotency_key, action=event.action, ref=event.ref,
                household_size=event.household_size, shelter_id=event.shelter_id, at=event.at,
                sender_sub=caller.sub, origin=origin, received_at=utc_now(), in_car=event.in_car, tx=tx))
            refs.add(event.ref)
        accepted.append(event.idempotency_key)
    return accepted, rejected, _relocate_all(conn, tenant, refs)


def _relocate_all(conn: Connection, tenant: str, refs: set[str]) -> set[str]:
    touched: set[str] = set()
    for ref in sorted(refs):
        touched |= _relocate(conn, tenant, ref)
    return touched


class _PosterKeys:
    """The platform's own poster keys, as the KeyDirectory that ``verify_poster`` asks."""

    def __init__(self, conn: Connection, tenant: str) -> None:
        self._keys = {bytes.fromhex(r.kid): _poster_private(r).public_key() for r in key_rows(conn, tenant, POSTER)}

    def poster_key(self, kid: bytes) -> Ed25519PublicKey | None:
        return self._keys.get(kid)

    def device_key(self, kid: bytes) -> None:
        return None

    def shelter_seal_key(self, municipality_code: str) -> None:
        return None


MAX_SELF_HOUSEHOLD = 10  # people in one self check-in
MAX_SELF_HOUSEHOLDS = 2  # households one account may check in by itself (its own, and e.g. a parent's)


def _self_refusal(conn: Connection, caller: Caller, event: RemoteEvent, body: dict[str, Any], posters: _PosterKeys) -> str | None:
    """A resident's own event must carry a genuine poster of that shelter, valid when it was scanned,
    name a household no other resident has sent events for, and stay within the self check-in bounds."""
    if event.household_size > MAX_SELF_HOUSEHOLD:
        return (f"householdSize: a self check-in counts at most {MAX_SELF_HOUSEHOLD} people; "
                "a larger household checks in at the shelter desk")
    mine = set(conn.execute(select(checkin_event.c.ref).where(
        checkin_event.c.tenant == caller.municipality_code, checkin_event.c.origin == "self",
        checkin_event.c.sender_sub == caller.sub).distinct()).scalars())
    if event.ref not in mine and len(mine) >= MAX_SELF_HOUSEHOLDS:
        return (f"ref: one account checks in at most {MAX_SELF_HOUSEHOLDS} households by itself; "
                "other households check in at the shelter desk")
    text = body.get("poster")
    if not isinstance(text, str):
        return "poster: a self check-in carries the entrance poster's QR text"
    try:
        poster = verify_poster(text, posters, datetime.fromisoformat(event.at).timestamp())
    except CheckinError as err:
        return f"poster: {err}"
    if (poster.shelter_id, poster.municipality_code) != (event.shelter_id, event.municipality_code):
        return "poster: it is the poster of another shelter"
    other = conn.execute(select(checkin_event.c.n).where(
        checkin_event.c.tenant == caller.municipality_code, checkin_event.c.ref == event.ref,
        checkin_event.c.origin == "self", checkin_event.c.sender_sub != caller.sub).limit(1)).first()
    return "ref: this household is checked in by another account" if other else None


def record_surveys(conn: Connection, tenant: str, responses: list[Any]) -> tuple[list[str], dict[str, str]]:
    """Store new survey responses (a known key is accepted again). (accepted, rejected with reasons)."""
    accepted, rejected = [], {}
    for body in responses:
        key = str(body.get("id") if isinstance(body, dict) else "")[:64]
        try:
            row = _survey_row(body)
        except (WireError, InvalidSurveyAnswer) as err:
            rejected[key] = str(err)
            continue
        known = select(checkin_survey.c.n).where(checkin_survey.c.tenant == tenant, checkin_survey.c.key == row["key"])
        if conn.execute(known).first() is None:
            conn.execute(checkin_survey.insert().values(tenant=tenant, **row))
        accepted.append(row["key"])
    return accepted, rejected


def _survey_row(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("answers"), dict):
        raise WireError("a survey response is an object with answers")
    language = body.get("language")
    if not isinstance(language, str) or not 1 <= len(language) <= 8:
        raise WireError("language must be a short language tag")
    return {"key": valid_id(body.get("id"), "id"), "shelter_id": valid_id(body.get("shelterId"), "shelterId"),
            "language": language, "answered_at": normal_time(body.get("answeredAt")),
            "answers": json.dumps(validate_answers(body["answers"]), ensure_ascii=False)}


def survey_summary(conn: Connection, tenant: str, shelter_id: str) -> dict[str, Any]:
    """What a shelter's residents said: counts per choice, mean of each scale, the comments."""
    rows = conn.execute(select(checkin_survey.c.answers).where(
        checkin_survey.c.tenant == tenant, checkin_survey.c.shelter_id == shelter_id)).scalars().all()
    answers = [json.loads(r) for r in rows]
    summary: dict[str, Any] = {"shelterId": shelter_id, "responses": len(answers), "comments": []}
    for q in SURVEY:
        given = [a[q.id] for a in answers if q.id in a]
        if q.kind is QuestionKind.SCALE:
            summary[q.id] = {"mean": round(sum(given) / len(given), 2) if given else None, "answers": len(given)}
        elif q.kind is QuestionKind.TEXT:
            summary["comments"] = [g for g in given if g]
        else:
            chosen = [c for g in given for c in (g if isinstance(g, list) else [g])]
            summary[q.id] = {o: chosen.count(o) for o in q.options}
    return summary


def forget_own_events(conn: Connection, sub: str) -> int:
    """Consent revoked: delete the resident's own check-ins everywhere and recount the shelters."""
    mine = (checkin_event.c.sender_sub == sub, checkin_event.c.origin == "self")
    rows = conn.execute(select(checkin_event.c.tenant, checkin_event.c.ref).where(*mine).distinct()).all()
    deleted = conn.execute(checkin_event.delete().where(*mine)).rowcount
    for tenant in {r.tenant for r in rows}:
        for shelter_id in sorted(_relocate_all(conn, tenant, {r.ref for r in rows if r.tenant == tenant})):
            publish(conn, tenant, shelter_id)
    return deleted


def _refusal(event: RemoteEvent, tenant: str, now: float) -> str | None:
    if event.municipality_code != tenant:
        return f"municipalityCode {event.municipality_code} is not this account's municipality {tenant}"
    if event.at > iso_utc(now + CLOCK_AHEAD_S):
        return "at is in the future: check the desk's clock"
    return None



def _known(conn: Connection, tenant: str, key: str) -> bool:
    return conn.execute(select(checkin_event.c.n).where(checkin_event.c.tenant == tenant,
                                                        checkin_event.c.key == key)).first() is not None


def event_page(conn: Connection, tenant: str, after: Cursor, limit: int) -> dict[str, Any]:
    """Every desk's events after the cursor, in commit-safe order as ``device_page`` (a desk
    skips its own by key). Events of a batch still being written elsewhere wait for the next pull."""
    horizon, own = settled_horizon(conn)
    rows = conn.execute(select(checkin_event, horizon.label("horizon"), own.label("own"))
                        .where(checkin_event.c.tenant == tenant, tuple_(checkin_event.c.tx, checkin_event.c.n) > tuple_(*after))
                        .order_by(checkin_event.c.tx, checkin_event.c.n).limit(limit + 1)).all()
    settled = settled_prefix(rows)
    page = settled[:limit]
    events = [event_to_json(RemoteEvent(r.key, r.action, r.ref, r.household_size, r.shelter_id, tenant, r.at, r.in_car))
              for r in page]
    return {"events": events, "cursor": format_cursor((page[-1].tx, page[-1].n) if page else after), "hasMore": len(settled) > limit}


def _shelter_state(conn: Connection, tenant: str, shelter_id: str) -> Any:
    return conn.execute(select(checkin_shelter).where(checkin_shelter.c.tenant == tenant,
                                                      checkin_shelter.c.shelter_id == shelter_id)).first()


def set_shelter(conn: Connection, tenant: str, shelter_id: str, *, capacity: int | None = None,
                closed: bool | None = None) -> None:
    """Remember what staff said about a shelter: capacity (when known) and whether it is closed."""
    row = _shelter_state(conn, tenant, shelter_id)
    values = {"capacity": capacity if capacity else (row.capacity if row else None),
              "closed": closed if closed is not None else bool(row and row.closed)}
    if row is None:
        conn.execute(checkin_shelter.insert().values(tenant=tenant, shelter_id=shelter_id, **values))
    else:
        conn.execute(update(checkin_shelter).where(checkin_shelter.c.tenant == tenant,
                                                   checkin_shelter.c.shelter_id == shelter_id).values(**values))


@dataclass(frozen=True, slots=True)
class _Counts:
    desk: int  # people a desk checked in
    self_reported: int  # people only checked in by their own phone
    in_car_households: int  # households present that stay in a car (車中泊), either way
    in_car_persons: int


def _counts(conn: Connection, tenant: str, shelter_id: str) -> _Counts:
    """Who is at the shelter now, from each present household's latest check-in there."""
    present = conn.execute(select(checkin_presence.c.ref, checkin_presence.c.household_size).where(
        checkin_presence.c.tenant == tenant, checkin_presence.c.shelter_id == shelter_id)).all()
    latest: dict[str, Any] = {}  # ref -> its latest check-in here (a resident's later one is not confirmed)
    for row in conn.execute(select(checkin_event.c.ref, checkin_event.c.origin, checkin_event.c.in_car).where(
            checkin_event.c.tenant == tenant, checkin_event.c.shelter_id == shelter_id, checkin_event.c.action == "check_in",
            checkin_event.c.ref.in_([r.ref for r in present])).order_by(checkin_event.c.at, checkin_event.c.n)):
        latest[row.ref] = row
    desk = sum(r.household_size for r in present if r.ref in latest and latest[r.ref].origin == "desk")
    in_car = [r for r in present if r.ref in latest and latest[r.ref].in_car]
    return _Counts(desk, sum(r.household_size for r in present) - desk, len(in_car), sum(r.household_size for r in in_car))


def publish(conn: Connection, tenant: str, shelter_id: str) -> dict[str, Any]:
    """Write the shelter's occupancy and status onto its EvacuationShelter entity (change feed too)."""
    where = (checkin_presence.c.tenant == tenant, checkin_presence.c.shelter_id == shelter_id)
    counts = _counts(conn, tenant, shelter_id)
    occupancy, self_reported = counts.desk, counts.self_reported
    flagged = int(conn.execute(select(func.count()).where(*where, checkin_presence.c.flagged.is_(True))).scalar_one())
    state = _shelter_state(conn, tenant, shelter_id)
    entity_id = SHELTER_PREFIX + shelter_id
    row = get_row(conn, tenant, entity_id)
    stored = (row.body.get("capacity") or {}).get("value") if row is not None and not row.deleted else None
    capacity = (state.capacity if state else None) or (stored if isinstance(stored, int) else None)
    status = "closed" if state and state.closed else "full" if capacity and occupancy >= capacity else "open"
    now = utc_now()
    body: dict[str, Any] = {"id": entity_id, "type": "EvacuationShelter",
                            "status": {"type": "Property", "value": status, "observedAt": now},
                            "occupancy": {"type": "Property", "value": occupancy, "observedAt": now},
                            "selfReported": {"type": "Property", "value": self_reported, "observedAt": now},
                            "inCarHouseholds": {"type": "Property", "value": counts.in_car_households, "observedAt": now},
                            "inCarPersons": {"type": "Property", "value": counts.in_car_persons, "observedAt": now}}
    if capacity:
        body["capacity"] = {"type": "Property", "value": capacity}
    if row is None or row.deleted:  # a shelter the platform was not seeded with
        body["municipalityCode"] = {"type": "Property", "value": tenant}
    put_entity(conn, tenant, body, None, None, row, merge=True)
    return {"shelterId": shelter_id, "status": status, "occupancy": occupancy, "selfReported": self_reported, "capacity": capacity,
            "inCarHouseholds": counts.in_car_households, "inCarPersons": counts.in_car_persons,
            "flaggedHouseholds": flagged, "observedAt": now}


# --- HTTP ---------------------------------------------------------------------------------------------

def _caller(request: Request) -> Caller:
    platform = platform_of(request)
    caller = platform.caller(request)
    if caller is None:
        raise unauthorized("shelter check-in needs a bearer token: log in first", error="invalid_request")
    resolve_tenant(caller, header_tenant(request), platform.settings.default_tenant)
    return caller


def _staff(request: Request) -> Caller:
    caller = _caller(request)
    if STAFF_ROLE not in caller.roles:
        raise forbidden("this is for shelter desk staff: it needs the shelter_staff role, "
                        "which resident accounts do not have")
    return caller


def _consented(conn: Connection, caller: Caller, otherwise: str) -> None:
    if CONSENT_CATEGORY not in active_categories(conn, caller.sub):
        raise Problem(403, CONSENT_REQUIRED, f"no active consent for data category {CONSENT_CATEGORY!r}: {otherwise}")


def _paged(request: Request, cursor: str) -> tuple[Caller, Cursor, int]:
    """A staff caller, the cursor after which to answer, and the page size."""
    caller = _staff(request)
    return (caller, parse_cursor(request.query_params.get(cursor), cursor),
            int_param(request.query_params.get("limit"), "limit", PAGE, 1, PAGE))


def _kid(kid: str) -> str:
    if len(kid) != 16 or any(c not in "0123456789abcdef" for c in kid):
        raise bad_data("a device key id is 16 lowercase hex digits")
    return kid


def _object(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise bad_data("body must be a JSON object")
    return payload


def _whole(value: Any, name: str, default: int = 0) -> int:
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise bad_data(f"{name} must be a whole number >= 0")
    return value


async def _in_write(request: Request, work: Callable[[Connection], Any]) -> Any:
    store = platform_of(request).store

    def run() -> Any:
        with store.write() as conn:
            return work(conn)
    return await run_in_threadpool(run)


def _events_of(payload: dict[str, Any]) -> list[Any]:
    events = payload.get("events")
    if not isinstance(events, list) or len(events) > MAX_BATCH:
        raise bad_data(f"events must be a list of at most {MAX_BATCH}")
    return events


def _capacities(payload: dict[str, Any]) -> dict[str, int]:
    raw = payload.get("capacity") or {}
    if not isinstance(raw, dict):
        raise bad_data("capacity must map shelter ids to whole numbers")
    try:
        return {valid_id(k, "capacity key"): _whole(v, f"capacity[{k}]") for k, v in raw.items()}
    except WireError as err:
        raise bad_data(str(err)) from None


def router() -> APIRouter:
    api = APIRouter(prefix="/cityos/v1/checkin", tags=["Shelter check-in"])
    errors = problem_responses(400, 401, 403, 404, 409, 413, 415, 429)
    staff_errors = problem_responses(400, 401, 403, 413, 415, 429)

    @api.put("/device-keys/{kid}", summary="Register the caller's device public key (Ed25519)", responses=errors)
    async def put_device(request: Request, kid: str = Path(max_length=16)) -> JSONResponse:
        caller = _caller(request)
        body = _object((await read_json(request))[0])
        created = await _in_write(request, lambda c: register_device(c, caller, _kid(kid), body.get("publicKey")))
        return JSONResponse({"kid": kid}, status_code=201 if created else 200)

    @api.delete("/device-keys/{kid}", status_code=204, summary="Revoke (delete) the caller's device key", responses=errors)
    async def delete_device(request: Request, kid: str = Path(max_length=16)) -> Response:
        caller = _caller(request)
        await _in_write(request, lambda c: revoke_device(c, caller, _kid(kid)))
        return Response(status_code=204)

    @api.get("/keys", summary="The municipality's shelter seal public key and poster keys", responses=errors)
    async def keys(request: Request) -> dict[str, Any]:
        caller = _caller(request)
        return await _in_write(request, lambda c: public_keys(c, caller.municipality_code))

    @api.get("/desk/keys", summary="Seal private key(s) for an offline desk (shelter_staff)", responses=staff_errors)
    async def desk_key_material(request: Request) -> JSONResponse:
        caller = _staff(request)
        body = await _in_write(request, lambda c: desk_keys(c, caller.municipality_code))
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    @api.get("/desk/device-keys", summary="Registered device keys after a cursor (shelter_staff)", responses=staff_errors)
    async def device_keys(request: Request) -> dict[str, Any]:
        caller, since, limit = _paged(request, "since")
        with platform_of(request).store.read() as conn:
            return device_page(conn, caller.municipality_code, since, limit)

    @api.post("/desk/posters", status_code=201, summary="Sign a shelter's entrance poster QR (shelter_staff)",
              responses=staff_errors)
    async def poster(request: Request) -> JSONResponse:
        caller = _staff(request)
        body = _object((await read_json(request))[0])
        now = int(time.time())
        try:
            shelter_id = valid_id(body.get("shelterId"), "shelterId")
        except WireError as err:
            raise bad_data(str(err)) from None
        start = _whole(body.get("validFrom"), "validFrom", now)
        end = _whole(body.get("validUntil"), "validUntil", start + POSTER_DAYS * 86400)
        if not start < end <= start + MAX_POSTER_DAYS * 86400:
            raise bad_data(f"validUntil must be after validFrom and at most {MAX_POSTER_DAYS} days later")
        tenant = caller.municipality_code

        def sign(conn: Connection) -> str:
            row = get_row(conn, tenant, SHELTER_PREFIX + shelter_id)
            known = (row.body.get("name") or {}).get("value") if row is not None and not row.deleted else None
            name = known or str(body.get("shelterName") or shelter_id)
            return sign_poster(conn, tenant, shelter_id, name[:120], start, end)
        return JSONResponse({"poster": await _in_write(request, sign)}, status_code=201)

    @api.post("/events", summary="Send the caller's own self check-ins/outs (needs evacuee_card consent)",
              responses=errors)
    async def post_own_events(request: Request) -> dict[str, Any]:
        caller = _caller(request)
        events = _events_of(_object((await read_json(request))[0]))
        tenant = caller.municipality_code

        def write(conn: Connection) -> dict[str, Any]:
            _consented(conn, caller, "self check-ins stay on the phone")
            accepted, rejected, touched = record_events(conn, caller, events, time.time(), origin="self")
            return {"accepted": accepted, "rejected": rejected,
                    "shelters": [publish(conn, tenant, s) for s in sorted(touched)]}
        return await _in_write(request, write)

    @api.post("/survey", summary="Send shelter-life survey answers, anonymous (needs evacuee_card consent)",
              responses=errors)
    async def post_survey(request: Request) -> dict[str, Any]:
        caller = _caller(request)
        payload = _object((await read_json(request))[0])
        responses = payload.get("responses")
        if not isinstance(responses, list) or len(responses) > MAX_BATCH:
            raise bad_data(f"responses must be a list of at most {MAX_BATCH}")

        def write(conn: Connection) -> dict[str, Any]:
            _consented(conn, caller, "survey answers stay on the phone")
            accepted, rejected = record_surveys(conn, caller.municipality_code, responses)
            return {"accepted": accepted, "rejected": rejected}
        return await _in_write(request, write)

    @api.get("/desk/survey", summary="A shelter's survey answers summed up (shelter_staff)", responses=staff_errors)
    async def get_survey(request: Request) -> dict[str, Any]:
        caller = _staff(request)
        shelter_id = request.query_params.get("shelterId")
        try:
            shelter_id = valid_id(shelter_id, "shelterId")
        except WireError as err:
            raise bad_data(str(err)) from None
        with platform_of(request).store.read() as conn:
            return survey_summary(conn, caller.municipality_code, shelter_id)

    @api.post("/desk/events", summary="Send desk check-ins/outs; get every desk's events back (shelter_staff)",
              responses=staff_errors)
    async def post_events(request: Request) -> dict[str, Any]:
        caller = _staff(request)
        payload = _object((await read_json(request))[0])
        events = _events_of(payload)
        capacities = _capacities(payload)
        after = payload.get("after")  # when given, the answer also carries every desk's events after it
        cursor = parse_cursor(str(after), "after") if after is not None else None
        tenant = caller.municipality_code

        def write(conn: Connection) -> dict[str, Any]:
            for shelter_id, capacity in capacities.items():
                set_shelter(conn, tenant, shelter_id, capacity=capacity)
            accepted, rejected, touched = record_events(conn, caller, events, time.time())
            shelters = [publish(conn, tenant, s) for s in sorted(touched | set(capacities))]
            pulled = event_page(conn, tenant, cursor, PAGE) if cursor is not None else {}
            return {"accepted": accepted, "rejected": rejected, "shelters": shelters, **pulled}
        return await _in_write(request, write)

    @api.get("/desk/events", summary="Every desk's events after a cursor (shelter_staff)", responses=staff_errors)
    async def get_events(request: Request) -> dict[str, Any]:
        caller, after, limit = _paged(request, "after")
        with platform_of(request).store.read() as conn:
            return event_page(conn, caller.municipality_code, after, limit)

    @api.put("/desk/shelters/{shelter_id}", summary="Open or close a shelter, set its capacity (shelter_staff)",
             responses=staff_errors)
    async def put_shelter(request: Request, shelter_id: str = Path(max_length=64)) -> dict[str, Any]:
        caller = _staff(request)
        body = _object((await read_json(request))[0])
        if body.get("status") not in ("open", "closed"):
            raise bad_data("status must be open or closed (full follows from occupancy and capacity)")
        try:
            sid = valid_id(shelter_id, "shelter id")
        except WireError as err:
            raise bad_data(str(err)) from None
        capacity = _whole(body.get("capacity"), "capacity")
        tenant = caller.municipality_code

        def write(conn: Connection) -> dict[str, Any]:
            set_shelter(conn, tenant, sid, capacity=capacity, closed=body["status"] == "closed")
            return publish(conn, tenant, sid)
        return await _in_write(request, write)

    return api
