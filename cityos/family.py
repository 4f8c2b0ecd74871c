"""Family groups and safety answers on the platform (安否確認).

* Groups: a resident creates a group and registers its invite public key (Ed25519); the
  phone signs short-lived invites with the private half (``app.family``), so inviting works
  face to face with no network. ``POST /join`` verifies the signature, the lifetime and that
  the invite's nonce was never used, then admits the caller.
* Reading: ``GET /groups/{id}/status`` gives each member's latest SafetyStatus — only for
  members with an active ``safety_status`` grant to recipient ``family`` (or ``caregiver``,
  when the caller is their named caregiver); its ``location`` only with a matching
  ``location`` grant. Nothing else about a member is shown.
* Caregivers: a person who needs support (要支援者) names a caregiver who shares a group with
  them, under their own active grant ``safety_status`` → ``caregiver``. The caregiver may then
  ``POST /answers`` for them: the answer is stored as a second SafetyStatus of the person
  (``…:SafetyStatus:{person}:proxy``, ``proxy: true``, ``reportedBy`` the caregiver), owned by
  the person, so revoking the person's consents deletes or strips it exactly as for answers
  they gave themselves — and a proxy answer never overwrites the person's own answer.
* Readers get the latest of each record (``own`` and ``proxy``), who answered and when. An SOS
  (``needHelp`` / ``injured``) keeps its message and location until the person answers again
  or the person or the HQ (``city_staff``, for answers shared with the city) marks it resolved
  (``POST /sos/resolve``).
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Column, Connection, String, Table, Text, delete, select
from starlette.concurrency import run_in_threadpool

from cityos.core import platform_of, read_json
from cityos.entities import get_row, location_attributes, put_entity, validate_geometry
from cityos.oidc import Caller
from cityos.problems import (
    CONSENT_REQUIRED,
    Problem,
    bad_data,
    forbidden,
    not_found,
    problem_responses,
    unauthorized,
)
from cityos.store import account, consent, entity, metadata, utc_now
from protocol.family import (
    FamilyError,
    InviteExpired,
    InviteForged,
    InviteMalformed,
    InviteReused,
    parse_invite,
    public_key_from_text,
    verify_invite,
)

family_group = Table(
    "family_group", metadata,
    Column("id", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("owner_sub", String(64), nullable=False),
    Column("invite_key", String(64), nullable=False),
    Column("created_at", String(32), nullable=False),
)
family_member = Table(
    "family_member", metadata,
    Column("group_id", String(64), primary_key=True),
    Column("sub", String(64), primary_key=True, index=True),
    Column("role", String(16), nullable=False),
    Column("joined_at", String(32), nullable=False),
)
family_invite_used = Table(
    "family_invite_used", metadata,
    Column("nonce", String(32), primary_key=True),
    Column("group_id", String(64), nullable=False),
    Column("used_at", String(32), nullable=False),
)
family_reminder = Table(  # the HQ asked this person to answer (latest ask only)
    "family_reminder", metadata,
    Column("person_sub", String(64), primary_key=True),
    Column("by_sub", String(64), nullable=False),
    Column("at", String(32), nullable=False),
)
family_caregiver = Table(
    "family_caregiver", metadata,
    Column("person_sub", String(64), primary_key=True),
    Column("caregiver_sub", String(64), primary_key=True, index=True),
    Column("relation", String(32), nullable=False),
)

PROBLEM = "urn:cityos:problem:family-"
STATUSES = ("safe", "needHelp", "injured", "evacuating", "atShelter")
SOS = ("needHelp", "injured")
STAFF_ROLE = "city_staff"
RELATIONS = ("family", "care_manager", "welfare_commissioner")
_GROUP_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_SUB = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_INVITE_PROBLEMS: dict[type[FamilyError], tuple[int, str]] = {
    InviteMalformed: (400, "invite-malformed"), InviteForged: (403, "invite-forged"),
    InviteExpired: (410, "invite-expired"), InviteReused: (409, "invite-reused"),
}


def _caller(request: Request) -> Caller:
    caller = platform_of(request).caller(request)
    if caller is None:
        raise unauthorized("family groups need a bearer token", error="invalid_request")
    return caller


def _text(payload: dict[str, Any], key: str, pattern: re.Pattern[str] | None = None, limit: int = 200,
          required: bool = True) -> Any:  # str, or None when not required and absent
    value = payload.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit or (pattern and not pattern.match(value)):
        raise bad_data(f"{key} must be a string of at most {limit} characters" + (f" matching {pattern.pattern}" if pattern else ""))
    return value.strip()


def _object(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise bad_data("body must be a JSON object")
    return payload


def _grants(conn: Connection, sub: str, category: str) -> set[str]:
    """Recipients of the resident's active grants in one category."""
    return set(conn.execute(select(consent.c.recipient).where(
        consent.c.sub == sub, consent.c.category == category, consent.c.active.is_(True))).scalars())


