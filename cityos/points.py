"""Health points authority (健康ポイント): the platform keeps every resident's balance.

The app records activity offline and sends it here; this module decides. For each event it
checks the municipality's rules (points per activity, daily caps, plausible maxima, validity
period), the organiser's signed event QR (one claim per resident and event), and the balance
for spends, then records a final verdict: ``confirmed`` with the points credited, or
``rejected`` with a reason. Every event carries the app's idempotency id; the verdict is stored
under (resident, id), so a replayed batch gets the same answers and credits nothing twice.
Points lapse ``validityDays`` after the day they were earned, spent oldest first.

Coupons are issued here (the points leave the balance at once) as a QR signed by the
platform's points key; a partner shop verifies it offline and redeems it here, once.

Routes under ``/cityos/v1/points`` (see docs/cityos.md); ``PointsAuthority`` is the ledger
itself over a SQLAlchemy connection, so it can be tested without HTTP.
"""
from __future__ import annotations

import base64
import hashlib
import os
import re
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    select,
    update,
)
from starlette.concurrency import run_in_threadpool

from cityos.accounts import CITY_STAFF
from cityos.core import Platform, header_tenant, int_param, platform_of, read_json
from cityos.oidc import Caller
from cityos.policy import active_categories, resolve_tenant
from cityos.problems import (
    CONSENT_REQUIRED,
    Problem,
    bad_data,
    forbidden,
    problem_responses,
    unauthorized,
)
from cityos.store import account, metadata, utc_now
from protocol.checkin import raw_public
from protocol.points import (
    CLOCK_SKEW_S,
    JST,
    QR_ACTIVITIES,
    Activity,
    Coupon,
    DayTally,
    EventQr,
    InvalidEntry,
    PointsError,
    Rules,
    credit,
    default_rules,
    expired_total,
    make_coupon_qr,
    make_event_qr,
    today_jst,
    verify_coupon_qr,
    verify_event_qr,
)
from protocol.signing import signer_kid

CATEGORY = "health_activity"
MAX_BATCH = 500
CONFLICT = "urn:cityos:problem:conflict"
_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_SPENDS = ("donation", "ride_fare")

points_rules = Table(
    "points_rules", metadata,
    Column("tenant", String(6), primary_key=True),
    Column("body", JSON, nullable=False),
    Column("updated_at", String(32), nullable=False),
)
points_key = Table(
    "points_key", metadata,
    Column("kid", String(16), primary_key=True),
    Column("private_raw", String(64), nullable=False),  # hex; the platform's own signing secret
    Column("created_at", String(32), nullable=False),
)
points_entry = Table(
    "points_entry", metadata,
    Column("n", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(6), nullable=False),
    Column("sub", String(64), nullable=False),
    Column("id", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("day", String(10), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("points", Integer, nullable=False),
    Column("status", String(10), nullable=False),
    Column("reason", String(40)),
    Column("ref", Text),  # event id, ride id, coupon id or donation recipient
    Column("created_at", String(32), nullable=False),
    UniqueConstraint("sub", "id", name="points_entry_sub_id"),
    Index("points_entry_sub_n", "sub", "n"),
)
points_day = Table(
    "points_day", metadata,
    Column("sub", String(64), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("quantity", Integer, nullable=False),
    Column("points", Integer, nullable=False),
)
points_claim = Table(
    "points_claim", metadata,
    Column("sub", String(64), primary_key=True),
    Column("event_id", String(64), primary_key=True),
)
points_coupon = Table(
    "points_coupon", metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant", String(6), nullable=False),
    Column("sub", String(64), nullable=False),
    Column("owner_ref", String(64), nullable=False),  # the app's idempotency id for issuing it
    Column("points", Integer, nullable=False),
    Column("issued_at", Integer, nullable=False),
    Column("expires_at", Integer, nullable=False),
    Column("redeemed_at", String(32)),
    UniqueConstraint("sub", "owner_ref", name="points_coupon_sub_ref"),
)


class Refused(Exception):
    """A spend or redemption the authority refuses; ``reason`` is a stable id for the app."""

    def __init__(self, reason: str, detail: str, status: int = 409) -> None:
        super().__init__(detail)
        self.reason, self.detail, self.status = reason, detail, status


@dataclass(frozen=True, slots=True)
class Verdict:
    id: str
    status: str  # "confirmed" | "rejected"
    points: int
    reason: str | None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "points": self.points, "reason": self.reason}


class PointsAuthority:
    """The platform-side ledger. Call its methods inside one ``Store.write()`` transaction."""

    def __init__(self, signing_key: Ed25519PrivateKey) -> None:
        self.key = signing_key
        self.public = signing_key.public_key()

    def lookup(self, kid: bytes) -> Ed25519PublicKey | None:
        return self.public if kid == signer_kid(self.public) else None

    # -- rules ---------------------------------------------------------------------------------
    def rules(self, conn: Connection, tenant: str) -> Rules:
        body = conn.execute(select(points_rules.c.body).where(points_rules.c.tenant == tenant)).scalar()
        return default_rules(tenant) if body is None else Rules.from_json(body)

    def set_rules(self, conn: Connection, tenant: str, body: Any) -> Rules:
        rules = Rules.from_json(body)
        if rules.municipality_code != tenant:
            raise InvalidEntry(f"rules.municipalityCode must be {tenant}")
        conn.execute(points_rules.delete().where(points_rules.c.tenant == tenant))
        conn.execute(points_rules.insert().values(tenant=tenant, body=rules.to_json(), updated_at=utc_now()))
        return rules

    # -- earning and spending ---------------------------------------------------------------------
    def submit(self, conn: Connection, sub: str, tenant: str, event: Any, today: date) -> Verdict:
        """Decide one event from the app. The same (resident, id) always gets the same verdict."""
        ident = event.get("id") if isinstance(event, dict) else None
        if not isinstance(ident, str) or not _ID.match(ident):
            return Verdict(str(ident)[:64] if ident is not None else "", "rejected", 0, "invalid")
        known = conn.execute(select(points_entry).where(points_entry.c.sub == sub, points_entry.c.id == ident)).first()
        if known is not None:
            return Verdict(ident, known.status, known.points, known.reason)
        rules = self.rules(conn, tenant)
        kind, day, quantity, ref, reason = self._check(conn, sub, tenant, event, rules, today)
        points = 0
        if reason is None and kind in _SPENDS:
            reason = self._spend_check(conn, sub, tenant, event, quantity, rules, today)
            points = -quantity
        elif reason is None:
            points, reason = self._credit(conn, sub, Activity(kind), day, quantity, rules)
        status = "rejected" if reason else "confirmed"
        self._record(conn, tenant, sub, ident, kind, day, quantity, points if status == "confirmed" else 0,
                     status, reason, ref)
        if status == "confirmed" and kind == "donation" and isinstance(event.get("toResident"), str):
            self._record(conn, tenant, event["toResident"], _received_id(sub, ident), "donation_received",
                         today.isoformat(), quantity, quantity, "confirmed", None, None)
        return Verdict(ident, status, points if status == "confirmed" else 0, reason)

    def _check(self, conn: Connection, sub: str, tenant: str, event: dict[str, Any], rules: Rules,
               today: date) -> tuple[str, str, int, str | None, str | None]:
        """(kind, day, quantity, ref, reason): reason set when the event is refused as sent."""
        kind, quantity = event.get("kind"), event.get("quantity")
        try:
            day = date.fromisoformat(str(event.get("day")))
        except ValueError:
            return str(kind)[:32], today.isoformat(), 0, None, "invalid"
        known = {a.value for a in Activity} | set(_SPENDS)
        if kind not in known or not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
            return str(kind)[:32], day.isoformat(), 0, None, "invalid"
        if day > today + timedelta(days=1):  # a day of slack for clocks near midnight
            return kind, day.isoformat(), quantity, None, "in_future"
        if kind in _SPENDS:
            return kind, today.isoformat(), quantity, None, None
        if day < rules.oldest_day(today):
            return kind, day.isoformat(), quantity, None, "too_old"
        if Activity(kind) is not Activity.STEPS and quantity != 1:
            return kind, day.isoformat(), quantity, None, "invalid"
        if Activity(kind) in QR_ACTIVITIES:
            event_id, reason = self._claim(conn, sub, tenant, Activity(kind), day, event.get("qr"))
            return kind, day.isoformat(), quantity, event_id, reason
        return kind, day.isoformat(), quantity, None, None

    def _claim(self, conn: Connection, sub: str, tenant: str, activity: Activity, day: date,
               qr: Any) -> tuple[str | None, str | None]:
        if not isinstance(qr, str):
            return None, "invalid"
        try:
            event = verify_event_qr(qr, self.lookup, now=None)
        except PointsError as err:
            bad = err.key in ("points.error.bad_signature", "points.error.unknown_signer")
            return None, "bad_signature" if bad else "invalid"
        start = datetime(day.year, day.month, day.day, tzinfo=JST).timestamp()
        if not (event.valid_from < start + 86400 + CLOCK_SKEW_S and event.valid_until > start - CLOCK_SKEW_S):
            return event.event_id, "event_not_valid_that_day"  # scanned (so the app says) outside its window
        if event.municipality_code != tenant:
            return event.event_id, "wrong_municipality"
        if event.activity is not activity:
            return event.event_id, "invalid"
        taken = conn.execute(select(points_claim.c.sub).where(points_claim.c.sub == sub,
                                                              points_claim.c.event_id == event.event_id)).first()
        if taken is not None:
            return event.event_id, "already_claimed"
        conn.execute(points_claim.insert().values(sub=sub, event_id=event.event_id))
        return event.event_id, None

    def _credit(self, conn: Connection, sub: str, activity: Activity, day: str, quantity: int,
                rules: Rules) -> tuple[int, str | None]:
        rule = rules.rule(activity)
        if rule is None:
            return 0, "invalid"
        key = (points_day.c.sub == sub, points_day.c.day == day, points_day.c.kind == activity.value)
        row = conn.execute(select(points_day.c.quantity, points_day.c.points).where(*key)).first()
        result = credit(rule, activity, DayTally(*row) if row else DayTally(), quantity)
        if result.reason:
            return 0, result.reason
        if row is None:
            conn.execute(points_day.insert().values(sub=sub, day=day, kind=activity.value,
                                                    quantity=result.tally.quantity, points=result.tally.points))
        else:
            conn.execute(update(points_day).where(*key).values(quantity=result.tally.quantity,
                                                               points=result.tally.points))
        return result.points, None

    def _spend_check(self, conn: Connection, sub: str, tenant: str, event: dict[str, Any], amount: int,
                     rules: Rules, today: date) -> str | None:
        if not 1 <= amount <= rules.max_spend:
            return "invalid"
        if event.get("kind") == "donation":
            cause, resident = event.get("toCause"), event.get("toResident")
            if isinstance(cause, str):
                if cause not in {c.id for c in rules.causes}:
                    return "unknown_recipient"
            elif not (isinstance(resident, str) and resident != sub and conn.execute(
                    select(account.c.sub).where(account.c.sub == resident,
                                                account.c.municipality_code == tenant)).first()):
                return "unknown_recipient"
            elif CATEGORY not in active_categories(conn, resident):
                return "unknown_recipient"  # no ledger without the recipient's consent; not said why
        elif not isinstance(event.get("rideId"), str):
            return "invalid"
        return "insufficient" if self.balance(conn, sub, tenant, today) < amount else None

    def _record(self, conn: Connection, tenant: str, sub: str, ident: str, kind: str, day: str, quantity: int,
                points: int, status: str, reason: str | None, ref: str | None) -> None:
        conn.execute(points_entry.insert().values(tenant=tenant, sub=sub, id=ident, kind=kind, day=day,
                                                  quantity=quantity, points=points, status=status, reason=reason,
                                                  ref=ref, created_at=utc_now()))

    # -- balance ---------------------------------------------------------------------------------
    def balance(self, conn: Connection, sub: str, tenant: str, today: date) -> int:
        """Confirmed points after lapsing what expired by ``today`` (recorded as an entry)."""
        rules = self.rules(conn, tenant)
        rows = conn.execute(select(points_entry.c.day, points_entry.c.points, points_entry.c.kind).where(
            points_entry.c.sub == sub, points_entry.c.status == "confirmed").order_by(
            points_entry.c.day, points_entry.c.n)).all()
        lapsed = -sum(p for _, p, k in rows if k == "expiry")
        due = expired_total(((date.fromisoformat(d), p) for d, p, k in rows if k != "expiry"),
                            rules.validity_days, today)
        if due > lapsed:
            self._record(conn, tenant, sub, f"x:expiry:{today.isoformat()}:{due}", "expiry", today.isoformat(),
                         due - lapsed, lapsed - due, "confirmed", None, None)
        return sum(p for _, p, k in rows) - max(0, due - lapsed)

    def entries(self, conn: Connection, sub: str, after: int, limit: int) -> tuple[list[dict[str, Any]], int, bool]:
        rows = conn.execute(select(points_entry).where(points_entry.c.sub == sub, points_entry.c.n > after)
                            .order_by(points_entry.c.n).limit(limit + 1)).all()
        page = [{"id": r.id, "kind": r.kind, "day": r.day, "quantity": r.quantity, "points": r.points,
                 "status": r.status, "reason": r.reason} for r in rows[:limit]]
        return page, rows[:limit][-1].n if page else after, len(rows) > limit

    # -- coupons ---------------------------------------------------------------------------------
    def issue_coupon(self, conn: Connection, sub: str, tenant: str, ref: str, amount: int,
                     now: float) -> str:
        """Take ``amount`` off the balance and return the signed coupon QR; the same ``ref``
        again returns the same coupon (a retried request never pays twice)."""
        known = conn.execute(select(points_coupon).where(points_coupon.c.sub == sub,
                                                         points_coupon.c.owner_ref == ref)).first()
        if known is not None:
            return make_coupon_qr(self.key, Coupon(known.id, known.tenant, known.points, known.issued_at,
                                                   known.expires_at))
        rules = self.rules(conn, tenant)
        today = today_jst(datetime.fromtimestamp(now, UTC))
        if not 1 <= amount <= rules.max_spend:
            raise Refused("invalid", f"a coupon takes 1..{rules.max_spend} points", 400)
        if self.balance(conn, sub, tenant, today) < amount:
            raise Refused("insufficient", "not enough confirmed points for this coupon")
        coupon = Coupon(f"c{base64.b32encode(os.urandom(10)).decode().lower()}", tenant, amount, int(now),
                        int(now) + rules.coupon_ttl_days * 86400)
        conn.execute(points_coupon.insert().values(id=coupon.coupon_id, tenant=tenant, sub=sub, owner_ref=ref,
                                                   points=amount, issued_at=coupon.issued_at,
                                                   expires_at=coupon.expires_at))
        self._record(conn, tenant, sub, ref, "coupon", today.isoformat(), amount, -amount, "confirmed", None,
                     coupon.coupon_id)
        return make_coupon_qr(self.key, coupon)

    def redeem_coupon(self, conn: Connection, sub: str, tenant: str, text: str, now: float) -> Coupon:
        """The coupon's owner spends it at a partner shop (which checked it offline): valid
        signature, this municipality, the caller's own, unused. Once."""
        try:
            coupon = verify_coupon_qr(text, self.lookup, now)
        except PointsError as err:
            raise Refused(err.key.rsplit(".", 1)[-1], err.detail, 400) from None
        if coupon.municipality_code != tenant:
            raise Refused("wrong_municipality", "this coupon belongs to another municipality", 400)
        owner = conn.execute(select(points_coupon.c.sub).where(points_coupon.c.id == coupon.coupon_id)).scalar()
        if owner != sub:  # anyone who sees the QR could otherwise burn it
            raise Refused("not_owner", "only the resident the coupon was issued to can redeem it", 403)
        done = conn.execute(update(points_coupon).where(points_coupon.c.id == coupon.coupon_id,
                                                        points_coupon.c.redeemed_at.is_(None))
                            .values(redeemed_at=utc_now())).rowcount
        if not done:
            raise Refused("already_used", "this coupon has already been used")
        return coupon

    def event_qr(self, tenant: str, event_id: str, activity: Activity, title: str, valid_from: int,
                 valid_until: int) -> str:
        return make_event_qr(self.key, EventQr(event_id, tenant, activity, title, valid_from, valid_until))




# -- HTTP ------------------------------------------------------------------------------------------

def _received_id(donor: str, ident: str) -> str:
    """The recipient's entry id for a donation: unique per (donor, event), and outside the id
    syntax residents may send (``/``), so a recipient cannot take it first."""
    return "r/" + hashlib.sha256(f"{donor}\n{ident}".encode()).hexdigest()[:62]


def load_authority(platform: Platform) -> PointsAuthority:
    """The authority with the platform's points signing key, made on first use and kept in the
    database so QR codes signed before a restart stay valid."""
    with platform.store.write() as conn:
        row = conn.execute(select(points_key).order_by(points_key.c.created_at).limit(1)).first()
        if row is not None:
            return PointsAuthority(Ed25519PrivateKey.from_private_bytes(bytes.fromhex(row.private_raw)))
        key = Ed25519PrivateKey.generate()
        conn.execute(points_key.insert().values(kid=signer_kid(key.public_key()).hex(),
                                                private_raw=key.private_bytes_raw().hex(), created_at=utc_now()))
        return PointsAuthority(key)


def _authority(request: Request) -> PointsAuthority:
    state = request.app.state
    if getattr(state, "points_authority", None) is None:
        state.points_authority = load_authority(platform_of(request))
    return state.points_authority


def _caller(platform: Platform, request: Request) -> Caller:
    caller = platform.caller(request)
    if caller is None:
        raise unauthorized("health points need a bearer token", error="invalid_request")
    resolve_tenant(caller, header_tenant(request), platform.settings.default_tenant)
    return caller


def _consented(conn: Connection, caller: Caller) -> None:
    if CATEGORY not in active_categories(conn, caller.sub):
        raise Problem(403, CONSENT_REQUIRED, f"no active consent for data category {CATEGORY!r}: points stay on the device")


def _refused(err: Refused) -> JSONResponse:
    return JSONResponse({"type": CONFLICT if err.status == 409 else "https://uri.etsi.org/ngsi-ld/errors/BadRequestData",
                         "title": "Refused", "status": err.status, "detail": err.detail, "reason": err.reason},
                        status_code=err.status)


def _object(payload: Any, *keys: str) -> dict[str, Any]:
    if not isinstance(payload, dict) or any(k not in payload for k in keys):
        raise bad_data(f"body must be an object with {', '.join(keys)}")
    return payload


def router() -> APIRouter:
    api = APIRouter(prefix="/cityos/v1/points", tags=["Health points"])
    errors = problem_responses(400, 401, 403, 413, 415, 429)

    @api.get("/rules", summary="The municipality's points rules (public)")
    def get_rules(request: Request) -> dict[str, Any]:
        platform = platform_of(request)
        tenant = resolve_tenant(platform.caller(request), header_tenant(request), platform.settings.default_tenant)
        with platform.store.read() as conn:
            return _authority(request).rules(conn, tenant).to_json()

    @api.put("/rules", summary="Set the municipality's rules (city staff)", responses=errors)
    async def put_rules(request: Request) -> dict[str, Any]:
        platform = platform_of(request)
        caller = _caller(platform, request)
        if CITY_STAFF not in caller.roles:
            raise forbidden("setting points rules needs the city_staff role")
        payload, _ = await read_json(request)
        authority = _authority(request)

        def write() -> dict[str, Any]:
            with platform.store.write() as conn:
                return authority.set_rules(conn, caller.municipality_code, payload).to_json()
        try:
            return await run_in_threadpool(write)
        except PointsError as err:
            raise bad_data(err.detail) from None

    @api.get("/keys", summary="Public keys that sign event QRs and coupons")
    def keys(request: Request) -> dict[str, Any]:
        public = _authority(request).public
        return {"keys": [{"kid": signer_kid(public).hex(), "purposes": ["event", "coupon"],
                          "publicKey": base64.b64encode(raw_public(public)).decode()}]}

    @api.post("/events", summary="Submit activity and spends; answers a final verdict for each", responses=errors)
    async def submit(request: Request) -> dict[str, Any]:
        platform = platform_of(request)
        caller = _caller(platform, request)
        events = _object((await read_json(request))[0], "events")["events"]
        if not isinstance(events, list) or len(events) > MAX_BATCH:
            raise bad_data(f"events must be a list of at most {MAX_BATCH}")
        authority, today = _authority(request), today_jst()

        def write() -> dict[str, Any]:
            with platform.store.write() as conn:
                _consented(conn, caller)
                verdicts = [authority.submit(conn, caller.sub, caller.municipality_code, e, today).to_json()
                            for e in events]
                return {"results": verdicts, "balance": authority.balance(conn, caller.sub, caller.municipality_code, today)}
        return await run_in_threadpool(write)

    @api.get("/ledger", summary="The caller's entries after a cursor, and the balance", responses=errors)
    async def ledger(request: Request) -> dict[str, Any]:
        platform = platform_of(request)
        caller = _caller(platform, request)
        after = int_param(request.query_params.get("after"), "after", 0, 0, 2**62)
        limit = int_param(request.query_params.get("limit"), "limit", 500, 1, 1000)
        authority = _authority(request)

        def write() -> dict[str, Any]:  # reading can lapse expired points: a write
            with platform.store.write() as conn:
                balance = authority.balance(conn, caller.sub, caller.municipality_code, today_jst())
                page, cursor, more = authority.entries(conn, caller.sub, after, limit)
                return {"entries": page, "cursor": str(cursor), "hasMore": more, "balance": balance}
        return await run_in_threadpool(write)

    @api.post("/coupons", status_code=201, summary="Turn points into a single-use signed coupon QR", responses=errors)
    async def coupon(request: Request) -> JSONResponse:
        platform = platform_of(request)
        caller = _caller(platform, request)
        body = _object((await read_json(request))[0], "id", "points")
        if not isinstance(body["id"], str) or not _ID.match(body["id"]) or not isinstance(body["points"], int):
            raise bad_data("id must be a short id and points a whole number")
        authority = _authority(request)

        def write() -> dict[str, Any]:
            with platform.store.write() as conn:
                _consented(conn, caller)
                qr = authority.issue_coupon(conn, caller.sub, caller.municipality_code, body["id"], body["points"],
                                            time.time())
                balance = authority.balance(conn, caller.sub, caller.municipality_code, today_jst())
                return {"coupon": qr, "balance": balance}
        try:
            return JSONResponse(await run_in_threadpool(write), status_code=201)
        except Refused as err:
            return _refused(err)

    @api.post("/coupons/redeem", summary="The coupon's owner redeems it at a partner shop (once)", responses=errors)
    async def redeem(request: Request) -> JSONResponse:
        platform = platform_of(request)
        caller = _caller(platform, request)
        body = _object((await read_json(request))[0], "coupon")
        authority = _authority(request)

        def write() -> Coupon:
            with platform.store.write() as conn:
                return authority.redeem_coupon(conn, caller.sub, caller.municipality_code, str(body["coupon"]), time.time())
        try:
            coupon = await run_in_threadpool(write)
        except Refused as err:
            return _refused(err)
        return JSONResponse({"couponId": coupon.coupon_id, "points": coupon.points})

    @api.post("/event-qr", status_code=201, summary="Sign an event QR for an organiser (city staff)", responses=errors)
    async def event_qr(request: Request) -> JSONResponse:
        platform = platform_of(request)
        caller = _caller(platform, request)
        if CITY_STAFF not in caller.roles:
            raise forbidden("signing event QR codes needs the city_staff role")
        body = _object((await read_json(request))[0], "eventId", "activity", "title", "validFrom", "validUntil")
        activity = next((a for a in QR_ACTIVITIES if a.value == body["activity"]), None)
        event_id, title, valid_from, valid_until = body["eventId"], body["title"], body["validFrom"], body["validUntil"]
        if (activity is None or not isinstance(title, str) or not isinstance(event_id, str) or not _ID.match(event_id)
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in (valid_from, valid_until))
                or valid_from > valid_until):
            raise bad_data("eventId (short id), activity (health_class|event|evacuation_drill), title, "
                           "validFrom <= validUntil (Unix seconds) are required")
        qr = _authority(request).event_qr(caller.municipality_code, event_id, activity, title[:120],
                                          valid_from, valid_until)
        return JSONResponse({"qr": qr}, status_code=201)

    return api