def _member_role(conn: Connection, group_id: str, sub: str) -> str | None:
    return conn.execute(select(family_member.c.role).where(
        family_member.c.group_id == group_id, family_member.c.sub == sub)).scalar()


def _share_a_group(conn: Connection, a: str, b: str) -> bool:
    mine = select(family_member.c.group_id).where(family_member.c.sub == a)
    return conn.execute(select(family_member.c.sub).where(
        family_member.c.sub == b, family_member.c.group_id.in_(mine)).limit(1)).first() is not None


def _is_caregiver(conn: Connection, person: str, caregiver: str) -> bool:
    return conn.execute(select(family_caregiver.c.relation).where(
        family_caregiver.c.person_sub == person, family_caregiver.c.caregiver_sub == caregiver)).first() is not None


def _group_view(conn: Connection, group_id: str) -> dict[str, Any]:
    group = conn.execute(select(family_group).where(family_group.c.id == group_id)).one()
    members = conn.execute(
        select(family_member.c.sub, family_member.c.role, account.c.name)
        .join(account, account.c.sub == family_member.c.sub)
        .where(family_member.c.group_id == group_id).order_by(family_member.c.joined_at, family_member.c.sub)).all()
    subs = [m.sub for m in members]
    carers = conn.execute(select(family_caregiver).where(
        family_caregiver.c.person_sub.in_(subs), family_caregiver.c.caregiver_sub.in_(subs))).all()
    return {"id": group.id, "name": group.name, "owner": group.owner_sub,
            "members": [{"person": m.sub, "name": m.name, "role": m.role} for m in members],
            "caregivers": [{"person": c.person_sub, "caregiver": c.caregiver_sub, "relation": c.relation} for c in carers]}


def _require_member(conn: Connection, group_id: str, sub: str) -> str:
    role = _member_role(conn, group_id, sub)
    if role is None:
        # The same answer for "no such group" and "not yours": ids of other families stay secret.
        raise not_found(f"family group {group_id} not found among your groups")
    return role


def proxy_entity_id(person: str) -> str:
    return f"urn:ngsi-ld:SafetyStatus:{person}:proxy"


def _observed(row: Any) -> str:
    return str((row.body.get("status") or {}).get("observedAt") or row.modified_at)


def is_proxy_record(body: dict[str, Any]) -> bool:
    return (body.get("proxy") or {}).get("value") is True


def status_records(conn: Connection, sub: str) -> tuple[Any, Any]:
    """The person's latest own answer and latest proxy answer (rows, or None)."""
    rows = conn.execute(select(entity).where(
        entity.c.owner_sub == sub, entity.c.type == "SafetyStatus", entity.c.deleted.is_(False))).all()
    own = [r for r in rows if not is_proxy_record(r.body)]
    proxy = [r for r in rows if is_proxy_record(r.body)]
    return max(own, key=_observed, default=None), max(proxy, key=_observed, default=None)


def open_sos(body: dict[str, Any] | None) -> bool:
    """An SOS answer nobody has resolved yet (a later answer of the same record replaces it)."""
    if not body:
        return False
    return (body.get("status") or {}).get("value") in SOS and "resolvedAt" not in body


# --- operations (each runs in one transaction) ----------------------------------------------

def create_group(conn: Connection, caller: Caller, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    group_id = _text(payload, "id", _GROUP_ID, 64)
    name = _text(payload, "name", limit=60)
    key = _text(payload, "inviteKey", limit=64)
    try:
        public_key_from_text(key)
    except InviteMalformed as exc:
        raise bad_data(f"inviteKey: {exc}") from None
    existing = conn.execute(select(family_group).where(family_group.c.id == group_id)).first()
    if existing is not None:
        if existing.owner_sub != caller.sub:
            raise Problem(409, PROBLEM + "group-id-taken", "this group id is already taken; make a new one")
        return 200, _group_view(conn, group_id)  # a retried create is a no-op
    now = utc_now()
    conn.execute(family_group.insert().values(id=group_id, name=name, owner_sub=caller.sub, invite_key=key, created_at=now))
    conn.execute(family_member.insert().values(group_id=group_id, sub=caller.sub, role="owner", joined_at=now))
    return 201, _group_view(conn, group_id)


def join(conn: Connection, caller: Caller, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    text: Any = payload.get("invite")  # parse_invite refuses anything but a short string
    try:
        preview = parse_invite(text)
        group = conn.execute(select(family_group).where(family_group.c.id == preview.group_id)).first()
        if group is None:
            raise not_found("the invite names a family group that does not exist (any more)")
        def used(nonce: str) -> bool:
            return conn.execute(select(family_invite_used.c.nonce).where(family_invite_used.c.nonce == nonce)).first() is not None

        invite = verify_invite(text, public_key_from_text(group.invite_key), time.time(), used)
    except FamilyError as exc:
        status, kind = _INVITE_PROBLEMS.get(type(exc), (400, "invite-malformed"))
        raise Problem(status, PROBLEM + kind, str(exc)) from None
    conn.execute(family_invite_used.insert().values(nonce=invite.nonce, group_id=group.id, used_at=utc_now()))
    if _member_role(conn, group.id, caller.sub) is None:
        conn.execute(family_member.insert().values(group_id=group.id, sub=caller.sub, role="member", joined_at=utc_now()))
    return 200, _group_view(conn, group.id)


def leave(conn: Connection, caller: Caller, group_id: str) -> dict[str, Any]:
    role = _require_member(conn, group_id, caller.sub)
    _remove_member(conn, group_id, caller.sub)
    if role == "owner":  # hand the group to the longest-standing member, or drop it when empty
        heir = conn.execute(select(family_member.c.sub).where(family_member.c.group_id == group_id)
                            .order_by(family_member.c.joined_at, family_member.c.sub).limit(1)).scalar()
        if heir is None:
            conn.execute(delete(family_group).where(family_group.c.id == group_id))
        else:
            conn.execute(family_member.update().where(family_member.c.group_id == group_id, family_member.c.sub == heir).values(role="owner"))
            conn.execute(family_group.update().where(family_group.c.id == group_id).values(owner_sub=heir))
    return {"left": True}


def remove(conn: Connection, caller: Caller, group_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    person = _text(payload, "person", _SUB, 64)
    if _require_member(conn, group_id, caller.sub) != "owner":
        raise forbidden("only the group's owner can remove a member")
    if person == caller.sub or _member_role(conn, group_id, person) is None:
        raise not_found("no such member in this group (the owner leaves instead of removing themself)")
    _remove_member(conn, group_id, person)
    return _group_view(conn, group_id)


def _remove_member(conn: Connection, group_id: str, sub: str) -> None:
    conn.execute(delete(family_member).where(family_member.c.group_id == group_id, family_member.c.sub == sub))


def name_caregiver(conn: Connection, caller: Caller, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    carer = _text(payload, "caregiver", _SUB, 64)
    relation = _text(payload, "relation", limit=32)
    if relation not in RELATIONS:
        raise bad_data(f"relation must be one of {', '.join(RELATIONS)}")
    if "caregiver" not in _grants(conn, caller.sub, "safety_status"):
        raise Problem(403, CONSENT_REQUIRED, "naming a caregiver needs your active consent: safety_status to recipient 'caregiver'")
    if carer == caller.sub or not _share_a_group(conn, caller.sub, carer):
        raise forbidden("a caregiver must be someone else in one of your family groups")
    conn.execute(delete(family_caregiver).where(family_caregiver.c.person_sub == caller.sub, family_caregiver.c.caregiver_sub == carer))
    conn.execute(family_caregiver.insert().values(person_sub=caller.sub, caregiver_sub=carer, relation=relation))
    return 201, {"person": caller.sub, "caregiver": carer, "relation": relation}


def drop_caregiver(conn: Connection, caller: Caller, payload: dict[str, Any]) -> dict[str, Any]:
    carer = _text(payload, "caregiver", _SUB, 64)
    gone = conn.execute(delete(family_caregiver).where(
        family_caregiver.c.person_sub == caller.sub, family_caregiver.c.caregiver_sub == carer)).rowcount
    return {"removed": bool(gone)}


def proxy_answer(conn: Connection, caller: Caller, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    person = _text(payload, "person", _SUB, 64)
    status = _text(payload, "status", limit=16)
    if status not in STATUSES:
        raise bad_data(f"status must be one of {', '.join(STATUSES)}")
    observed = _text(payload, "observedAt", re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$"), 40)
    answer_id = _text(payload, "answerId", _SUB, 64)
    message, place = _text(payload, "message", limit=140, required=False), _text(payload, "place", limit=60, required=False)
    location = payload.get("location")
    if not (_is_caregiver(conn, person, caller.sub) and _share_a_group(conn, person, caller.sub)):
        raise forbidden("you are not a named caregiver of this person")
    if "caregiver" not in _grants(conn, person, "safety_status"):
        raise Problem(403, CONSENT_REQUIRED, "the person has no active consent for answers by a caregiver (safety_status to 'caregiver')")
    if location is not None:
        if not isinstance(location, dict) or location.get("type") != "Point":
            raise bad_data("location must be a GeoJSON Point")
        validate_geometry(location, "location")
        if not _grants(conn, person, "location"):
            raise Problem(403, CONSENT_REQUIRED, "the person has no active consent for data category 'location'")
    tenant = conn.execute(select(account.c.municipality_code).where(account.c.sub == person)).scalar()
    if tenant is None:
        raise not_found("no such person")
    entity_id = proxy_entity_id(person)
    current = status_records(conn, person)[1]
    if current is not None and _observed(current) > observed:
        return 200, {"stored": False, "reason": "a newer proxy answer is already stored"}  # late delivery after offline
    body: dict[str, Any] = {
        "id": entity_id, "type": "SafetyStatus",
        "status": {"type": "Property", "value": status, "observedAt": observed},
        "person": {"type": "Relationship", "object": f"urn:ngsi-ld:Person:{person}"},
        "reportedBy": {"type": "Relationship", "object": f"urn:ngsi-ld:Person:{caller.sub}"},
        "proxy": {"type": "Property", "value": True},
        "answerId": {"type": "Property", "value": answer_id},
        "municipalityCode": {"type": "Property", "value": tenant},
    }
    for name, value in (("message", message), ("place", place)):
        if value is not None:
            body[name] = {"type": "Property", "value": value}
    if location is not None:
        body["location"] = {"type": "GeoProperty", "value": {"type": "Point", "coordinates": location["coordinates"][:2]}}
    row = get_row(conn, tenant, entity_id)
    if row is not None and row.owner_sub not in (None, person):
        raise forbidden("this person's status entity is held by another account")
    created = put_entity(conn, tenant, body, person, "safety_status", row)
    return (201 if created else 200), {"stored": True, "id": entity_id}


def group_status(conn: Connection, caller: Caller, group_id: str) -> list[dict[str, Any]]:
    """Per member: ``shared`` (may the caller see their answers at all), ``own`` and ``proxy``
    (the latest of each record) and ``status`` (the newer of the two, for older clients)."""
    _require_member(conn, group_id, caller.sub)
    result = []
    for member in conn.execute(select(family_member.c.sub).where(family_member.c.group_id == group_id)
                               .order_by(family_member.c.joined_at, family_member.c.sub)).scalars():
        audience = {"family"} | ({"caregiver"} if _is_caregiver(conn, member, caller.sub) else set())
        if member == caller.sub:
            audience = {"family", "caregiver", "city"}  # your own record: whatever you stored
        shared = bool(_grants(conn, member, "safety_status") & audience)
        with_location = bool(_grants(conn, member, "location") & audience)
        own, proxy = (_visible(r, with_location) for r in status_records(conn, member)) if shared else (None, None)
        newer = max((b for b in (own, proxy) if b), key=lambda b: str(b["status"].get("observedAt")), default=None)
        result.append({"person": member, "shared": shared, "status": newer, "own": own, "proxy": proxy})
    return result


def _visible(row: Any, with_location: bool) -> dict[str, Any] | None:
    if row is None:
        return None
    body = dict(row.body)
    if not with_location:
        body = {k: v for k, v in body.items() if k not in location_attributes(body)}
    return body


def resolve_sos(conn: Connection, caller: Caller, payload: dict[str, Any]) -> dict[str, Any]:
    """Mark a person's open SOS answers resolved: by the person, or by city staff (HQ) when the
    person shares their answers with the city. The answers stay, with who resolved them and when."""
    person = _text(payload, "person", _SUB, 64)
    if person != caller.sub:
        if STAFF_ROLE not in caller.roles:
            raise forbidden("only the person or the disaster HQ (city_staff) resolves an SOS")
        if "city" not in _grants(conn, person, "safety_status"):
            raise not_found("no SOS of this person is shared with the city")
    resolved = 0
    now = utc_now()
    for row in status_records(conn, person):
        if row is None or not open_sos(row.body) or (person != caller.sub and row.tenant != caller.municipality_code):
            continue  # staff act in their own municipality only
        marks = {"resolvedAt": {"type": "Property", "value": now},
                 "resolvedBy": {"type": "Relationship", "object": f"urn:ngsi-ld:Person:{caller.sub}"}}
        put_entity(conn, row.tenant, {"id": row.id, "type": "SafetyStatus", **marks}, row.owner_sub, row.category, row, merge=True)
        resolved += 1
    return {"resolved": resolved}


def hq_people(conn: Connection, caller: Caller, name: str | None, sos_only: bool, limit: int = 500) -> list[dict[str, Any]]:
    """For the disaster HQ (city_staff): residents of the caller's municipality who share their
    answers with the city, with their name and the latest own and proxy answers (location only
    with the location consent); ``name`` filters by part of the name, ``sos_only`` keeps open SOS."""
    if STAFF_ROLE not in caller.roles:
        raise forbidden("the HQ view is for city staff (city_staff)")
    sharing = select(consent.c.sub).where(consent.c.category == "safety_status", consent.c.recipient == "city",
                                          consent.c.active.is_(True))
    query = select(account.c.sub, account.c.name).where(
        account.c.municipality_code == caller.municipality_code, account.c.sub.in_(sharing)).order_by(account.c.name, account.c.sub)
    result = []
    for row in conn.execute(query):
        if name and name.casefold() not in (row.name or "").casefold():
            continue
        with_location = "city" in _grants(conn, row.sub, "location")
        own, proxy = (_visible(r, with_location) for r in status_records(conn, row.sub))
        sos = open_sos(own) or open_sos(proxy)
        if (own or proxy) and (sos or not sos_only):
            result.append({"person": row.sub, "name": row.name, "own": own, "proxy": proxy, "sos": sos})
        if len(result) >= limit:
            break
    return result


def remind(conn: Connection, caller: Caller, payload: dict[str, Any]) -> dict[str, Any]:
    """City staff ask a listed 要支援者 (care information shared with the city) to answer; the
    person's app shows it (event stream, ``GET /reminder``) until they answer after it."""
    person = _text(payload, "person", _SUB, 64)
    if STAFF_ROLE not in caller.roles:
        raise forbidden("reminders are sent by the disaster HQ (city_staff)")
    tenant = conn.execute(select(account.c.municipality_code).where(account.c.sub == person)).scalar()
    if tenant != caller.municipality_code or "city" not in _grants(conn, person, "care_information"):
        raise not_found("no person needing support with this id shares their information with the city")
    now = utc_now()
    conn.execute(delete(family_reminder).where(family_reminder.c.person_sub == person))
    conn.execute(family_reminder.insert().values(person_sub=person, by_sub=caller.sub, at=now))
    return {"person": person, "remindedAt": now}


def reminder(conn: Connection, sub: str) -> str | None:
    """When the HQ last asked this person to answer (None: never)."""
    return conn.execute(select(family_reminder.c.at).where(family_reminder.c.person_sub == sub)).scalar()


# --- routes -------------------------------------------------------------------------------------

def router() -> APIRouter:
    api = APIRouter(prefix="/cityos/v1/family", tags=["Family"])
    body_errors = problem_responses(400, 401, 403, 404, 409, 413, 415, 429)

    def json_body(schema: dict[str, Any]) -> dict[str, Any]:
        return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}

    def obj(**props: dict[str, Any]) -> dict[str, Any]:
        return {"type": "object", "properties": props, "required": list(props)}

    string = {"type": "string"}
    GroupId = Path(pattern=_GROUP_ID.pattern, description="family group id")

    async def run(request: Request, op: Callable[..., Any], *args: Any, with_body: bool = True) -> Any:
        platform = platform_of(request)
        caller = _caller(request)
        payload = _object((await read_json(request))[0]) if with_body else None

        def work() -> Any:
            with platform.store.write() as conn:
                return op(conn, caller, *args, *( [payload] if with_body else []))

        return await run_in_threadpool(work)

    def answer(result: Any) -> JSONResponse:
        status, body = result if isinstance(result, tuple) else (200, result)
        return JSONResponse(body, status_code=status)

    @api.post("/groups", summary="Create a family group (idempotent by id)",
              openapi_extra=json_body(obj(id=string, name=string, inviteKey=string)),
              responses={200: {"description": "already created by you"}, 201: {"description": "created"}, **body_errors})
    async def create(request: Request) -> JSONResponse:
        return answer(await run(request, create_group))

    @api.get("/groups", summary="Your family groups, members and caregivers", responses=problem_responses(401, 429))
    def groups(request: Request) -> list[dict[str, Any]]:
        caller, platform = _caller(request), platform_of(request)
        with platform.store.read() as conn:
            ids = conn.execute(select(family_member.c.group_id).where(family_member.c.sub == caller.sub)
                               .order_by(family_member.c.group_id)).scalars().all()
            return [_group_view(conn, g) for g in ids]

    @api.post("/join", summary="Join a group with a signed invite",
              openapi_extra=json_body(obj(invite=string)),
              responses={200: {"description": "joined; the group"}, 410: {"description": "invite expired"}, **body_errors})
    async def join_group(request: Request) -> JSONResponse:
        return answer(await run(request, join))

    @api.post("/groups/{groupId}/leave", summary="Leave a group", responses={200: {"description": "left"}, **problem_responses(401, 404, 429)})
    async def leave_group(request: Request, groupId: str = GroupId) -> JSONResponse:
        return answer(await run(request, leave, groupId, with_body=False))

    @api.post("/groups/{groupId}/remove", summary="Remove a member (owner only)", openapi_extra=json_body(obj(person=string)),
              responses={200: {"description": "the group after removal"}, **body_errors})
    async def remove_member(request: Request, groupId: str = GroupId) -> JSONResponse:
        return answer(await run(request, remove, groupId))

    @api.get("/groups/{groupId}/status", summary="Members' latest safety status (as they consented)",
             responses={200: {"description": "[{person, status}]"}, **problem_responses(401, 404, 429)})
    def status(request: Request, groupId: str = GroupId) -> list[dict[str, Any]]:
        caller, platform = _caller(request), platform_of(request)
        with platform.store.read() as conn:
            return group_status(conn, caller, groupId)

    @api.get("/hq/people", summary="City staff: residents' latest answers with names (those who share with the city)",
             responses={200: {"description": "[{person, name, own, proxy, sos}]"}, **problem_responses(400, 401, 403, 429)})
    def people(request: Request, name: str | None = Query(None, max_length=60, description="part of the name"),
               sos: bool = Query(False, description="only open SOS (needHelp / injured, not resolved)")) -> list[dict[str, Any]]:
        caller, platform = _caller(request), platform_of(request)
        with platform.store.read() as conn:
            return hq_people(conn, caller, name, sos)

    @api.post("/hq/remind", summary="City staff: ask a listed person who needs support to answer",
              openapi_extra=json_body(obj(person=string)),
              responses={200: {"description": "reminded"}, **body_errors})
    async def hq_remind(request: Request) -> JSONResponse:
        return answer(await run(request, remind))

    @api.get("/reminder", summary="When the disaster HQ last asked you to answer (or null)", responses=problem_responses(401, 429))
    def my_reminder(request: Request) -> dict[str, Any]:
        caller, platform = _caller(request), platform_of(request)
        with platform.store.read() as conn:
            return {"remindedAt": reminder(conn, caller.sub)}

    @api.post("/caregivers", summary="Name a caregiver who may answer for you (needs your consent)",
              openapi_extra=json_body(obj(caregiver=string, relation={"type": "string", "enum": list(RELATIONS)})),
              responses={201: {"description": "named"}, **body_errors})
    async def caregivers(request: Request) -> JSONResponse:
        return answer(await run(request, name_caregiver))

    @api.post("/caregivers/remove", summary="Withdraw a caregiver", openapi_extra=json_body(obj(caregiver=string)),
              responses={200: {"description": "removed (or was not named)"}, **body_errors})
    async def caregivers_remove(request: Request) -> JSONResponse:
        return answer(await run(request, drop_caregiver))

    @api.post("/sos/resolve", summary="Mark a person's open SOS resolved (the person, or city staff)",
              openapi_extra=json_body(obj(person=string)),
              responses={200: {"description": "how many open SOS answers were resolved"}, **body_errors})
    async def sos_resolve(request: Request) -> JSONResponse:
        return answer(await run(request, resolve_sos))

    @api.post("/answers", summary="A caregiver's answer for a person (proxy)",
              openapi_extra=json_body(obj(person=string, status={"type": "string", "enum": list(STATUSES)},
                                          observedAt=string, answerId=string)),
              responses={200: {"description": "stored, or older than the stored answer"}, 201: {"description": "stored"}, **body_errors})
    async def answers(request: Request) -> JSONResponse:
        return answer(await run(request, proxy_answer))

    return api
